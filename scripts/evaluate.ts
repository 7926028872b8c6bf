/**
 * Sample quality of a class-conditional diffusion checkpoint, as judged by the shipped digit classifier:
 *
 *   npm run evaluate -- --checkpoint checkpoints/<model> [--sampler ddim|ddpm] [--steps 50] [--guidance 2]
 *        [--eta 0] [--n-per-class 20] [--seed 0] [--batch 50] [--weights ema|params] [--save-raw out.bin] [--json out.json]
 *   npm run evaluate -- --raw samples.bin [--json out.json]          (samples written by npm run sample -- --raw)
 *   npm run evaluate -- --baseline real|noise [--n-per-class 20]     (sanity: real test digits / pure noise as "samples")
 *
 * Prints conditional accuracy (per class and overall), feature-FID against held-out real digits and the real-vs-real
 * floor at the same sample size, and the wall time. --guidance is lib/samplers' weight w in ε_u + w·(ε_c − ε_u)
 * (1 = plain conditional). --classifier <dir> picks another classifier checkpoint.
 */
import * as fs from 'fs';
import { parseArgs } from 'util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { loadMnist } from '../lib/data/mnist';
import { fastOr } from '../lib/env';
import { InvalidArgumentError } from '../lib/errors';
import { makeRng } from '../lib/random';
import { DEFAULT_CLASSIFIER_DIR, loadClassifier } from '../lib/eval/classifier-io';
import { evaluateSamples, formatEvaluation, generateClassConditional } from '../lib/eval/evaluate';
import { stratifiedHalves, balancedSubset } from '../lib/eval/metrics';
import { readRawSamples, writeRawSamples } from '../lib/eval/raw-samples';
import { loadModel } from '../lib/train/state';
import { progressBar } from '../lib/viz/progress';

function intArg(raw: string | undefined, name: string, fallback: number, min = 1): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) throw new InvalidArgumentError(`--${name} must be an integer ≥ ${min}, got ${JSON.stringify(raw)}`);
  return v;
}

function numArg(raw: string | undefined, name: string, fallback: number): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v)) throw new InvalidArgumentError(`--${name} must be a number, got ${JSON.stringify(raw)}`);
  return v;
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      checkpoint: { type: 'string' },
      raw: { type: 'string' },
      baseline: { type: 'string' },
      sampler: { type: 'string' },
      steps: { type: 'string' },
      guidance: { type: 'string' },
      eta: { type: 'string' },
      'n-per-class': { type: 'string' },
      seed: { type: 'string' },
      batch: { type: 'string' },
      weights: { type: 'string' },
      classifier: { type: 'string' },
      'save-raw': { type: 'string' },
      json: { type: 'string' },
    },
  });
  const sources = [a.checkpoint, a.raw, a.baseline].filter((v) => v !== undefined);
  if (sources.length !== 1) {
    throw new InvalidArgumentError('give exactly one of --checkpoint <dir>, --raw <samples.bin>, --baseline real|noise');
  }
  const seed = intArg(a.seed, 'seed', 0, 0);
  const nPerClass = intArg(a['n-per-class'], 'n-per-class', fastOr(3, 20));
  const started = Date.now();
  const backend = await initBackend();
  const classifier = loadClassifier(a.classifier ?? DEFAULT_CLASSIFIER_DIR);
  const test = loadMnist('test');

  let images: tf.Tensor4D;
  let labels: Int32Array;
  let settings: Record<string, unknown>;
  let generationSeconds = 0;
  if (a.checkpoint !== undefined) {
    const sampler = a.sampler ?? 'ddim';
    if (sampler !== 'ddim' && sampler !== 'ddpm') throw new InvalidArgumentError(`--sampler must be ddim or ddpm, got ${JSON.stringify(sampler)}`);
    const weights = a.weights ?? 'ema';
    if (weights !== 'ema' && weights !== 'params') throw new InvalidArgumentError(`--weights must be ema or params, got ${JSON.stringify(weights)}`);
    const loaded = loadModel(a.checkpoint, weights);
    const steps = intArg(a.steps, 'steps', fastOr(5, sampler === 'ddim' ? 50 : loaded.schedule.T));
    const guidance = numArg(a.guidance, 'guidance', 2);
    const eta = numArg(a.eta, 'eta', 0);
    const batchSize = intArg(a.batch, 'batch', 50);
    settings = { checkpoint: a.checkpoint, weights, sampler, steps, guidance, eta, nPerClass, seed, batchSize, step: loaded.header.step };
    console.log(`sampling ${nPerClass} per class from ${a.checkpoint} (step ${loaded.header.step}): ${sampler} ${steps} steps, guidance ${guidance}${sampler === 'ddim' ? `, eta ${eta}` : ''}, seed ${seed}`);
    const t0 = Date.now();
    const bar = progressBar({ total: Math.ceil((10 * nPerClass) / batchSize) * steps, label: 'sample' });
    ({ images, labels } = await generateClassConditional(loaded, {
      sampler, steps, guidance, eta, nPerClass, seed, batchSize, onStep: (done) => bar.update(done),
    }));
    const pixels = (await images.data()) as Float32Array; // the read that completes the sampling: inside the timing
    bar.done();
    generationSeconds = (Date.now() - t0) / 1000;
    loaded.model.dispose();
    if (a['save-raw']) {
      writeRawSamples(a['save-raw'], {
        count: labels.length, height: 28, width: 28, channels: 1,
        pixels, labels, meta: settings,
      });
      console.log(`wrote ${a['save-raw']}`);
    }
  } else if (a.raw !== undefined) {
    const raw = readRawSamples(a.raw);
    if (raw.height !== 28 || raw.width !== 28 || raw.channels !== 1) {
      throw new InvalidArgumentError(`${a.raw} holds ${raw.height}×${raw.width}×${raw.channels} images, expected 28×28×1`);
    }
    images = tf.tensor4d(raw.pixels, [raw.count, 28, 28, 1]);
    labels = raw.labels;
    settings = { raw: a.raw, ...raw.meta };
    console.log(`${raw.count} samples from ${a.raw} ${JSON.stringify(raw.meta)}`);
  } else if (a.baseline === 'real') {
    // Real test digits from the comparison half (not the FID reference half), a different draw than the floor's.
    const [, otherHalf] = stratifiedHalves(test.labels, seed);
    const idx = balancedSubset(test.labels, otherHalf, nPerClass, seed + 7);
    const batch = test.batch(idx);
    images = batch.x;
    labels = (await batch.y.data()) as Int32Array;
    batch.y.dispose();
    settings = { baseline: 'real', nPerClass, seed };
  } else if (a.baseline === 'noise') {
    const rng = makeRng(seed);
    labels = Int32Array.from({ length: 10 * nPerClass }, (_, i) => Math.floor(i / nPerClass));
    images = tf.tensor4d(Float32Array.from({ length: labels.length * 784 }, () => 2 * rng() - 1), [labels.length, 28, 28, 1]);
    settings = { baseline: 'noise', nPerClass, seed };
  } else {
    throw new InvalidArgumentError(`--baseline must be real or noise, got ${JSON.stringify(a.baseline)}`);
  }

  const report = await evaluateSamples(classifier, images, labels, test, { seed });
  images.dispose();
  classifier.dispose();
  const wallSeconds = (Date.now() - started) / 1000;
  console.log(formatEvaluation(report));
  console.log(`wall time ${wallSeconds.toFixed(1)} s${generationSeconds ? ` (sampling ${generationSeconds.toFixed(1)} s)` : ''} on ${backend.name}`);
  if (a.json) {
    const out = {
      settings,
      backend: backend.name,
      accuracy: { overall: report.accuracy.overall, perClass: report.accuracy.perClass.map((c) => c.accuracy), confusion: report.accuracy.confusion },
      realTestAccuracy: report.realAccuracy,
      fid: report.fid,
      wallSeconds,
      generationSeconds,
      date: new Date().toISOString(),
    };
    fs.writeFileSync(a.json, JSON.stringify(out, null, 2) + '\n');
    console.log(`wrote ${a.json}`);
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? `${e.name}: ${e.message}` : e);
  process.exit(1);
});
