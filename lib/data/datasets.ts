/**
 * The course's image data sets, one API for all: MNIST digits and Fashion-MNIST article images, each with its
 * canonical split (60,000 train / 10,000 test), cached as bytes under datasets/cache/ (see ./cache, ./sources).
 *
 *   const train = loadDataset('fashion-mnist', 'train');          // or loadMnist('train')
 *   for (const { x, y } of train.batches(64, { seed: epoch })) { …; tf.dispose([x, y]); }
 *
 * Tensors follow the course conventions: x float32 [B, 28, 28, 1] in [-1, 1] (byte 0 → −1, 255 → +1), y int32 [B] in 0…9.
 * Example i of a split is image i of the source IDX file. The caller owns (and disposes) every tensor handed out.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors';
import { makeRng, shuffle } from '../random';
import { defaultCacheDir, ensureDatasetCache } from './cache';
import type { SplitBytes } from './cache';
import { checkDatasetName, DATASETS, defaultSource, IMAGE_SIZE, NUM_CLASSES, PIXELS } from './sources';
import type { DatasetName, DatasetSource, SplitName } from './sources';

export { DATASET_NAMES, DATASETS, IMAGE_SIZE, NUM_CLASSES, PIXELS } from './sources';
export type { DatasetInfo, DatasetName, DatasetSource, SplitName } from './sources';

/** Seed of the validation hold-out (the same number the course has always used for its splits). */
export const VALIDATION_SEED = 20201;
/** Default validation size per class: 5,000 of MNIST's 60,000 training digits, the usual 55k / 5k. */
export const VALIDATION_PER_CLASS = 500;

export interface ImageBatch {
  /** float32 [B, 28, 28, 1] in [-1, 1]. */
  x: tf.Tensor4D;
  /** int32 [B], classes 0…9. */
  y: tf.Tensor1D;
}

export interface BatchOptions {
  /** Seed of the shuffle (same seed → same batches). Default 0. */
  seed?: number;
  /** Default true. With false the split's stored order is used. */
  shuffle?: boolean;
  /** Drop a last batch smaller than batchSize. Default false. */
  dropLast?: boolean;
}

export interface ImageSplit {
  readonly dataset: DatasetName;
  /** 'validation' (and 'train' after a hold-out) come from validationSplit. */
  readonly split: SplitName | 'validation';
  readonly size: number;
  /** Name of each class (index = label): '0' … '9' for MNIST, 'T-shirt/top' … 'Ankle boot' for Fashion-MNIST. */
  readonly classNames: readonly string[];
  /** [size] class of each example (shared: read only). */
  readonly labels: Uint8Array;
  /** [size × 784] pixel bytes, row-major, 0 = black background, 255 = white. Shared with every loader: read only. */
  readonly images: Uint8Array;
  /** Examples at these indices as tensors. */
  batch(indices: ArrayLike<number>): ImageBatch;
  /** One epoch of batches in a seeded order. */
  batches(batchSize: number, opts?: BatchOptions): IterableIterator<ImageBatch>;
  /** nPerClass seeded indices of each class, ordered by class (0,0,…,1,1,…): a grid shows one class per row. */
  classBalancedIndices(nPerClass: number, seed?: number): number[];
  /** `batch(classBalancedIndices(nPerClass, seed))`. */
  classBalancedSample(nPerClass: number, seed?: number): ImageBatch;
  /** Examples per class (index = class). */
  countsPerClass(): number[];
  /** A new split holding these examples, in this order (its bytes are copied). */
  subset(indices: ArrayLike<number>): ImageSplit;
}

export interface LoadOptions {
  /** Where the cache lives (default datasets/cache of this repository). */
  cacheDir?: string;
  /** Folder holding the source files under their usual names (default: the installed package); digests still checked. */
  sourceDir?: string;
  /** Source files and their digests, in full (tests build small sources; overrides sourceDir). */
  source?: DatasetSource;
}

const loaded = new Map<string, SplitBytes>();

function checkPositiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0) {
    throw new InvalidArgumentError(`${name} must be a positive integer, got ${v}`);
  }
}

/**
 * Load one split of a data set. The first load in a process checks the cache (builds it when missing or corrupt:
 * MNIST ≈ 0.25 s, Fashion-MNIST ≈ 0.45 s; a valid one loads in ≈ 65 ms for train, 6 ms for test) and memoises it.
 */
export function loadDataset(name: DatasetName, split: SplitName, opts: LoadOptions = {}): ImageSplit {
  checkDatasetName(name);
  if (split !== 'train' && split !== 'test') {
    throw new InvalidArgumentError(`unknown split ${JSON.stringify(split)} of ${name}: expected 'train' or 'test' (a validation split comes from validationSplit(train))`);
  }
  const source = opts.source ?? (opts.sourceDir !== undefined ? defaultSource(name, opts.sourceDir) : undefined);
  const dir = opts.cacheDir ?? defaultCacheDir();
  const key = `${name}\0${split}\0${dir}\0${source ? JSON.stringify(source) : ''}`;
  let bytes = loaded.get(key);
  if (!bytes) {
    const r = ensureDatasetCache(name, { cacheDir: dir, source, splits: [split] });
    bytes = r.splits[split]!;
    loaded.set(key, bytes);
  }
  return makeSplit(name, split, bytes.images, bytes.labels);
}

/** Fashion-MNIST's train or test split (`loadDataset('fashion-mnist', split, opts)`). */
export function loadFashionMnist(split: SplitName, opts: LoadOptions = {}): ImageSplit {
  return loadDataset('fashion-mnist', split, opts);
}

/** Forget memoised splits (tests that corrupt a cache on disk use it). */
export function clearDatasetMemo(): void {
  loaded.clear();
}

/** Bytes → [-1, 1]: the one place where the pixel scaling of the course's image data is defined. */
export function bytesToUnit(b: number): number {
  return b / 127.5 - 1;
}

/**
 * Seeded, stratified hold-out: `perClass` examples of each class (chosen with makeRng(seed)) go to `validation`, the rest
 * to `train`; both keep the source order. Use it to watch a model during training without looking at the test split.
 */
export function validationSplit(
  train: ImageSplit,
  opts: { perClass?: number; seed?: number } = {},
): { train: ImageSplit; validation: ImageSplit } {
  const perClass = opts.perClass ?? VALIDATION_PER_CLASS;
  checkPositiveInt('perClass', perClass);
  const { rest, held } = stratifiedHoldOut(train.labels, perClass, opts.seed ?? VALIDATION_SEED);
  const view = (indices: number[], split: ImageSplit['split']) => {
    const s = train.subset(indices);
    return makeSplit(s.dataset, split, s.images, s.labels);
  };
  return { train: view(rest, 'train'), validation: view(held, 'validation') };
}

/**
 * For each class, its indices (ascending) are shuffled with one makeRng(seed) (classes 0…9 in turn) and the first
 * `perClass` are held out. Returns both index lists in ascending order.
 */
export function stratifiedHoldOut(labels: ArrayLike<number>, perClass: number, seed: number): { rest: number[]; held: number[] } {
  const rng = makeRng(seed);
  const byClass: number[][] = Array.from({ length: NUM_CLASSES }, () => []);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    if (!(Number.isInteger(c) && c >= 0 && c < NUM_CLASSES)) {
      throw new InvalidArgumentError(`label ${c} at index ${i} is outside 0 … ${NUM_CLASSES - 1}`);
    }
    byClass[c].push(i);
  }
  const held: number[] = [];
  const rest: number[] = [];
  byClass.forEach((idx, c) => {
    if (idx.length <= perClass) {
      throw new InvalidArgumentError(`class ${c} has ${idx.length} examples: cannot hold out ${perClass} and keep any (need at least ${perClass + 1})`);
    }
    shuffle(idx, rng);
    held.push(...idx.slice(0, perClass));
    rest.push(...idx.slice(perClass));
  });
  const asc = (a: number, b: number) => a - b;
  return { rest: rest.sort(asc), held: held.sort(asc) };
}

function makeSplit(dataset: DatasetName, split: ImageSplit['split'], images: Uint8Array, labels: Uint8Array): ImageSplit {
  const size = labels.length;
  const classNames = DATASETS[dataset].classNames;
  const byClass: number[][] = Array.from({ length: NUM_CLASSES }, () => []);
  labels.forEach((c, i) => byClass[c].push(i));

  const checkIndex = (i: number) => {
    if (!Number.isInteger(i) || i < 0 || i >= size) {
      throw new InvalidArgumentError(`index ${i} is outside 0…${size - 1} of the ${dataset} ${split} split`);
    }
  };

  const batch = (indices: ArrayLike<number>): ImageBatch => {
    const b = indices.length;
    if (b === 0) throw new InvalidArgumentError('batch(indices): indices is empty');
    const x = new Float32Array(b * PIXELS);
    const y = new Int32Array(b);
    for (let k = 0; k < b; k++) {
      const i = indices[k];
      checkIndex(i);
      const off = i * PIXELS;
      for (let j = 0; j < PIXELS; j++) x[k * PIXELS + j] = bytesToUnit(images[off + j]);
      y[k] = labels[i];
    }
    return { x: tf.tensor4d(x, [b, IMAGE_SIZE, IMAGE_SIZE, 1], 'float32'), y: tf.tensor1d(y, 'int32') };
  };

  function* batches(batchSize: number, opts: BatchOptions = {}): IterableIterator<ImageBatch> {
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
        throw new InvalidArgumentError(`nPerClass ${nPerClass} exceeds the ${idx.length} examples of class ${c} in ${dataset} ${split}`);
      }
      out.push(...shuffle(idx.slice(), rng).slice(0, nPerClass));
    });
    return out;
  };

  const subset = (indices: ArrayLike<number>): ImageSplit => {
    const n = indices.length;
    if (n === 0) throw new InvalidArgumentError('subset(indices): indices is empty');
    const img = new Uint8Array(n * PIXELS);
    const lab = new Uint8Array(n);
    for (let k = 0; k < n; k++) {
      const i = indices[k];
      checkIndex(i);
      img.set(images.subarray(i * PIXELS, (i + 1) * PIXELS), k * PIXELS);
      lab[k] = labels[i];
    }
    return makeSplit(dataset, split, img, lab);
  };

  return {
    dataset,
    split,
    size,
    classNames,
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
    countsPerClass: () => byClass.map((idx) => idx.length),
    subset,
  };
}
