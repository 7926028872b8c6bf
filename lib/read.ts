/**
 * Awaited reads of tensor values, for notebooks, scripts and tests: every read in this course is asynchronous (one API on
 * every backend: on webgpu a synchronous read of a computed tensor throws, and on any GPU it stalls the pipeline).
 *   const m = await readScalar(() => tf.max(x));      // f runs in tf.tidy; its result is read back, then disposed
 */
import * as tf from '@tensorflow/tfjs';

/** Runs `f` inside tf.tidy, reads the tensor it returns (awaited) and disposes it: its values as numbers. */
export async function readValues(f: () => tf.Tensor): Promise<number[]> {
  const t = tf.tidy(f);
  try {
    return Array.from(await t.data(), Number);
  } finally {
    t.dispose();
  }
}

/** readValues for a single number (the first value of the tensor `f` returns). */
export async function readScalar(f: () => tf.Tensor): Promise<number> {
  return (await readValues(f))[0];
}
