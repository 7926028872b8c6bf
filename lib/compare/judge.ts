/**
 * Judging the generators of notebook 10 with the data set's classifier (lib/eval):
 *   judgeUnconditional  mode coverage of the predicted classes (lib/eval/coverage), feature-FID against held-out real
 *                       images with its real-vs-real floor (fidWithFloor; the floor set has 1/K of the samples per
 *                       class), and the within-class spread of the features relative to real images' (samples grouped
 *                       by predicted class: < 1 means less variety inside a class, what per-class mode collapse does)
 *   judgeConditional    accuracy of class-conditional samples and their FID (lib/eval's evaluateSamples)
 *   timeSampling        milliseconds per image, the read that completes the work included
 *   classifierFor       the shipped classifier of a data set, or a CorruptFileError saying how to get it
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { CorruptFileError, InvalidArgumentError } from '../errors';
import type { DatasetName, ImageSplit } from '../data/datasets';
import type { DigitClassifier } from '../eval/classifier';
import { CLASSIFIER_FILE, classifierDir, loadClassifier } from '../eval/classifier-io';
import { modeCoverage, type ModeCoverage } from '../eval/coverage';
import { evaluateSamples, type EvaluationReport, type RealReference } from '../eval/evaluate';
import { fidWithFloor, type FidReport, withinClassSpread } from '../eval/metrics';
import { makeRng, shuffle } from '../random';
import { classLabels, type Generator, type SampleOptions } from './generators';

/**
 * The folder of the shipped classifier of `dataset`: lib/eval's classifierDir (checkpoints/classifier-<dataset>), or
 * <root>/classifier-<dataset>. A CorruptFileError saying how to make one when there is none (a digit classifier cannot
 * judge shoes).
 */
export function classifierDirFor(dataset: DatasetName, root?: string): string {
  const dir = root === undefined ? classifierDir(dataset) : path.join(root, `classifier-${dataset}`);
  if (!fs.existsSync(path.join(dir, CLASSIFIER_FILE))) {
    throw new CorruptFileError(`no classifier of ${dataset}: looked for ${path.relative(path.dirname(path.dirname(dir)), dir)}/${CLASSIFIER_FILE}` +
      ` (train one with 'npm run train-classifier -- --dataset ${dataset}')`);
  }
  return dir;
}

/** The shipped classifier of `dataset` (classifierDirFor), checked to be one of that data set (lib/eval's loadClassifier). */
export function classifierFor(dataset: DatasetName, root?: string): DigitClassifier {
  return loadClassifier(classifierDirFor(dataset, root), { dataset });
}

/** Mean of tr Σ_c over the classes that have ≥ 2 rows (withinClassSpread needs 2 per class); NaN when none has. */
export function spreadOf(features: ArrayLike<number>, dim: number, labels: ArrayLike<number>, numClasses = 10): number {
  const counts = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < labels.length; i++) counts[labels[i]]++;
  const keep = Array.from({ length: labels.length }, (_, i) => i).filter((i) => counts[labels[i]] >= 2);
  if (keep.length === 0) return NaN;
  const f = new Float32Array(keep.length * dim);
  keep.forEach((r, k) => { for (let j = 0; j < dim; j++) f[k * dim + j] = features[r * dim + j]; });
  return withinClassSpread(f, dim, keep.map((i) => labels[i]), numClasses);
}

/** What real images score on the unconditional measures: the yardstick for the samples' figures. */
export interface RealYardstick {
  coverage: ModeCoverage;
  /** Within-class spread of real images grouped by predicted class. */
  spread: number;
  count: number;
}

/** The classifier's view of `n` real images drawn (seeded) from `split`: their predicted-class histogram and spread. */
export async function realYardstick(classifier: DigitClassifier, split: ImageSplit, n: number, seed = 0): Promise<RealYardstick> {
  if (!(Number.isInteger(n) && n >= 2 && n <= split.size)) throw new InvalidArgumentError(`realYardstick: n must be an integer in 2…${split.size}, got ${n}`);
  const idx = shuffle(Array.from({ length: split.size }, (_, i) => i), makeRng(seed + 17)).slice(0, n);
  const b = split.batch(idx);
  try {
    const c = await classifier.classify(b.x);
    return { coverage: modeCoverage(c.predictions, classifier.config.numClasses), spread: spreadOf(c.features, c.featureDim, c.predictions, classifier.config.numClasses), count: n };
  } finally {
    tf.dispose([b.x, b.y]);
  }
}

export interface UnconditionalReport {
  coverage: ModeCoverage;
  fid: FidReport;
  /** fid / floor. */
  fidRatio: number;
  /** Within-class spread of the samples (by predicted class) / the real images'. */
  spreadRatio: number;
}

/**
 * Judge unconditional `images` ([N, 28, 28, 1], clipped to [−1, 1] first); leaves no tensors. `fidSeed` splits the real
 * images into FID reference and floor set: keep it fixed (default 0) to compare models on the same ones.
 */
export async function judgeUnconditional(
  classifier: DigitClassifier, images: tf.Tensor4D, real: RealReference, yardstick: RealYardstick, fidSeed = 0,
): Promise<UnconditionalReport> {
  const k = classifier.config.numClasses;
  const clipped = tf.clipByValue(images, -1, 1) as tf.Tensor4D;
  let c;
  try {
    c = await classifier.classify(clipped);
  } finally {
    clipped.dispose();
  }
  const n = images.shape[0];
  // the samples' own labels are unknown: the floor's real set takes 1/K of them from each class
  const floorLabels = Array.from({ length: n }, (_, i) => i % k);
  const fid = fidWithFloor(c.features, floorLabels, real.features, real.labels, c.featureDim, { seed: fidSeed, numClasses: k });
  return {
    coverage: modeCoverage(c.predictions, k),
    fid,
    fidRatio: fid.fid / fid.floor,
    spreadRatio: spreadOf(c.features, c.featureDim, c.predictions, k) / yardstick.spread,
  };
}

/**
 * Class-conditional samples: `perClass` of each class drawn with `seed`, judged by lib/eval's evaluateSamples (its FID
 * split of the real images with `fidSeed`, default 0: keep it fixed to compare models on the same reference and floor).
 */
export async function judgeConditional(
  classifier: DigitClassifier, gen: Generator, perClass: number, real: RealReference, seed: number,
  opts: Omit<SampleOptions, 'classes'> & { fidSeed?: number } = {},
): Promise<EvaluationReport> {
  const labels = classLabels(perClass, gen.numClasses);
  const { fidSeed, ...sampleOpts } = opts;
  const images = await gen.sample(labels.length, seed, { ...sampleOpts, classes: labels });
  try {
    return await evaluateSamples(classifier, images, labels, real, { seed: fidSeed ?? 0 });
  } finally {
    images.dispose();
  }
}

export interface SamplingCost {
  /** Milliseconds per image when `batch` images are made at once (median of the repetitions). */
  msPerImage: number;
  batch: number;
  callsPerImage: number;
  /** msPerImage / callsPerImage: one network call's share per image. */
  msPerCall: number;
  repetitions: number;
}

/** Time `gen` making `batch` unconditional images (after one warm-up), median of `reps`; the read is inside the time. */
export async function timeSampling(gen: Generator, batch: number, reps = 3, opts: Omit<SampleOptions, 'batchSize'> = {}): Promise<SamplingCost> {
  if (!(Number.isInteger(reps) && reps >= 1)) throw new InvalidArgumentError(`timeSampling: reps must be a positive integer, got ${reps}`);
  const once = async (seed: number) => {
    const t0 = performance.now();
    const img = await gen.sample(batch, seed, { ...opts, batchSize: batch });
    await img.data();
    img.dispose();
    return performance.now() - t0;
  };
  await once(1);
  const times: number[] = [];
  for (let r = 0; r < reps; r++) times.push(await once(2 + r));
  times.sort((a, b) => a - b);
  const msPerImage = times[Math.floor(times.length / 2)] / batch;
  const calls = gen.callsPerImage(opts.guidance);
  return { msPerImage, batch, callsPerImage: calls, msPerCall: msPerImage / calls, repetitions: reps };
}
