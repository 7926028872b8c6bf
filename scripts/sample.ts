/**
 * npm run sample -- --checkpoint checkpoints/<name> [--class 3|all] [--n 16] [--sampler ddim|ddpm] [--steps 50]
 *                   [--guidance 2] [--eta 0] [--seed 0] [--batch 64] [--weights ema|params]
 *                   [--out grid.png] [--raw samples.bin] [--quiet]
 *
 * Draws n samples from a checkpoint (EMA weights by default) with lib/samplers, and writes a PNG grid and/or the raw
 * pixels + intended labels (lib/eval/raw-samples format) for `npm run evaluate -- --raw`. --class all cycles 0…9 (one
 * column per class). Guidance is lib/samplers' weight w: out_u + w·(out_c − out_u) (1 = plain conditional).
 */
import { initBackend } from '../lib/backend';
import { isFastMode } from '../lib/env';
import { DiffusionError, InvalidArgumentError } from '../lib/errors';
import { writeRawSamples } from '../lib/eval/raw-samples';
import type { Denoiser } from '../lib/param';
import { ddimSample, ddpmSample } from '../lib/samplers';
import { loadModel } from '../lib/train/state';
import { imageGrid } from '../lib/viz/grid';
import { progressBar } from '../lib/viz/progress';
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';

interface Args {
  checkpoint: string; cls: number | 'all'; n: number; sampler: 'ddim' | 'ddpm'; steps?: number; guidance: number;
  eta: number; seed: number; batch: number; weights: 'ema' | 'params'; out?: string; raw?: string; quiet: boolean;
}

const USAGE = 'usage: npm run sample -- --checkpoint DIR [--class N|all] [--n 16] [--sampler ddim|ddpm] [--steps 50] [--guidance 2] [--seed 0] [--out grid.png] [--raw out.bin]';

function parseArgs(argv: string[]): Args {
  const a: Args = { checkpoint: '', cls: 'all', n: 16, sampler: 'ddim', guidance: 2, eta: 0, seed: 0, batch: 64, weights: 'ema', quiet: false };
  const int = (k: string, v: string, min: number) => {
    const x = Number(v);
    if (!Number.isInteger(x) || x < min) throw new InvalidArgumentError(`${k} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    return x;
  };
  const num = (k: string, v: string) => {
    const x = Number(v);
    if (v === '' || !Number.isFinite(x)) throw new InvalidArgumentError(`${k} must be a number, got ${JSON.stringify(v)}`);
    return x;
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--quiet') { a.quiet = true; continue; }
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new InvalidArgumentError(`${k} needs a value. ${USAGE}`);
    i++;
    switch (k) {
      case '--checkpoint': a.checkpoint = v; break;
      case '--class': a.cls = v === 'all' ? 'all' : int(k, v, 0); break;
      case '--n': a.n = int(k, v, 1); break;
      case '--sampler':
        if (v !== 'ddim' && v !== 'ddpm') throw new InvalidArgumentError(`--sampler must be ddim or ddpm, got ${JSON.stringify(v)}`);
        a.sampler = v; break;
      case '--steps': a.steps = int(k, v, 1); break;
      case '--guidance': a.guidance = num(k, v); break;
      case '--eta': a.eta = num(k, v); break;
      case '--seed': a.seed = int(k, v, 0); break;
      case '--batch': a.batch = int(k, v, 1); break;
      case '--weights':
        if (v !== 'ema' && v !== 'params') throw new InvalidArgumentError(`--weights must be ema or params, got ${JSON.stringify(v)}`);
        a.weights = v; break;
      case '--out': a.out = v; break;
      case '--raw': a.raw = v; break;
      default: throw new InvalidArgumentError(`unknown option ${k}. ${USAGE}`);
    }
  }
  if (!a.checkpoint) throw new InvalidArgumentError(`--checkpoint is required. ${USAGE}`);
  if (!a.out && !a.raw) a.out = 'samples.png';
  return a;
}

/** The CLI as a function (tests call it in-process); argv excludes node and the script. */
export async function runSample(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  await initBackend();
  const say = (line: string) => { if (!args.quiet) console.log(line); };
  const { model, schedule, header } = loadModel(args.checkpoint, args.weights);
  const numClasses = model.numClasses;
  if (numClasses === 0 && args.cls !== 'all') throw new InvalidArgumentError(`--class ${args.cls}: the checkpoint holds an unconditional model`);
  if (typeof args.cls === 'number' && args.cls >= numClasses) {
    throw new InvalidArgumentError(`--class must be in 0 … ${numClasses - 1} (or 'all'), got ${args.cls}`);
  }
  const steps = Math.min(args.steps ?? (args.sampler === 'ddim' ? 50 : schedule.T), schedule.T);
  const n = isFastMode() ? Math.min(args.n, 4) : args.n;
  const labels = Array.from({ length: n }, (_, i) => (args.cls === 'all' ? i % Math.max(1, numClasses) : args.cls as number));
  const cfg = model.config as { imageSize?: number; channels?: number };
  const shapeOf = (b: number) => [b, cfg.imageSize ?? 28, cfg.imageSize ?? 28, cfg.channels ?? 1];
  say(`${args.checkpoint}: step ${header.step}, ${model.paramCount().toLocaleString('en')} params, ${args.weights} weights; ` +
    `${args.sampler} ${steps} steps, guidance ${numClasses > 0 ? args.guidance : 'n/a'}, ${n} samples, seed ${args.seed}`);

  const denoiser: Denoiser = (x, t, classes) => model.apply(x, t, classes);
  const parts: tf.Tensor[] = [];
  const nBatches = Math.ceil(n / args.batch);
  const bar = progressBar({ total: nBatches * steps, label: 'sample', mode: args.quiet ? 'silent' : 'auto' });
  const t0 = Date.now();
  for (let start = 0, b = 0; start < n; start += args.batch, b++) {
    const classes = labels.slice(start, start + args.batch);
    const opts = {
      seed: args.seed * 100003 + b, // each batch its own seed: reproducible whatever the batch split before it
      predictionType: model.predictionType,
      clipX0: true,
      onStep: (p: { step: number }) => bar.update(b * steps + p.step),
      guidance: numClasses > 0 ? { weight: args.guidance, classes, nullClass: numClasses } : undefined,
    };
    const r = args.sampler === 'ddim'
      ? await ddimSample(denoiser, shapeOf(classes.length), schedule, { ...opts, steps, eta: args.eta })
      : await ddpmSample(denoiser, shapeOf(classes.length), schedule, { ...opts, steps });
    parts.push(r.sample);
  }
  bar.done();
  const images = tf.concat(parts, 0) as tf.Tensor4D;
  tf.dispose(parts);
  const pixels = (await images.data()) as Float32Array; // the read that completes the sampling: inside the timing
  const secs = (Date.now() - t0) / 1000;
  if (args.out) {
    const cols = args.cls === 'all' && numClasses > 0 ? Math.min(n, numClasses) : Math.ceil(Math.sqrt(n));
    fs.writeFileSync(args.out, await imageGrid(images, { cols, scale: 2 }));
    say(`wrote ${args.out}`);
  }
  if (args.raw) {
    const [count, height, width, channels] = images.shape;
    writeRawSamples(args.raw, {
      count, height, width, channels, pixels, labels: Int32Array.from(labels),
      meta: { checkpoint: args.checkpoint, step: header.step, sampler: args.sampler, steps, guidance: args.guidance, eta: args.eta, seed: args.seed, weights: args.weights },
    });
    say(`wrote ${args.raw} (${count} samples + labels)`);
  }
  say(`sampling took ${secs.toFixed(1)} s`);
  images.dispose();
  model.dispose();
}

if (require.main === module) {
  runSample(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof DiffusionError ? `${e.name}: ${e.message}` : e);
    process.exit(1);
  });
}
