/**
 * Adam (Kingma & Ba 2015) with its state in plain view, so checkpoints can save and restore it exactly:
 *   m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²,  θ ← θ − lr·m̂ / (√v̂ + ε),  m̂ = m/(1−β1^n), v̂ = v/(1−β2^n).
 * The update itself is lib/backend/kernels/webgpu/adam.ts's adamApply — the formula written once as tfjs ops
 * (adamUpdateComposite, every backend), which webgpu runs as ONE fused kernel per tensor. Gradient clipping and the
 * trainer's "skip a non-finite step" enter it as one small control tensor ([norm, scale, ok], gradientControl).
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../errors';
import { adamApply, gradientControl, type Control } from '../backend/kernels/webgpu/adam';

export { ControlMasks, globalNorm, gradientControl, readControl, type Control, type ControlInputs } from '../backend/kernels/webgpu/adam';

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

  /**
   * One update with learning rate `lr`; grads in the order of the variables. With `control` (gradientControl's
   * [norm, scale, ok], or a ControlMasks of it shared with the EMA's update) the gradients are scaled by its clip scale, and nothing changes when its ok is 0: a step whose
   * loss or gradient turned out non-finite is applied as "no change" on the device, without reading anything back (the
   * step counter still advances: the trainer rolls it back when its deferred check finds the bad step).
   */
  apply(grads: tf.Tensor[], lr: number, control?: Control): void {
    if (grads.length !== this.variables.length) {
      throw new ShapeMismatchError(`Adam: got ${grads.length} gradients for ${this.variables.length} variables`);
    }
    const { beta1, beta2, epsilon, weightDecay } = this.config;
    adamApply(this.variables, this.m, this.v, grads, { lr, beta1, beta2, epsilon, weightDecay, step: this.step + 1 }, control);
    this.step += 1;
  }

  /** The moments, read back (awaited: a read must not stall the device). */
  async getState(): Promise<AdamState> {
    const read = (ts: tf.Variable[]) => Promise.all(ts.map((t) => t.data() as Promise<Float32Array>));
    const [m, v] = await Promise.all([read(this.m), read(this.v)]);
    return { step: this.step, m, v };
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
 * Warm-up, stable, decay (WSD; Hu et al. 2024, "MiniCPM"): warmupLr, then over the last d = round(decayFraction · steps)
 * steps a half-cosine from the peak down towards 0 (step steps − d has the peak, step steps − 1 has lr·(1 − cos(π/d))/2).
 * Why: with a constant lr the weights keep the noise of the last updates (the EMA only averages it away slowly); a
 * cool-down ends the run at low lr. Because the lr is a function of the step alone, a resumed run computes exactly the
 * steps an uninterrupted one would, and the stable phase is the same as that of a run without decay.
 */
export function scheduledLr(step: number, c: { lr: number; warmupSteps: number; steps: number; decayFraction?: number }): number {
  const base = warmupLr(step, c.lr, c.warmupSteps);
  const d = Math.round((c.decayFraction ?? 0) * c.steps);
  const k = step - (c.steps - d);
  if (d <= 0 || k < 0) return base;
  return base * 0.5 * (1 + Math.cos((Math.PI * Math.min(k, d)) / d));
}

/**
 * Scales gradients so that their global L2 norm is at most maxNorm (Pascanu et al. 2013): every tensor times
 * min(1, maxNorm/norm). Returns the new tensors and the norm before clipping, both on the device (no read: the scale is
 * computed there too, by gradientControl — the trainer passes that control tensor to Adam instead, which scales inside
 * its update); a non-finite norm leaves the scale at 1 (the trainer's finite check rejects that step).
 * maxNorm = Infinity leaves them unchanged (copies). The caller disposes the returned tensors.
 */
export function clipByGlobalNorm(grads: tf.Tensor[], maxNorm: number): { grads: tf.Tensor[]; norm: tf.Scalar } {
  if (!(maxNorm > 0)) throw new InvalidArgumentError(`maxNorm must be > 0, got ${maxNorm}`);
  return tf.tidy(() => {
    const control = gradientControl(grads, maxNorm);
    const norm = tf.reshape(tf.slice(control, [0], [1]), []) as tf.Scalar;
    if (maxNorm === Infinity) return { grads: grads.map((g) => g.clone()), norm };
    const scale = tf.reshape(tf.slice(control, [1], [1]), []);
    return { grads: grads.map((g) => tf.mul(g, scale)), norm };
  });
}
