/**
 * Sample quality in one call: class-conditional samples → the classifier's predictions and features → conditional
 * accuracy, feature-FID against held-out real digits, and the real-vs-real floor (lib/eval/metrics).
 * Also: drawing class-conditional samples from a loaded diffusion checkpoint with lib's samplers.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../errors';
import type { MnistSplit } from '../data/mnist';
import type { LoadedModel } from '../train/state';
import { ddimSample, ddpmSample } from '../samplers/index';
import type { Denoiser } from '../samplers/index';
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

/** Classify every digit of `real` (a split the classifier never trained on). Leaves no tensors behind. */
export async function realReference(classifier: DigitClassifier, real: MnistSplit): Promise<RealReference> {
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
  real: RealReference | MnistSplit,
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
  sampler: 'ddim' | 'ddpm';
  steps: number;
  /** Classifier-free guidance weight in lib/samplers' convention: out_u + w·(out_c − out_u); 1 = plain conditional. */
  guidance: number;
  seed: number;
  /** Images per sampler call (guidance doubles the model's batch). */
  batchSize: number;
  /** DDIM stochasticity (default 0). */
  eta?: number;
  /** Called after every sampler step: `done` of `total` steps over all batches. */
  onStep?: (done: number, total: number) => void;
}

/**
 * One sample per entry of `labels` (the class each is generated for), from a loaded class-conditional checkpoint.
 * Each batch gets its own seed (seed·100003 + batch index), so a run is reproducible and a batch does not depend on
 * how the batches before it went. The caller disposes the result.
 */
export async function sampleForLabels(loaded: LoadedModel, labels: ArrayLike<number>, o: SamplingOptions): Promise<tf.Tensor4D> {
  const { model, schedule } = loaded;
  const numClasses = model.numClasses;
  if (numClasses < 1) throw new InvalidArgumentError('sampleForLabels: the checkpoint holds an unconditional model');
  for (const [name, v] of [['steps', o.steps], ['batchSize', o.batchSize]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`sampleForLabels: ${name} must be a positive integer, got ${v}`);
  }
  if (o.steps > schedule.T) throw new InvalidArgumentError(`sampleForLabels: steps ${o.steps} exceeds the schedule's T = ${schedule.T}`);
  if (!Number.isFinite(o.guidance)) throw new InvalidArgumentError(`sampleForLabels: guidance must be a number, got ${o.guidance}`);
  if (labels.length < 1) throw new InvalidArgumentError('sampleForLabels: no labels given');
  for (let i = 0; i < labels.length; i++) {
    if (!Number.isInteger(labels[i]) || labels[i] < 0 || labels[i] >= numClasses) {
      throw new InvalidArgumentError(`sampleForLabels: label ${i} is ${labels[i]}, expected a class in 0…${numClasses - 1}`);
    }
  }
  const cfg = model.config as { imageSize?: number; channels?: number };
  const size = cfg.imageSize ?? 28;
  const denoiser: Denoiser = (x, t, classes) => model.apply(x, t, classes);
  const nBatches = Math.ceil(labels.length / o.batchSize);
  const parts: tf.Tensor[] = [];
  try {
    for (let b = 0; b < nBatches; b++) {
      const classes = Array.from(labels).slice(b * o.batchSize, (b + 1) * o.batchSize);
      const shape = [classes.length, size, size, cfg.channels ?? 1];
      const common = {
        seed: o.seed * 100003 + b,
        predictionType: model.predictionType,
        clipX0: true,
        guidance: { weight: o.guidance, classes, nullClass: numClasses },
        onStep: (p: { step: number }) => o.onStep?.(b * o.steps + p.step, nBatches * o.steps),
      };
      const result =
        o.sampler === 'ddim'
          ? await ddimSample(denoiser, shape, schedule, { ...common, steps: o.steps, eta: o.eta ?? 0 })
          : await ddpmSample(denoiser, shape, schedule, { ...common, steps: o.steps });
      parts.push(result.sample);
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

/** Human-readable lines of a report. */
export function formatEvaluation(r: EvaluationReport): string {
  const perClass = r.accuracy.perClass
    .map((c, k) => `${k}: ${c.total > 0 ? pct(c.accuracy) : '—'}`)
    .join('  ');
  return [
    `conditional accuracy: ${pct(r.accuracy.overall)} (${r.accuracy.correct}/${r.accuracy.total}); classifier on real test digits: ${pct(r.realAccuracy)}`,
    `  per class  ${perClass}`,
    `feature-FID: ${r.fid.fid.toFixed(2)} (${r.fid.sampleCount} samples vs ${r.fid.referenceCount} held-out real digits)`,
    `  real-vs-real floor: ${r.fid.floor.toFixed(2)} (${r.fid.floorCount} other held-out real digits, same class counts)`,
  ].join('\n');
}
