/**
 * Batch sources for the trainer: the batch of global step n is a pure function of (seed, n), so a resumed run sees
 * exactly the batches an uninterrupted one would. Each epoch is a fresh seeded permutation; the last partial batch of an
 * epoch is dropped so every batch has the same size.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors';
import { makeRng, shuffle } from '../random';
import type { Batch, BatchSource } from './trainer';
import { stepSeed } from './trainer';

/** Anything that hands out examples by index (an MnistSplit does). */
export interface IndexedDataset {
  readonly size: number;
  batch(indices: ArrayLike<number>): { x: tf.Tensor; y?: tf.Tensor1D };
}

export function epochSource(data: IndexedDataset, batchSize: number, seed: number): BatchSource {
  if (!(Number.isInteger(batchSize) && batchSize > 0 && batchSize <= data.size)) {
    throw new InvalidArgumentError(`batchSize must be an integer in 1 … ${data.size} (the data set size), got ${batchSize}`);
  }
  const perEpoch = Math.floor(data.size / batchSize);
  let cachedEpoch = -1;
  let order: number[] = [];
  return (step: number): Batch => {
    const epoch = Math.floor(step / perEpoch);
    if (epoch !== cachedEpoch) {
      order = shuffle(Array.from({ length: data.size }, (_, i) => i), makeRng(stepSeed(seed, epoch, 5)));
      cachedEpoch = epoch;
    }
    const k = step % perEpoch;
    return data.batch(order.slice(k * batchSize, (k + 1) * batchSize));
  };
}

/** Rows of an in-memory [N, D] array (toy 2-D sets), batched the same way. */
export function tensorDataset(x: tf.Tensor2D, y?: tf.Tensor1D): IndexedDataset {
  return {
    size: x.shape[0],
    batch: (indices) => {
      const idx = tf.tensor1d(Array.from(indices), 'int32');
      const out = { x: tf.gather(x, idx), y: y ? (tf.gather(y, idx) as tf.Tensor1D) : undefined };
      idx.dispose();
      return out;
    },
  };
}
