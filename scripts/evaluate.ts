/**
 * Sample quality of a class-conditional diffusion checkpoint, as judged by the classifier of its data set:
 *
 *   npm run evaluate -- --checkpoint checkpoints/<model> [--sampler ddpm|ddim|dpm++2m|euler|heun] [--steps N | --calls N]
 *        [--eta 0 (ddim)] [--sigma-max σ] [--rho 7] (euler, heun) [--guidance 2] [--n-per-class 20 | --n 2000]
 *        [--seed 0] [--batch 64] [--weights ema|params] [--save-raw out.bin] [--json out.json] [--quiet (no progress bar)]
 *   npm run evaluate -- --raw samples.bin [--json out.json]          (samples written by npm run sample -- --raw)
 *   npm run evaluate -- --baseline real|noise [--dataset mnist|fashion-mnist] [--n-per-class 20]
 *                                                                    (sanity: real test images / pure noise as "samples")
 *
 * The data set comes from the checkpoint (its header; older checkpoints: MNIST), the raw file's meta, or --dataset; it
 * picks the classifier (checkpoints/classifier-<dataset>, or --classifier DIR) and the real test images. Prints
 * conditional accuracy (per class, by name, and overall), feature-FID against held-out real images and the
 * real-vs-real floor at the same sample size, the wall time, and for a checkpoint the model calls and the wall time per
 * 64 images. From 2,000 samples on the reference is the whole test split (10,000 images); below, a class-balanced
 * subset (lib/eval's referenceSplit). --guidance is lib/samplers' weight w in ε_u + w·(ε_c − ε_u) (1 = plain
 * conditional). --calls N picks the steps that make at most N model calls (Heun: 2N − 1 calls in N steps).
 */
import * as fs from 'fs';
import { parseArgs } from 'util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { DATASETS, loadDataset } from '../lib/data/datasets';
import { checkDatasetName, type DatasetName } from '../lib/data/sources';
import { fastOr } from '../lib/env';
import { DiffusionError, InvalidArgumentError } from '../lib/errors';
import { makeRng } from '../lib/random';
import type { DigitClassifier } from '../lib/eval/classifier';
import { classifierDir, loadClassifier } from '../lib/eval/classifier-io';
import { evaluateSamples, formatEvaluation, referenceSplit, realReference, sampleBatch, type EvaluationReport, type SamplingOptions } from '../lib/eval/evaluate';
import { stratifiedHalves, balancedSubset } from '../lib/eval/metrics';
import { readRawSamples, writeRawSamples } from '../lib/eval/raw-samples';
import { samplerLabel } from '../lib/samplers/named';
import { checkpointDataset, loadModel } from '../lib/train/state';
import { progressBar } from '../lib/viz/progress';
import { SAMPLER_FLAGS, SAMPLER_USAGE, samplerSpecFromArgs } from './sampler-args';

const USAGE = 'usage: npm run evaluate -- (--checkpoint DIR | --raw FILE | --baseline real|noise) ' +
  `[${SAMPLER_USAGE}] [--guidance 2] [--n-per-class 20 | --n N] [--seed 0] [--batch 64] [--weights ema|params] ` +
  '[--dataset mnist|fashion-mnist] [--classifier DIR] [--save-raw FILE] [--json FILE] [--quiet]';

function intArg(raw: string | undefined, name: string, fallback: number, min = 1): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(v) || v < min) throw new InvalidArgumentError(`--${name} must be an integer ≥ ${min}, got ${JSON.stringify(raw)}`);
  return v;
}

function numArg(raw: string | undefined, name: string, fallback: number): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v)) throw new InvalidArgumentError(`--${name} must be a number, got ${JSON.stringify(raw)}`);
  return v;
}

/** The option table (strict: an unknown flag is an InvalidArgumentError, see parseEvaluateArgs). */
const OPTIONS = {
  checkpoint: { type: 'string' }, raw: { type: 'string' }, baseline: { type: 'string' }, dataset: { type: 'string' },
  guidance: { type: 'string' }, 'n-per-class': { type: 'string' }, n: { type: 'string' }, seed: { type: 'string' },
  batch: { type: 'string' }, weights: { type: 'string' }, classifier: { type: 'string' }, 'save-raw': { type: 'string' },
  json: { type: 'string' }, quiet: { type: 'boolean' }, ...SAMPLER_FLAGS,
} as const;

export type EvaluateValues = Partial<Record<Exclude<keyof typeof OPTIONS, 'quiet'>, string>> & { quiet?: boolean };

/** The command line → its values, checked as far as they can be without loading anything. */
export function parseEvaluateArgs(argv: string[]): EvaluateValues {
  let values: EvaluateValues;
  try {
    values = parseArgs({ args: argv, options: OPTIONS, strict: true }).values as EvaluateValues;
  } catch (e) {
    throw new InvalidArgumentError(`${(e as Error).message}. ${USAGE}`);
  }
  const sources = [values.checkpoint, values.raw, values.baseline].filter((v) => v !== undefined);
  if (sources.length !== 1) throw new InvalidArgumentError(`give exactly one of --checkpoint <dir>, --raw <samples.bin>, --baseline real|noise. ${USAGE}`);
  if (values.baseline !== undefined && values.baseline !== 'real' && values.baseline !== 'noise') {
    throw new InvalidArgumentError(`--baseline must be real or noise, got ${JSON.stringify(values.baseline)}`);
  }
  if (values.dataset !== undefined) checkDatasetName(values.dataset);
  if (values['n-per-class'] !== undefined && values.n !== undefined) throw new InvalidArgumentError('give --n-per-class or --n, not both');
  const samplerGiven = (Object.keys(SAMPLER_FLAGS) as (keyof typeof SAMPLER_FLAGS)[]).filter((k) => values[k] !== undefined);
  const samplingGiven = [...samplerGiven, ...(['guidance', 'batch', 'weights', 'save-raw'] as const).filter((k) => values[k] !== undefined)];
  if (values.checkpoint === undefined && samplingGiven.length > 0) {
    throw new InvalidArgumentError(`--${samplingGiven[0]} applies to --checkpoint only (samples drawn here)`);
  }
  if (values.checkpoint !== undefined) samplerSpecFromArgs(values, { T: Number.MAX_SAFE_INTEGER }); // sampler flags now; T once loaded
  if (values.weights !== undefined && values.weights !== 'ema' && values.weights !== 'params') {
    throw new InvalidArgumentError(`--weights must be ema or params, got ${JSON.stringify(values.weights)}`);
  }
  return values;
}

/** The per-class sample count from --n-per-class or --n (which must be a multiple of the class count). */
function perClassCount(a: EvaluateValues, numClasses: number): number {
  if (a.n !== undefined) {
    const n = intArg(a.n, 'n', 0, numClasses);
    if (n % numClasses !== 0) throw new InvalidArgumentError(`--n must be a multiple of the ${numClasses} classes (equal samples per class), got ${n}`);
    return n / numClasses;
  }
  return intArg(a['n-per-class'], 'n-per-class', fastOr(3, 20));
}

export interface EvaluateOutput {
  settings: Record<string, unknown>;
  dataset: DatasetName;
  classNames: readonly string[];
  backend: string;
  accuracy: { overall: number; perClass: number[]; confusion: number[][] };
  realTestAccuracy: number;
  fid: EvaluationReport['fid'];
  reference: { images: number; wholeTestSplit: boolean };
  wallSeconds: number;
  generationSeconds: number;
  /** Sampling only (checkpoint runs): seconds per 64 images at the batch size used. */
  secondsPer64Images?: number;
  date: string;
}

/** The CLI as a function (tests call it in-process); argv excludes node and the script. */
export async function runEvaluate(argv: string[], log: (line: string) => void = console.log): Promise<EvaluateOutput> {
  const a = parseEvaluateArgs(argv);
  const seed = intArg(a.seed, 'seed', 0, 0);
  const started = Date.now();
  const backend = await initBackend();

  let images: tf.Tensor4D | undefined;
  let classifier: DigitClassifier | undefined;
  // loaded as soon as the data set is known: a missing or foreign classifier fails before any sampling
  const judge = (d: DatasetName) => (classifier = loadClassifier(a.classifier ?? classifierDir(d), { dataset: d }));
  let labels: Int32Array;
  let settings: Record<string, unknown>;
  let dataset: DatasetName;
  let generationSeconds = 0;
  let secondsPer64Images: number | undefined;
  try {
    if (a.checkpoint !== undefined) {
      const weights = (a.weights ?? 'ema') as 'ema' | 'params';
      const loaded = loadModel(a.checkpoint, weights);
      try {
        dataset = checkpointDataset(loaded.header);
        if (a.dataset !== undefined && a.dataset !== dataset) {
          throw new InvalidArgumentError(`--dataset ${a.dataset}: ${a.checkpoint} was trained on ${dataset}`);
        }
        judge(dataset);
        const spec = samplerSpecFromArgs(a, { T: loaded.schedule.T, calls: fastOr(5, 50) });
        const nPerClass = perClassCount(a, loaded.model.numClasses);
        const guidance = numArg(a.guidance, 'guidance', 2);
        const batchSize = intArg(a.batch, 'batch', 64);
        const o: SamplingOptions = { ...spec, guidance, seed, batchSize };
        const n = loaded.model.numClasses * nPerClass;
        labels = Int32Array.from({ length: n }, (_, i) => Math.floor(i / nPerClass));
        settings = {
          checkpoint: a.checkpoint, dataset, weights, sampler: spec.sampler, steps: spec.steps, modelCalls: spec.calls,
          ...(spec.eta !== undefined ? { eta: spec.eta } : {}), ...(spec.sigmaMax !== undefined ? { sigmaMax: spec.sigmaMax } : {}),
          ...(spec.rho !== undefined ? { rho: spec.rho } : {}), guidance, nPerClass, seed, batchSize, step: loaded.header.step,
        };
        log(`sampling ${nPerClass} per class (${n}) from ${a.checkpoint} (${dataset}, step ${loaded.header.step}): ${samplerLabel(spec)}, guidance ${guidance}, seed ${seed}`);
        const nBatches = Math.ceil(n / batchSize);
        const bar = progressBar({ total: nBatches * spec.steps, label: 'sample', mode: a.quiet ? 'silent' : 'auto' });
        const parts: tf.Tensor[] = [];
        const t0 = Date.now();
        let calls = spec.calls;
        try {
          for (let b = 0; b < nBatches; b++) {
            const classes = Array.from(labels.subarray(b * batchSize, (b + 1) * batchSize));
            const r = await sampleBatch(loaded, classes, b, o, (step) => bar.update(b * spec.steps + step));
            parts.push(r.images);
            calls = r.modelCalls;
          }
          images = tf.concat(parts, 0) as tf.Tensor4D;
        } finally {
          tf.dispose(parts);
        }
        const pixels = (await images.data()) as Float32Array; // the read that completes the sampling: inside the timing
        bar.done();
        generationSeconds = (Date.now() - t0) / 1000;
        secondsPer64Images = (generationSeconds * 64) / n;
        settings.modelCalls = calls;
        if (a['save-raw']) {
          writeRawSamples(a['save-raw'], { count: labels.length, height: 28, width: 28, channels: 1, pixels, labels, meta: settings });
          log(`wrote ${a['save-raw']}`);
        }
      } finally {
        loaded.model.dispose();
      }
    } else if (a.raw !== undefined) {
      const raw = readRawSamples(a.raw);
      if (raw.height !== 28 || raw.width !== 28 || raw.channels !== 1) {
        throw new InvalidArgumentError(`${a.raw} holds ${raw.height}×${raw.width}×${raw.channels} images, expected 28×28×1`);
      }
      const metaDataset = raw.meta.dataset as string | undefined;
      if (a.dataset !== undefined && metaDataset !== undefined && a.dataset !== metaDataset) {
        throw new InvalidArgumentError(`--dataset ${a.dataset}: ${a.raw} holds samples of ${metaDataset}`);
      }
      dataset = checkDatasetName(a.dataset ?? metaDataset ?? 'mnist');
      judge(dataset);
      images = tf.tensor4d(raw.pixels, [raw.count, 28, 28, 1]);
      labels = raw.labels;
      settings = { raw: a.raw, ...raw.meta, dataset };
      log(`${raw.count} samples of ${dataset} from ${a.raw} ${JSON.stringify(raw.meta)}`);
    } else {
      dataset = checkDatasetName(a.dataset ?? 'mnist');
      judge(dataset);
      const nPerClass = perClassCount(a, 10);
      const test = loadDataset(dataset, 'test');
      if (a.baseline === 'real') {
        // Real test images from the comparison half (not the FID reference half), a different draw than the floor's.
        const [, otherHalf] = stratifiedHalves(test.labels, seed);
        const batch = test.batch(balancedSubset(test.labels, otherHalf, nPerClass, seed + 7));
        images = batch.x;
        labels = (await batch.y.data()) as Int32Array;
        batch.y.dispose();
      } else {
        const rng = makeRng(seed);
        labels = Int32Array.from({ length: 10 * nPerClass }, (_, i) => Math.floor(i / nPerClass));
        images = tf.tensor4d(Float32Array.from({ length: labels.length * 784 }, () => 2 * rng() - 1), [labels.length, 28, 28, 1]);
      }
      settings = { baseline: a.baseline, dataset, nPerClass, seed };
    }

    const test = loadDataset(dataset, 'test');
    // a baseline draws its 'samples' from the test split: keep the whole split so the two stay disjoint as before
    const real = a.baseline === 'real' ? test : referenceSplit(test, labels.length);
    const referenceImages = real.size;
    const whole = real.size === test.size;
    const ref = await realReference(classifier!, real);
    const report = await evaluateSamples(classifier!, images, labels, ref, { seed });
    const classNames = DATASETS[dataset].classNames;
    const wallSeconds = (Date.now() - started) / 1000;
    log(formatEvaluation(report, classNames));
    log(`reference: ${referenceImages} real ${dataset} test images${whole ? ' (the whole test split)' : ' (a class-balanced subset; the whole split from 2,000 samples on)'}`);
    log(`wall time ${wallSeconds.toFixed(1)} s${generationSeconds ? ` (sampling ${generationSeconds.toFixed(1)} s: ${secondsPer64Images!.toFixed(2)} s per 64 images, ${settings.modelCalls} model calls)` : ''} on ${backend.name}`);
    const out: EvaluateOutput = {
      settings,
      dataset,
      classNames,
      backend: backend.name,
      accuracy: { overall: report.accuracy.overall, perClass: report.accuracy.perClass.map((c) => c.accuracy), confusion: report.accuracy.confusion },
      realTestAccuracy: report.realAccuracy,
      fid: report.fid,
      reference: { images: referenceImages, wholeTestSplit: whole },
      wallSeconds,
      generationSeconds,
      ...(secondsPer64Images !== undefined ? { secondsPer64Images } : {}),
      date: new Date().toISOString(),
    };
    if (a.json) {
      fs.writeFileSync(a.json, JSON.stringify(out, null, 2) + '\n');
      log(`wrote ${a.json}`);
    }
    return out;
  } finally {
    images?.dispose();
    classifier?.dispose();
  }
}

if (require.main === module) {
  runEvaluate(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof DiffusionError ? `${e.name}: ${e.message}` : e);
    process.exit(1);
  });
}
