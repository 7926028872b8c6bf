/**
 * npm run sample -- --checkpoint checkpoints/<name> [--class 3|Sneaker|all] [--n 16]
 *                   [--sampler ddpm|ddim|dpm++2m|euler|heun] [--steps N | --calls N] [--eta 0 (ddim)]
 *                   [--sigma-max σ] [--rho 7] (euler, heun) [--guidance 2] [--seed 0] [--batch 64] [--weights ema|params]
 *                   [--out grid.png] [--raw samples.bin] [--json run.json] [--quiet]
 *
 * Draws n samples from a checkpoint (EMA weights by default) with lib/samplers, and writes a PNG grid and/or the raw
 * pixels + intended labels (lib/eval/raw-samples format) for `npm run evaluate -- --raw`, and/or a JSON record of the
 * run (sampler, steps, model calls, wall time per 64 images). --class all cycles through the classes (one column per
 * class); a class may be given by its name (Fashion-MNIST: 'Sneaker', 'Ankle boot'; the checkpoint's data set decides).
 * --calls N picks the steps that make at most N model calls (Heun: 2N − 1 calls in N steps). Guidance is lib/samplers'
 * weight w: out_u + w·(out_c − out_u) (1 = plain conditional).
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { DATASETS } from '../lib/data/sources';
import { isFastMode } from '../lib/env';
import { DiffusionError, InvalidArgumentError } from '../lib/errors';
import { writeRawSamples } from '../lib/eval/raw-samples';
import { sampleBatch, type SamplingOptions } from '../lib/eval/evaluate';
import type { Denoiser } from '../lib/param';
import { samplerLabel, sampleWith } from '../lib/samplers/named';
import { checkpointDataset, loadModel } from '../lib/train/state';
import { imageGrid } from '../lib/viz/grid';
import { progressBar } from '../lib/viz/progress';
import { SAMPLER_FLAGS, SAMPLER_USAGE, samplerSpecFromArgs } from './sampler-args';

const USAGE = `usage: npm run sample -- --checkpoint DIR [--class N|NAME|all] [--n 16] ${SAMPLER_USAGE} [--guidance 2] [--seed 0] [--batch 64] [--weights ema|params] [--out grid.png] [--raw out.bin] [--json run.json] [--quiet]`;

export interface SampleArgs {
  checkpoint: string;
  /** A class index, a class name (resolved against the checkpoint's data set), or 'all'. */
  cls: number | string | 'all';
  n: number;
  guidance: number;
  seed: number;
  batch: number;
  weights: 'ema' | 'params';
  out?: string;
  raw?: string;
  json?: string;
  quiet: boolean;
  /** The sampler flags as given (checked against the checkpoint's schedule once it is loaded). */
  samplerValues: Record<string, string | undefined>;
}

function int(flag: string, v: string, min: number): number {
  const x = Number(v);
  if (v.trim() === '' || !Number.isInteger(x) || x < min) throw new InvalidArgumentError(`${flag} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  return x;
}

/** The command line → SampleArgs; unknown flags, missing values and sampler options of another sampler are named errors. */
export function parseSampleArgs(argv: string[]): SampleArgs {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        checkpoint: { type: 'string' }, class: { type: 'string' }, n: { type: 'string' }, guidance: { type: 'string' },
        seed: { type: 'string' }, batch: { type: 'string' }, weights: { type: 'string' }, out: { type: 'string' },
        raw: { type: 'string' }, json: { type: 'string' }, quiet: { type: 'boolean' }, ...SAMPLER_FLAGS,
      },
    }));
  } catch (e) {
    throw new InvalidArgumentError(`${(e as Error).message}. ${USAGE}`);
  }
  const s = (k: string) => values[k] as string | undefined;
  if (!s('checkpoint')) throw new InvalidArgumentError(`--checkpoint is required. ${USAGE}`);
  const weights = s('weights') ?? 'ema';
  if (weights !== 'ema' && weights !== 'params') throw new InvalidArgumentError(`--weights must be ema or params, got ${JSON.stringify(weights)}`);
  const guidanceRaw = s('guidance') ?? '2';
  const guidance = Number(guidanceRaw);
  if (guidanceRaw.trim() === '' || !Number.isFinite(guidance)) throw new InvalidArgumentError(`--guidance must be a number, got ${JSON.stringify(guidanceRaw)}`);
  const cls = s('class') ?? 'all';
  const samplerValues = Object.fromEntries(Object.keys(SAMPLER_FLAGS).map((k) => [k, s(k)]));
  // the sampler flags are checked now (any T), and again against the checkpoint's schedule once it is loaded
  samplerSpecFromArgs(samplerValues, { T: Number.MAX_SAFE_INTEGER });
  const a: SampleArgs = {
    checkpoint: s('checkpoint')!,
    cls: cls === 'all' ? 'all' : /^\d+$/.test(cls) ? Number(cls) : cls,
    n: s('n') === undefined ? 16 : int('--n', s('n')!, 1),
    guidance,
    seed: s('seed') === undefined ? 0 : int('--seed', s('seed')!, 0),
    batch: s('batch') === undefined ? 64 : int('--batch', s('batch')!, 1),
    weights,
    out: s('out'),
    raw: s('raw'),
    json: s('json'),
    quiet: values.quiet === true,
    samplerValues,
  };
  if (!a.out && !a.raw && !a.json) a.out = 'samples.png';
  return a;
}

/** A class given by index or by name (case-insensitive) → its index in `classNames`. */
export function resolveClass(cls: number | string, classNames: readonly string[]): number {
  if (typeof cls === 'number') {
    if (!(Number.isInteger(cls) && cls >= 0 && cls < classNames.length)) {
      throw new InvalidArgumentError(`--class must be in 0 … ${classNames.length - 1}, a class name or 'all', got ${cls}`);
    }
    return cls;
  }
  const k = classNames.findIndex((n) => n.toLowerCase() === cls.toLowerCase());
  if (k < 0) throw new InvalidArgumentError(`--class ${JSON.stringify(cls)} is none of ${classNames.map((n) => `'${n}'`).join(', ')} (or give 0 … ${classNames.length - 1}, or 'all')`);
  return k;
}

/** The CLI as a function (tests call it in-process); argv excludes node and the script. */
export async function runSample(argv: string[]): Promise<void> {
  const args = parseSampleArgs(argv);
  await initBackend();
  const say = (line: string) => { if (!args.quiet) console.log(line); };
  const loaded = loadModel(args.checkpoint, args.weights);
  const { model, schedule, header } = loaded;
  try {
    const spec = samplerSpecFromArgs(args.samplerValues, { T: schedule.T, calls: 50 });
    const dataset = checkpointDataset(header);
    const classNames = DATASETS[dataset].classNames;
    const numClasses = model.numClasses;
    if (numClasses === 0 && args.cls !== 'all') throw new InvalidArgumentError(`--class ${args.cls}: the checkpoint holds an unconditional model`);
    const fixed = args.cls === 'all' ? undefined : resolveClass(args.cls, classNames.slice(0, numClasses));
    const n = isFastMode() ? Math.min(args.n, 4) : args.n;
    const labels = Array.from({ length: n }, (_, i) => fixed ?? i % Math.max(1, numClasses));
    const cfg = model.config as { imageSize?: number; channels?: number };
    say(`${args.checkpoint} (${dataset}): step ${header.step}, ${model.paramCount().toLocaleString('en')} params, ${args.weights} weights; ` +
      `${samplerLabel(spec)}, guidance ${numClasses > 0 ? args.guidance : 'n/a'}, ${n} samples` +
      `${fixed !== undefined ? ` of class ${fixed} (${classNames[fixed]})` : ''}, seed ${args.seed}`);

    const parts: tf.Tensor[] = [];
    let modelCalls = 0;
    const nBatches = Math.ceil(n / args.batch);
    const bar = progressBar({ total: nBatches * spec.steps, label: 'sample', mode: args.quiet ? 'silent' : 'auto' });
    const t0 = Date.now();
    try {
      for (let start = 0, b = 0; start < n; start += args.batch, b++) {
        const classes = labels.slice(start, start + args.batch);
        const onStep = (step: number) => bar.update(b * spec.steps + step);
        if (numClasses > 0) {
          // each batch its own seed (seed·100003 + b): reproducible whatever the batch split before it
          const o: SamplingOptions = { ...spec, guidance: args.guidance, seed: args.seed, batchSize: args.batch };
          const r = await sampleBatch(loaded, classes, b, o, onStep);
          parts.push(r.images);
          modelCalls = r.modelCalls;
        } else {
          const denoiser: Denoiser = (x, t) => model.apply(x, t);
          const r = await sampleWith(denoiser, [classes.length, cfg.imageSize ?? 28, cfg.imageSize ?? 28, cfg.channels ?? 1], schedule, spec, {
            seed: args.seed * 100003 + b, predictionType: model.predictionType, clipX0: true, onStep: (p) => onStep(p.step),
          });
          parts.push(r.sample);
          modelCalls = r.modelCalls ?? spec.calls;
        }
      }
      bar.done();
      const images = tf.concat(parts, 0) as tf.Tensor4D;
      tf.dispose(parts.splice(0));
      try {
        const pixels = (await images.data()) as Float32Array; // the read that completes the sampling: inside the timing
        const secs = (Date.now() - t0) / 1000;
        const run = {
          checkpoint: args.checkpoint, dataset, step: header.step, weights: args.weights, sampler: spec.sampler, steps: spec.steps,
          modelCalls, ...(spec.eta !== undefined ? { eta: spec.eta } : {}), ...(spec.sigmaMax !== undefined ? { sigmaMax: spec.sigmaMax } : {}),
          ...(spec.rho !== undefined ? { rho: spec.rho } : {}), guidance: args.guidance, seed: args.seed, batchSize: args.batch,
          n, wallSeconds: secs, secondsPer64Images: (secs * 64) / n,
        };
        if (args.out) {
          const cols = args.cls === 'all' && numClasses > 0 ? Math.min(n, numClasses) : Math.ceil(Math.sqrt(n));
          // digits need no caption; article classes do
          const captions = dataset === 'mnist' || numClasses === 0 ? undefined : labels.map((c) => classNames[c]);
          fs.writeFileSync(args.out, await imageGrid(images, { cols, scale: 2, labels: captions }));
          say(`wrote ${args.out}`);
        }
        if (args.raw) {
          const [count, height, width, channels] = images.shape;
          writeRawSamples(args.raw, { count, height, width, channels, pixels, labels: Int32Array.from(labels), meta: run });
          say(`wrote ${args.raw} (${count} samples + labels)`);
        }
        if (args.json) {
          fs.writeFileSync(args.json, `${JSON.stringify({ ...run, classes: labels, date: new Date().toISOString() }, null, 2)}\n`);
          say(`wrote ${args.json}`);
        }
        say(`sampling took ${secs.toFixed(1)} s: ${modelCalls} model calls per batch, ${run.secondsPer64Images.toFixed(2)} s per 64 images`);
      } finally {
        images.dispose();
      }
    } finally {
      tf.dispose(parts);
    }
  } finally {
    model.dispose();
  }
}

if (require.main === module) {
  runSample(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof DiffusionError ? `${e.name}: ${e.message}` : e);
    process.exit(1);
  });
}
