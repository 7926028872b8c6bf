// Helpers shared by the baselines' tests (vae.test.ts, gan.test.ts).
import * as tf from '@tensorflow/tfjs';
import type { StepOptimizer } from '../../lib/models/baseline-common';

/** A deterministic stand-in image batch in (−1, 1). */
export function images(b: number, size: number, seed: number, channels = 1): tf.Tensor4D {
  return tf.tidy(() => tf.tanh(tf.randomNormal([b, size, size, channels], 0, 1.5, 'float32', seed)));
}

export const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor): number => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

/** An optimizer that records what a step hands it and changes nothing. */
export class Recorder implements StepOptimizer {
  calls: { shapes: number[][]; lr: number }[] = [];
  apply(grads: tf.Tensor[], lr: number): void {
    this.calls.push({ shapes: grads.map((g) => g.shape.slice()), lr });
  }
}

/** Runs f with every way of reading a tensor's values replaced by a throw (a step must build tensors only). */
export function withoutReads<T>(f: () => T): T {
  const proto = tf.Tensor.prototype as unknown as Record<string, unknown>;
  const names = ['dataSync', 'data', 'arraySync', 'array', 'bufferSync', 'buffer'];
  const saved = names.map((n) => proto[n]);
  names.forEach((n) => { proto[n] = () => { throw new Error(`read (${n}) inside a step`); }; });
  try {
    return f();
  } finally {
    names.forEach((n, i) => { proto[n] = saved[i]; });
  }
}
