/**
 * Sample quality in one call: class-conditional samples → the classifier's predictions and features → conditional
 * accuracy, feature-FID against held-out real digits, and the real-vs-real floor (lib/eval/metrics).
 * Also: drawing class-conditional samples from a loaded diffusion checkpoint with lib's samplers.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../errors';
import type { ImageSplit } from '../data/datasets';
import type { LoadedModel } from '../train/state';
import { checkSamplerSpec, modelCallsFor, sampleWith, type SamplerName, type SamplerSpec } from '../samplers/named';
import type { Denoiser } from '../samplers/types';
import type { DigitClassifier } from './classifier';
import { conditionalAccuracy, ConditionalAccuracy, fidWithFloor, FidReport } from './metrics';

export interface EvaluationReport {
  accuracy: ConditionalAccuracy;
  fid: FidReport;
  /** Accuracy of the classifier on the held-out real digits themselves (the ceiling for `accuracy`). */
  realAccuracy: number;
}

/** The classifier's view of the held-out real digits, computed once and shared by every evaluation. */
export interface RealReference {
  features: Float32Array;
  featureDim: number;
  labels: number[];
  /** The classifier's accuracy on these digits (the ceiling for a sample's conditional accuracy). */
  accuracy: number;
}

/** Sample counts from which the CLIs compare with the whole test split (below it: referenceSplit's balanced subset). */
export const FULL_REFERENCE_AT = 2000;
/** The fewest real images per class a reduced reference keeps. */
export const MIN_REFERENCE_PER_CLASS = 100;

/**
 * The real images to compare `sampleCount` class-balanced samples with: the whole `test` split from FULL_REFERENCE_AT
 * samples on; below, a seeded class-balanced subset of 4× the samples per class (at least MIN_REFERENCE_PER_CLASS, at
 * most the smallest class) — classifying all 10,000 test images takes seconds that a quick check or a notebook need not
 * spend. fidWithFloor halves it per class (reference / comparison), so each half still holds ≥ 2× the samples per class.
 */
export function referenceSplit(test: ImageSplit, sampleCount: number, seed = 0): ImageSplit {
  if (!Number.isInteger(sampleCount) || sampleCount < 1) throw new InvalidArgumentError(`referenceSplit: sampleCount must be a positive integer, got ${sampleCount}`);
  if (sampleCount >= FULL_REFERENCE_AT) return test;
  const counts = test.countsPerClass();
  const perClass = Math.min(Math.min(...counts), Math.max(MIN_REFERENCE_PER_CLASS, Math.ceil((4 * sampleCount) / counts.length)));
  return test.subset(test.classBalancedIndices(perClass, seed));
}

/** Classify every image of `real` (a split the classifier never trained on). Leaves no tensors behind. */
export async function realReference(classifier: DigitClassifier, real: ImageSplit): Promise<RealReference> {
  const all = real.batch(Array.from({ length: real.size }, (_, i) => i));
  try {
    const out = await classifier.classify(all.x);
    const labels = Array.from(real.labels);
    return {
      features: out.features,
      featureDim: out.featureDim,
      labels,
      accuracy: conditionalAccuracy(out.predictions, labels, classifier.config.numClasses).overall,
    };
  } finally {
    tf.dispose([all.x, all.y]);
  }
}

/**
 * Judge `images` ([N,28,28,1]; values clipped to [-1,1] first, as when they are shown) generated for `labels`,
 * against `real` (a RealReference, or the held-out split to compute one from). Leaves no tensors behind.
 */
export async function evaluateSamples(
  classifier: DigitClassifier,
  images: tf.Tensor4D,
  labels: ArrayLike<number>,
  real: RealReference | ImageSplit,
  options: { seed?: number } = {},
): Promise<EvaluationReport> {
  if (labels.length !== images.shape[0]) {
    throw new ShapeMismatchError(`evaluateSamples: ${images.shape[0]} images but ${labels.length} labels`);
  }
  const numClasses = classifier.config.numClasses;
  const ref = 'featureDim' in real ? real : await realReference(classifier, real);
  const clipped = tf.clipByValue(images, -1, 1);
  let samples;
  try {
    samples = await classifier.classify(clipped);
  } finally {
    clipped.dispose();
  }
  return {
    accuracy: conditionalAccuracy(samples.predictions, labels, numClasses),
    fid: fidWithFloor(samples.features, labels, ref.features, ref.labels, samples.featureDim, {
      seed: options.seed ?? 0,
      numClasses,
    }),
    realAccuracy: ref.accuracy,
  };
}

export interface SamplingOptions {
  /** Which sampler (lib/samplers/named.ts: ddpm, ddim, dpm++2m, euler, heun); steps, not model calls (Heun: 2N − 1). */
  sampler: SamplerName;
  steps: number;
  /** Classifier-free guidance weight in lib/samplers' convention: out_u + w·(out_c − out_u); 1 = plain conditional. */
  guidance: number;
  seed: number;
  /** Images per sampler call (guidance doubles the model's batch, except at w = 0 and w = 1). */
  batchSize: number;
  /** DDIM only: stochasticity η (default 0). */
  eta?: number;
  /** Euler / Heun only: largest Karras noise level and ρ (defaults: the schedule's σ(T−1), 7). */
  sigmaMax?: number;
  rho?: number;
  /** Called after every sampler step: `done` of `total` steps over all batches. */
  onStep?: (done: number, total: number) => void;
}

/** The sampler part of SamplingOptions (only the options that were given). */
export function samplerSpecOf(o: Pick<SamplingOptions, 'sampler' | 'steps' | 'eta' | 'sigmaMax' | 'rho'>): SamplerSpec {
  const spec: SamplerSpec = { sampler: o.sampler, steps: o.steps };
  if (o.eta !== undefined && (o.sampler === 'ddim' || o.eta !== 0)) spec.eta = o.eta;
  if (o.sigmaMax !== undefined) spec.sigmaMax = o.sigmaMax;
  if (o.rho !== undefined) spec.rho = o.rho;
  return spec;
}

function checkSampling(loaded: LoadedModel, o: SamplingOptions): void {
  const numClasses = loaded.model.numClasses;
  if (numClasses < 1) throw new InvalidArgumentError('sampleForLabels: the checkpoint holds an unconditional model');
  for (const [name, v] of [['steps', o.steps], ['batchSize', o.batchSize]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`sampleForLabels: ${name} must be a positive integer, got ${v}`);
  }
  if (o.steps > loaded.schedule.T) throw new InvalidArgumentError(`sampleForLabels: steps ${o.steps} exceeds the schedule's T = ${loaded.schedule.T}`);
  if (!Number.isFinite(o.guidance)) throw new InvalidArgumentError(`sampleForLabels: guidance must be a number, got ${o.guidance}`);
  checkSamplerSpec(samplerSpecOf(o), loaded.schedule.T);
}

/**
 * Batch `b` of a run: one sample per entry of `classes`, seeded with seed·100003 + b, so that a batch does not depend on
 * how the batches before it went (a long run can be resumed batch by batch). Returns the images (the caller disposes
 * them) and the model calls made.
 */
export async function sampleBatch(
  loaded: LoadedModel,
  classes: number[],
  b: number,
  o: SamplingOptions,
  onStep?: (step: number) => void,
): Promise<{ images: tf.Tensor4D; modelCalls: number }> {
  checkSampling(loaded, o);
  const { model, schedule } = loaded;
  const numClasses = model.numClasses;
  if (classes.length < 1) throw new InvalidArgumentError('sampleForLabels: no labels given');
  classes.forEach((c, i) => {
    if (!Number.isInteger(c) || c < 0 || c >= numClasses) {
      throw new InvalidArgumentError(`sampleForLabels: label ${i} is ${c}, expected a class in 0…${numClasses - 1}`);
    }
  });
  const cfg = model.config as { imageSize?: number; channels?: number };
  const size = cfg.imageSize ?? 28;
  const denoiser: Denoiser = (x, t, c) => model.apply(x, t, c);
  const result = await sampleWith(denoiser, [classes.length, size, size, cfg.channels ?? 1], schedule, samplerSpecOf(o), {
    seed: o.seed * 100003 + b,
    predictionType: model.predictionType,
    clipX0: true,
    guidance: { weight: o.guidance, classes, nullClass: numClasses },
    onStep: onStep ? (p) => onStep(p.step) : undefined,
  });
  return { images: result.sample as tf.Tensor4D, modelCalls: result.modelCalls ?? modelCallsFor(o.sampler, o.steps) };
}

/**
 * One sample per entry of `labels` (the class each is generated for), from a loaded class-conditional checkpoint, in
 * batches of o.batchSize (sampleBatch: batch b seeded with seed·100003 + b). The caller disposes the result.
 */
export async function sampleForLabels(loaded: LoadedModel, labels: ArrayLike<number>, o: SamplingOptions): Promise<tf.Tensor4D> {
  checkSampling(loaded, o);
  if (labels.length < 1) throw new InvalidArgumentError('sampleForLabels: no labels given');
  const all = Array.from(labels);
  for (let i = 0; i < all.length; i++) {
    if (!Number.isInteger(all[i]) || all[i] < 0 || all[i] >= loaded.model.numClasses) {
      throw new InvalidArgumentError(`sampleForLabels: label ${i} is ${all[i]}, expected a class in 0…${loaded.model.numClasses - 1}`);
    }
  }
  const nBatches = Math.ceil(all.length / o.batchSize);
  const parts: tf.Tensor[] = [];
  try {
    for (let b = 0; b < nBatches; b++) {
      const classes = all.slice(b * o.batchSize, (b + 1) * o.batchSize);
      const { images } = await sampleBatch(loaded, classes, b, o, (step) => o.onStep?.(b * o.steps + step, nBatches * o.steps));
      parts.push(images);
    }
    return tf.concat(parts, 0) as tf.Tensor4D;
  } finally {
    tf.dispose(parts);
  }
}

/** nPerClass samples of every class, ordered by class (0,0,…,1,1,…). The caller disposes `images`. */
export async function generateClassConditional(
  loaded: LoadedModel,
  o: SamplingOptions & { nPerClass: number },
): Promise<{ images: tf.Tensor4D; labels: Int32Array }> {
  if (!Number.isInteger(o.nPerClass) || o.nPerClass < 1) {
    throw new InvalidArgumentError(`generateClassConditional: nPerClass must be a positive integer, got ${o.nPerClass}`);
  }
  const labels = Int32Array.from({ length: loaded.model.numClasses * o.nPerClass }, (_, i) => Math.floor(i / o.nPerClass));
  return { images: await sampleForLabels(loaded, labels, o), labels };
}

const pct = (v: number) => `${(100 * v).toFixed(1)} %`;

/** Human-readable lines of a report; `classNames` (e.g. a split's) label the per-class figures (default 0 … 9). */
export function formatEvaluation(r: EvaluationReport, classNames?: readonly string[]): string {
  const perClass = r.accuracy.perClass
    .map((c, k) => `${classNames?.[k] ?? k}: ${c.total > 0 ? pct(c.accuracy) : '—'}`)
    .join('  ');
  return [
    `conditional accuracy: ${pct(r.accuracy.overall)} (${r.accuracy.correct}/${r.accuracy.total}); classifier on real test images: ${pct(r.realAccuracy)}`,
    `  per class  ${perClass}`,
    `feature-FID: ${r.fid.fid.toFixed(2)} (${r.fid.sampleCount} samples vs ${r.fid.referenceCount} held-out real images)`,
    `  real-vs-real floor: ${r.fid.floor.toFixed(2)} (${r.fid.floorCount} other held-out real images, same class counts)`,
  ].join('\n');
}
