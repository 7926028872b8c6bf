/**
 * Exponential moving average of the weights (sample from it: it is smoother than the last iterate).
 * With warm-up (as in the TF / diffusers EMA): decay_n = min(decay, (1 + n)/(10 + n)), n = updates so far, so a short
 * run's average is not dominated by the random initial weights. The update is lib/backend/kernels/webgpu/ema.ts's
 * emaApply: the formula as tfjs ops on every backend, one fused kernel per tensor on webgpu.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../errors';
import type { Control } from '../backend/kernels/webgpu/adam';
import { emaApply } from '../backend/kernels/webgpu/ema';

export function emaDecay(maxDecay: number, updates: number): number {
  return Math.min(maxDecay, (1 + updates) / (10 + updates));
}

export class Ema {
  readonly shadow: tf.Variable[];
  /** Updates applied so far. */
  updates = 0;

  constructor(private readonly variables: tf.Variable[], readonly decay = 0.999) {
    if (!(decay >= 0 && decay < 1)) throw new InvalidArgumentError(`EMA decay must be in [0, 1), got ${decay}`);
    // tidy: tf.variable keeps its initial tensor alive otherwise (one leaked tensor per variable)
    this.shadow = variables.map((v) => tf.tidy(() => tf.variable(v.clone(), false)));
  }

  /**
   * shadow ← d·shadow + (1 − d)·θ with the warmed-up d; returns d. With `control` (gradientControl's [norm, scale, ok],
   * as in Adam.apply) the shadow changes only when its ok is 1: a rejected step leaves it as it was, without a read.
   */
  update(control?: Control): number {
    const d = emaDecay(this.decay, this.updates);
    emaApply(this.shadow, this.variables, d, control);
    this.updates += 1;
    return d;
  }

  /** The averaged weights, read back (awaited). */
  values(): Promise<Float32Array[]> {
    return Promise.all(this.shadow.map((s) => s.data() as Promise<Float32Array>));
  }

  setValues(values: Float32Array[], updates: number): void {
    if (values.length !== this.shadow.length) throw new ShapeMismatchError(`EMA: expected ${this.shadow.length} arrays, got ${values.length}`);
    this.shadow.forEach((s, i) => {
      if (values[i].length !== s.size) throw new ShapeMismatchError(`EMA[${i}]: ${values[i].length} values, expected ${s.size}`);
      tf.tidy(() => s.assign(tf.tensor(values[i], s.shape, 'float32')));
    });
    this.updates = updates;
  }

  dispose(): void {
    tf.dispose(this.shadow);
  }
}
