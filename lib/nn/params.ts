/**
 * A named collection of trainable variables. Layers are plain functions over explicit parameters (tf.layers has no
 * GroupNorm or attention); keeping every variable here under a dotted name ('down.0.res.conv1.w') makes checkpoints,
 * EMA, parameter counts and shape summaries one loop each.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../errors';
import { makeRng, type Rng } from '../random';

export type Init =
  | { kind: 'zeros' }
  | { kind: 'ones' }
  /** N(0, std²); std = 1/sqrt(fanIn) keeps activations' scale through a linear map. */
  | { kind: 'normal'; std: number };

export const zeros: Init = { kind: 'zeros' };
export const ones: Init = { kind: 'ones' };
export const fanInNormal = (fanIn: number): Init => ({ kind: 'normal', std: 1 / Math.sqrt(fanIn) });

/** tfjs variable names are global to the engine; a counter keeps two stores with the same seed apart. */
let storeCounter = 0;

export class ParamStore {
  private readonly vars = new Map<string, tf.Variable>();
  private readonly rng: Rng;
  private readonly id = storeCounter++;

  /** `seed` fixes every initial value: variable k gets a seed drawn from this store's own generator. */
  constructor(readonly seed: number) {
    this.rng = makeRng(seed);
  }

  /** Create a trainable variable; names are unique within the store. */
  create(name: string, shape: number[], init: Init): tf.Variable {
    if (this.vars.has(name)) throw new InvalidArgumentError(`parameter '${name}' already exists; names must be unique`);
    if (shape.some((d) => !Number.isInteger(d) || d <= 0)) {
      throw new InvalidArgumentError(`parameter '${name}': shape [${shape}] must be positive integers`);
    }
    const varSeed = Math.floor(this.rng() * 2 ** 31); // drawn even for constant inits, so adding one never shifts the rest
    const value = tf.tidy(() => {
      if (init.kind === 'zeros') return tf.zeros(shape);
      if (init.kind === 'ones') return tf.ones(shape);
      return tf.randomNormal(shape, 0, init.std, 'float32', varSeed);
    });
    const v = tf.variable(value, true, `p${this.id}/${name}`);
    value.dispose();
    this.vars.set(name, v);
    return v;
  }

  get(name: string): tf.Variable {
    const v = this.vars.get(name);
    if (!v) throw new InvalidArgumentError(`no parameter named '${name}'`);
    return v;
  }

  names(): string[] {
    return [...this.vars.keys()];
  }

  /** Variables in creation order (stable: checkpoints and optimizer state rely on it). */
  variables(): tf.Variable[] {
    return [...this.vars.values()];
  }

  entries(): [string, tf.Variable][] {
    return [...this.vars.entries()];
  }

  count(): number {
    let n = 0;
    for (const v of this.vars.values()) n += v.size;
    return n;
  }

  shapes(): Record<string, number[]> {
    const out: Record<string, number[]> = {};
    for (const [k, v] of this.vars) out[k] = v.shape.slice();
    return out;
  }

  /** Every value by name, read back from the backend (awaited). */
  async snapshot(): Promise<Map<string, Float32Array>> {
    const entries = [...this.vars];
    const values = await Promise.all(entries.map(([, v]) => v.data() as Promise<Float32Array>));
    return new Map(entries.map(([k], i) => [k, values[i]]));
  }

  /** Overwrite values by name; every parameter must be present with its exact size. */
  load(values: Map<string, Float32Array> | Record<string, Float32Array>): void {
    const get = (k: string) => (values instanceof Map ? values.get(k) : values[k]);
    for (const [k, v] of this.vars) {
      const data = get(k);
      if (!data) throw new ShapeMismatchError(`missing values for parameter '${k}' [${v.shape}]`);
      if (data.length !== v.size) {
        throw new ShapeMismatchError(`parameter '${k}': got ${data.length} values, expected ${v.size} for shape [${v.shape}]`);
      }
      tf.tidy(() => v.assign(tf.tensor(data, v.shape, 'float32')));
    }
  }

  /** Assign from tensors of the same shapes (EMA swap-in); the caller keeps ownership of `values`. */
  assignFrom(values: Map<string, tf.Tensor>): void {
    for (const [k, v] of this.vars) {
      const t = values.get(k);
      if (!t) throw new ShapeMismatchError(`missing tensor for parameter '${k}'`);
      if (!tf.util.arraysEqual(t.shape, v.shape)) {
        throw new ShapeMismatchError(`parameter '${k}': got shape [${t.shape}], expected [${v.shape}]`);
      }
      v.assign(t);
    }
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}
