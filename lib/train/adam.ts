/**
 * Adam (Kingma & Ba 2015) with its state in plain view, so checkpoints can save and restore it exactly:
 *   m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²,  θ ← θ − lr·m̂ / (√v̂ + ε),  m̂ = m/(1−β1^n), v̂ = v/(1−β2^n).
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../errors';

export interface AdamConfig { beta1: number; beta2: number; epsilon: number; weightDecay?: number }
export const DEFAULT_ADAM: AdamConfig = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };

export interface AdamState {
  /** Number of updates applied so far. */
  step: number;
  m: Float32Array[];
  v: Float32Array[];
}

export class Adam {
  private m: tf.Variable[];
  private v: tf.Variable[];
  /** Updates applied so far (n in the bias corrections). */
  step = 0;

  constructor(private readonly variables: tf.Variable[], readonly config: AdamConfig = DEFAULT_ADAM) {
    const { beta1, beta2, epsilon } = config;
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) || !(epsilon > 0)) {
      throw new InvalidArgumentError(`Adam: need 0 ≤ beta1, beta2 < 1 and epsilon > 0, got ${JSON.stringify(config)}`);
    }
    // tidy: tf.variable keeps its initial tensor alive otherwise (one leaked tensor per variable)
    this.m = variables.map((x) => tf.tidy(() => tf.variable(tf.zerosLike(x), false)));
    this.v = variables.map((x) => tf.tidy(() => tf.variable(tf.zerosLike(x), false)));
  }

  /** One update with learning rate `lr`; grads in the order of the variables. */
  apply(grads: tf.Tensor[], lr: number): void {
    if (grads.length !== this.variables.length) {
      throw new ShapeMismatchError(`Adam: got ${grads.length} gradients for ${this.variables.length} variables`);
    }
    const { beta1, beta2, epsilon } = this.config;
    this.step += 1;
    const c1 = 1 - beta1 ** this.step;
    const c2 = 1 - beta2 ** this.step;
    tf.tidy(() => {
      grads.forEach((g, i) => {
        const m = tf.add(tf.mul(this.m[i], beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(this.v[i], beta2), tf.mul(tf.square(g), 1 - beta2));
        this.m[i].assign(m);
        this.v[i].assign(v);
        const update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), epsilon));
        this.variables[i].assign(tf.sub(this.variables[i], tf.mul(update, lr)));
      });
    });
  }

  getState(): AdamState {
    return { step: this.step, m: this.m.map((t) => t.dataSync() as Float32Array), v: this.v.map((t) => t.dataSync() as Float32Array) };
  }

  setState(state: AdamState): void {
    const n = this.variables.length;
    if (state.m.length !== n || state.v.length !== n) {
      throw new ShapeMismatchError(`Adam state: expected moments for ${n} variables, got ${state.m.length} / ${state.v.length}`);
    }
    this.variables.forEach((x, i) => {
      for (const [name, arr] of [['m', state.m[i]], ['v', state.v[i]]] as const) {
        if (arr.length !== x.size) throw new ShapeMismatchError(`Adam state ${name}[${i}]: ${arr.length} values, expected ${x.size}`);
      }
      tf.tidy(() => {
        this.m[i].assign(tf.tensor(state.m[i], x.shape, 'float32'));
        this.v[i].assign(tf.tensor(state.v[i], x.shape, 'float32'));
      });
    });
    this.step = state.step;
  }

  dispose(): void {
    tf.dispose([...this.m, ...this.v]);
  }
}

/** Linear warm-up from 0 to `lr` over `warmupSteps` updates, then constant (step counts from 0). */
export function warmupLr(step: number, lr: number, warmupSteps: number): number {
  if (warmupSteps <= 0) return lr;
  return lr * Math.min(1, (step + 1) / warmupSteps);
}

/**
 * Scales gradients so that their global L2 norm is at most maxNorm (Pascanu et al. 2013); returns the new tensors and
 * the norm before clipping. maxNorm = Infinity leaves them unchanged (copies).
 */
export function clipByGlobalNorm(grads: tf.Tensor[], maxNorm: number): { grads: tf.Tensor[]; norm: number } {
  if (!(maxNorm > 0)) throw new InvalidArgumentError(`maxNorm must be > 0, got ${maxNorm}`);
  const normT = tf.tidy(() => tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))));
  const norm = normT.dataSync()[0];
  normT.dispose();
  const scale = Number.isFinite(norm) && norm > maxNorm ? maxNorm / norm : 1;
  return { grads: grads.map((g) => tf.mul(g, scale)), norm };
}
