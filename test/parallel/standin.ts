/**
 * A small stand-in model for the data-parallel tests: dense → per-example layer norm → SiLU → dense, ε-MSE-like mean
 * squared error. Per-example normalisation mirrors GroupNorm (no coupling between examples), so sharding is exact.
 * Loaded by module path in worker threads, hence a module of its own.
 */
import { isMainThread } from 'worker_threads';
import * as tf from '@tensorflow/tfjs';
import type { Replica } from '../../lib/parallel';

export interface StandinOptions {
  inDim: number;
  hidden: number;
  outDim: number;
  seed: number;
  /** Makes loss() throw when an input row's first value equals this (to test error propagation). */
  failOn?: number;
  /** Makes the factory throw in worker threads (to test start-up failures). */
  failInWorker?: boolean;
}

export const STANDIN_MODULE = __filename;

export function makeStandin(options: unknown): Replica {
  const o = options as StandinOptions;
  if (o.failInWorker && !isMainThread) throw new TypeError('stand-in refuses to start in a worker');
  // tf.variable copies its initial value: build the values in a tidy so that they are freed
  const [w1, b1, gamma, w2, unused] = tf.tidy(() => [
    tf.variable(tf.randomNormal([o.inDim, o.hidden], 0, 1 / Math.sqrt(o.inDim), 'float32', o.seed)),
    tf.variable(tf.randomNormal([o.hidden], 0, 0.1, 'float32', o.seed + 1)),
    tf.variable(tf.ones([o.hidden])),
    tf.variable(tf.randomNormal([o.hidden, o.outDim], 0, 1 / Math.sqrt(o.hidden), 'float32', o.seed + 2)),
    tf.variable(tf.zeros([3])), // a variable the loss never reaches: its gradient must come back as zeros
  ]);
  const variables = [w1, b1, gamma, w2, unused];
  const forward = (x: tf.Tensor2D) => {
    const h = tf.add(tf.matMul(x, w1), b1);
    const { mean, variance } = tf.moments(h, 1, true);
    const n = tf.mul(tf.div(tf.sub(h, mean), tf.sqrt(tf.add(variance, 1e-5))), gamma);
    return tf.matMul(tf.mul(n, tf.sigmoid(n)) as tf.Tensor2D, w2);
  };
  return {
    variables,
    loss(inputs) {
      const x = inputs.x as tf.Tensor2D;
      if (o.failOn !== undefined && x.dataSync()[0] === o.failOn) throw new RangeError('stand-in asked to fail');
      // labels pick a per-example scale of the target: an int32 input that must be sharded alongside x
      const scale = tf.add(tf.cast(inputs.label, 'float32'), 1).reshape([-1, 1]);
      return tf.mean(tf.square(tf.sub(forward(x), tf.mul(inputs.target, scale)))) as tf.Scalar;
    },
    apply(inputs) {
      const x = inputs.x as tf.Tensor2D;
      if (o.failOn !== undefined && x.dataSync()[0] === o.failOn) throw new RangeError('stand-in asked to fail');
      return forward(x);
    },
    dispose() {
      tf.dispose(variables);
    },
  };
}
