/**
 * Value <-> JSON, so that exercise arguments and results can cross a process boundary (the grader's child processes),
 * and tensors -> HostTensor (their values read out of the backend), which is what comparisons work on.
 *
 * Encoding:
 *   tensor            -> { "__tensor": { "shape": [...], "dtype": "float32", "data": [...] } }   (flat, row-major)
 *   NaN / ±Infinity   -> { "__number": "NaN" | "Infinity" | "-Infinity" }  (JSON has no such numbers);
 *                        inside tensor data the same strings stand in for the element.
 *   anything that is not a Value (undefined, a function, a Promise, a class instance …), only when `lenient`:
 *                     -> { "__unsupported": "<description>" }, decoded to an UnsupportedValue so that the checker can
 *                        say what the learner returned instead of crashing.
 * Plain objects may not use the reserved keys above.
 *
 * Reading values: `await readValue(v)` reads every tensor with `await t.data()` (works on every backend, webgpu
 * included, where dataSync of a computed tensor throws in Node): the one way, for notebooks, the grader and tests.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors';
import type { Value } from './types';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const RESERVED = ['__tensor', '__number', '__unsupported'];
const DTYPES = ['float32', 'int32', 'bool', 'string'];

/** Stand-in for a returned thing that is not a Value (decoded from `__unsupported`). */
export class UnsupportedValue {
  constructor(readonly description: string) {}
}

/** A tensor's shape, dtype and values, read out of the backend: no tensor memory, nothing to dispose. */
export class HostTensor {
  constructor(
    readonly shape: number[],
    readonly dtype: string,
    readonly values: ArrayLike<number | string>,
  ) {}

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
}

/** Duck-typed tensor test: works across tfjs copies and does not need tfjs loaded. */
export function isTensor(x: unknown): x is tf.Tensor {
  if (typeof x !== 'object' || x === null) return false;
  const t = x as { shape?: unknown; dtype?: unknown; dataSync?: unknown };
  return Array.isArray(t.shape) && typeof t.dtype === 'string' && typeof t.dataSync === 'function';
}

export function isHostTensor(x: unknown): x is HostTensor {
  return x instanceof HostTensor;
}

export function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/** True for a Promise or anything else with a then method. */
export function isThenable(x: unknown): x is PromiseLike<unknown> {
  return x !== null && (typeof x === 'object' || typeof x === 'function') && typeof (x as { then?: unknown }).then === 'function';
}

/** A short human description of any JS value, for messages ("a float32 tensor of shape [2,3]", "undefined" …). */
export function describeValue(x: unknown): string {
  if (x === undefined) return 'undefined';
  if (x === null) return 'null';
  if (x instanceof UnsupportedValue) return x.description;
  if (isTensor(x) || isHostTensor(x)) return `a ${x.dtype} tensor of shape [${x.shape.join(',')}]`;
  if (typeof x === 'number') return `the number ${x}`;
  if (typeof x === 'boolean') return `the boolean ${x}`;
  if (typeof x === 'string') return `the string ${JSON.stringify(x.length > 40 ? x.slice(0, 40) + '…' : x)}`;
  if (typeof x === 'function') return 'a function';
  if (typeof x === 'bigint') return `the bigint ${x}`;
  if (typeof x === 'symbol') return 'a symbol';
  if (Array.isArray(x)) return `an array of length ${x.length}`;
  if (isThenable(x)) return 'a Promise';
  if (x instanceof Float32Array || x instanceof Int32Array || x instanceof Uint8Array || x instanceof Float64Array) {
    return `a ${x.constructor.name} of length ${x.length} (return a plain number[] or a tensor)`;
  }
  if (isPlainObject(x)) return `an object with keys {${Object.keys(x).join(', ')}}`;
  const name = (x as object).constructor?.name ?? 'unknown';
  return `an instance of ${name} (only numbers, booleans, strings, tensors, arrays and plain objects can be checked)`;
}

function encodeNumber(n: number): Json {
  if (Number.isFinite(n)) return n;
  return { __number: Number.isNaN(n) ? 'NaN' : n > 0 ? 'Infinity' : '-Infinity' };
}

function decodeNumberString(s: string): number {
  if (s === 'NaN') return NaN;
  if (s === 'Infinity') return Infinity;
  if (s === '-Infinity') return -Infinity;
  throw new InvalidArgumentError(`codec: unknown number encoding ${JSON.stringify(s)}; expected NaN, Infinity or -Infinity`);
}

export interface EncodeOptions {
  /** Encode things that are not Values as { __unsupported } instead of throwing (used for learners' results). */
  lenient?: boolean;
}

/**
 * Encode a Value as JSON-safe data. Tensors are read with dataSync (cpu/wasm; the tensor is not disposed); HostTensors
 * are encoded as tensors. Throws InvalidArgumentError for non-Values unless `lenient`.
 */
export function encodeValue(v: unknown, opts: EncodeOptions = {}, path = 'value'): Json {
  const unsupported = (why: string): Json => {
    if (opts.lenient) return { __unsupported: why };
    throw new InvalidArgumentError(`codec: ${path} is ${why}; expected a Value (number, boolean, string, null, tensor, array or plain object)`);
  };
  if (v === null) return null;
  if (typeof v === 'number') return encodeNumber(v);
  if (typeof v === 'boolean' || typeof v === 'string') return v;
  if (isTensor(v) || isHostTensor(v)) {
    let data: ArrayLike<number | string>;
    try {
      data = isHostTensor(v) ? v.values : (v.dataSync() as ArrayLike<number | string>);
    } catch (e) {
      return unsupported(`a tensor that cannot be read (${(e as Error).message})`);
    }
    const out: Json[] = new Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const d = data[i];
      out[i] = typeof d === 'number' && !Number.isFinite(d) ? (encodeNumber(d) as { __number: string }).__number : (d as Json);
    }
    return { __tensor: { shape: [...v.shape], dtype: v.dtype, data: out } };
  }
  if (Array.isArray(v)) return v.map((x, i) => encodeValue(x, opts, `${path}[${i}]`));
  if (isPlainObject(v)) {
    const out: { [k: string]: Json } = {};
    for (const [k, x] of Object.entries(v)) {
      if (RESERVED.includes(k)) {
        if (opts.lenient) return { __unsupported: `an object with the reserved key ${k}` };
        throw new InvalidArgumentError(`codec: ${path} uses the reserved key ${k}; rename it (reserved: ${RESERVED.join(', ')})`);
      }
      out[k] = encodeValue(x, opts, `${path}.${k}`);
    }
    return out;
  }
  return unsupported(describeValue(v));
}

export interface DecodeOptions {
  /** Decode tensors as HostTensors (no tfjs tensor is made: the grader compares learners' results this way). */
  host?: boolean;
}

/** Decode what encodeValue produced. Tensors are tfjs tensors owned by the caller (disposeValue), or HostTensors. */
export function decodeValue(j: Json, opts: DecodeOptions = {}, path = 'value'): Value {
  if (j === null || typeof j === 'number' || typeof j === 'boolean' || typeof j === 'string') return j;
  if (Array.isArray(j)) return j.map((x, i) => decodeValue(x, opts, `${path}[${i}]`));
  if (typeof j !== 'object') throw new InvalidArgumentError(`codec: ${path} is not JSON data`);
  const keys = Object.keys(j);
  if (keys.length === 1 && keys[0] === '__number') return decodeNumberString(String(j.__number));
  if (keys.length === 1 && keys[0] === '__unsupported') {
    return new UnsupportedValue(String(j.__unsupported)) as unknown as Value;
  }
  if (keys.length === 1 && keys[0] === '__tensor') {
    const t = j.__tensor as { shape?: unknown; dtype?: unknown; data?: unknown };
    if (typeof t !== 'object' || t === null) throw new InvalidArgumentError(`codec: ${path}.__tensor must be an object`);
    if (!Array.isArray(t.shape) || !t.shape.every((s) => Number.isInteger(s) && (s as number) >= 0)) {
      throw new InvalidArgumentError(`codec: ${path}.__tensor.shape must be an array of non-negative integers`);
    }
    if (!DTYPES.includes(String(t.dtype))) {
      throw new InvalidArgumentError(`codec: ${path}.__tensor.dtype ${JSON.stringify(t.dtype)} is not one of ${DTYPES.join(', ')}`);
    }
    const shape = t.shape as number[];
    const size = shape.reduce((a, b) => a * b, 1);
    if (!Array.isArray(t.data) || t.data.length !== size) {
      throw new InvalidArgumentError(`codec: ${path}.__tensor.data must hold ${size} elements for shape [${shape.join(',')}]`);
    }
    const dtype = t.dtype as 'float32' | 'int32' | 'bool' | 'string';
    if (dtype === 'string') {
      const strings = t.data.map(String);
      return opts.host ? (new HostTensor(shape, dtype, strings) as unknown as Value) : tf.tensor(strings, shape, 'string');
    }
    const data = (t.data as Json[]).map((d) => (typeof d === 'string' ? decodeNumberString(d) : Number(d)));
    if (opts.host) {
      // The values as the backend would hold them (float32 rounding, int32 truncation), so that comparisons agree.
      const typed = dtype === 'float32' ? Float32Array.from(data) : dtype === 'int32' ? Int32Array.from(data) : Uint8Array.from(data);
      return new HostTensor(shape, dtype, typed) as unknown as Value;
    }
    return tf.tensor(data, shape, dtype);
  }
  const out: { [k: string]: Value } = {};
  for (const [k, x] of Object.entries(j)) out[k] = decodeValue(x, opts, `${path}.${k}`);
  return out;
}

/** Every tensor inside a (nested) value. */
export function tensorsIn(v: unknown, into: tf.Tensor[] = []): tf.Tensor[] {
  if (isTensor(v)) into.push(v);
  else if (Array.isArray(v)) v.forEach((x) => tensorsIn(x, into));
  else if (isPlainObject(v)) Object.values(v).forEach((x) => tensorsIn(x, into));
  return into;
}

/** Dispose every tensor inside a value (safe on already-disposed tensors). */
export function disposeValue(v: unknown): void {
  for (const t of tensorsIn(v)) {
    if (!(t as { isDisposed?: boolean }).isDisposed) t.dispose();
  }
}

/**
 * Copy arrays and plain objects (tensors are shared; they are immutable), so that a function that mutates its
 * arguments cannot change what the next call — or the reference — sees.
 */
export function cloneArgs<T>(v: T): T {
  if (Array.isArray(v)) return v.map((x) => cloneArgs(x)) as T;
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = cloneArgs(x);
    return out as T;
  }
  return v;
}

/**
 * The same value with every tensor replaced by a HostTensor of its values, read with `await t.data()` (any backend).
 * Arrays and plain objects are copied; anything else (numbers, UnsupportedValue, a class instance …) is kept as it is.
 * A tensor that cannot be read (disposed …) becomes an UnsupportedValue that says why.
 */
export async function readValue(v: unknown): Promise<unknown> {
  if (isTensor(v)) {
    try {
      return new HostTensor([...v.shape], v.dtype, (await v.data()) as ArrayLike<number | string>);
    } catch (e) {
      return new UnsupportedValue(`a ${v.dtype} tensor that cannot be read (${(e as Error).message}; was it disposed?)`);
    }
  }
  if (Array.isArray(v)) return Promise.all(v.map(readValue));
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = await readValue(x);
    return out;
  }
  return v;
}

/** A tfjs tensor with a HostTensor's values (a fresh upload: readable on every backend). The caller disposes it. */
export function toTensor(h: HostTensor): tf.Tensor {
  if (h.dtype === 'string') return tf.tensor(Array.from(h.values, String), h.shape, 'string');
  return tf.tensor(h.values as ArrayLike<number> as number[], h.shape, h.dtype as 'float32' | 'int32' | 'bool');
}

/** Replace HostTensors by fresh tfjs tensors (the caller disposes them); everything else copied as cloneArgs does. */
export function toTensors<T>(v: T): T {
  if (isHostTensor(v)) return toTensor(v) as T;
  if (Array.isArray(v)) return v.map((x) => toTensors(x)) as T;
  if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toTensors(x)])) as T;
  return v;
}
