/**
 * npm run train-baseline -- configs/<vae|gan>-<dataset>.json [--resume] [--steps N] [--out checkpoints/<name>]
 *                           [--time-limit MIN] [--seed S] [--quiet]
 *
 * Trains a baseline of notebook 10 (lib/models' VAE or GAN) with lib/train's VaeTrainer / GanTrainer on the config's
 * data set (loadDataset's whole train split), writing <out>/checkpoint.bin atomically every train.checkpointEvery steps
 * and at the end, and <out>/provenance.json (command, git commit, seed, steps, wall and CPU time, backend, load average,
 * final losses). --resume continues from <out>/checkpoint.bin with its optimizers and EMA (bit-identical to an
 * uninterrupted run). --time-limit stops after MIN minutes of wall time (this invocation), checkpointing the step
 * reached; --seed overrides train.seed (the initial weights keep model.seed). Fast mode (DIFFUSION_FAST=1) applies the
 * config's "fast" overrides.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../lib/backend';
import { loadDataset } from '../lib/data/datasets';
import { isFastMode } from '../lib/env';
import { DiffusionError, InvalidArgumentError } from '../lib/errors';
import { formatSummary } from '../lib/models';
import {
  type BaselineTrainer, CHECKPOINT_FILE, createBaseline, createBaselineTrainer, epochSource, GanTrainer, readBaselineConfig,
  resumeBaselineTrainer, saveBaselineTrainer,
} from '../lib/train';
import { progressBar } from '../lib/viz/progress';
import { ArgList } from './cli-args';
import { gitState, updateProvenance } from './provenance';
import { processCpuSeconds } from '../lib/parallel/cputime';

interface Args { config: string; resume: boolean; steps?: number; out?: string; quiet: boolean; timeLimitMin?: number; seed?: number }

function parseArgs(argv: string[]): Args {
  const a: Args = { config: '', resume: false, quiet: false };
  const args = new ArgList(argv);
  const int = (k: string, min: number) => {
    const v = args.value(k);
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${k} must be an integer ≥ ${min}, got ${v}`);
    return n;
  };
  for (let k = args.next(); k !== undefined; k = args.next()) {
    if (k === '--resume') a.resume = true;
    else if (k === '--quiet') a.quiet = true;
    else if (k === '--steps') a.steps = int(k, 0);
    else if (k === '--seed') a.seed = int(k, 0);
    else if (k === '--out') a.out = args.value(k);
    else if (k === '--time-limit') {
      const v = args.value(k);
      a.timeLimitMin = Number(v);
      if (!(a.timeLimitMin > 0)) throw new InvalidArgumentError(`--time-limit must be a positive number of minutes, got ${v}`);
    } else if (k.startsWith('--')) throw new InvalidArgumentError(`unknown option ${k}; expected --resume, --steps N, --out DIR, --time-limit MIN, --seed S, --quiet`);
    else if (!a.config) a.config = k;
    else throw new InvalidArgumentError(`unexpected argument ${k}`);
  }
  if (!a.config) throw new InvalidArgumentError('usage: npm run train-baseline -- configs/<vae|gan>-<dataset>.json [--resume] [--steps N] [--out DIR] [--time-limit MIN] [--seed S]');
  return a;
}

export interface TrainBaselineHooks {
  onTrainer?: (trainer: BaselineTrainer) => void | Promise<void>;
}

/** The CLI as a function (tests call it in-process); argv excludes node and the script. Returns the output folder. */
export async function runTrainBaseline(argv: string[], hooks: TrainBaselineHooks = {}): Promise<string> {
  const args = parseArgs(argv);
  const fast = isFastMode();
  const run = readBaselineConfig(args.config, fast);
  if (args.steps !== undefined) run.train.steps = args.steps;
  if (args.seed !== undefined) run.train.seed = args.seed;
  const outDir = args.out ?? path.join('checkpoints', run.name);
  const file = path.join(outDir, CHECKPOINT_FILE);
  const provFile = path.join(outDir, 'provenance.json');
  const backend = await initBackend();
  const dataset = run.data.dataset;

  let trainer: BaselineTrainer;
  let prior = { wall: 0, cpu: 0 };
  if (args.resume) {
    if (!fs.existsSync(file)) throw new InvalidArgumentError(`--resume: no checkpoint at ${file}`);
    trainer = resumeBaselineTrainer(file, { expectModel: run.model, expectDataset: dataset, train: run.train });
    if (fs.existsSync(provFile)) {
      const p = JSON.parse(fs.readFileSync(provFile, 'utf8'));
      prior = { wall: Number(p.wallTimeSec) || 0, cpu: Number(p.cpuTimeSec) || 0 };
    }
    console.log(`resumed ${file} at step ${trainer.step}`);
  } else {
    trainer = createBaselineTrainer(createBaseline(run.model), run.train);
  }
  const model = trainer.model;
  try {
    await hooks.onTrainer?.(trainer);
    console.log(`${run.name}: ${model.paramCount().toLocaleString('en')} parameters, ${run.train.steps} steps of batch ${run.train.batchSize} on ${dataset}${fast ? ' (fast mode)' : ''}`);
    if (!args.quiet) console.log(formatSummary(model.summary()));
    fs.mkdirSync(outDir, { recursive: true });

    const source = epochSource(loadDataset(dataset, 'train'), run.train.batchSize, run.train.seed);
    const command = ['npm run train-baseline --', ...argv].join(' ');
    const git = gitState();
    const load0 = os.loadavg();
    const t0 = Date.now();
    const cpu0 = processCpuSeconds();
    const wall = () => prior.wall + (Date.now() - t0) / 1000;
    const cpu = () => prior.cpu + processCpuSeconds() - cpu0;
    const losses = () => (trainer instanceof GanTrainer
      ? { generatorLoss: round(trainer.recentLoss()), discriminatorLoss: round(trainer.recentDLoss()), lossNote: 'mean over the last 100 steps, nats' }
      : { negElbo: round(trainer.recentLoss()), lossNote: '−ELBO per image in nats on dequantised pixels (β = 1), mean over the last 100 steps' });
    const writeProvenance = () => {
      const prov = {
        name: run.name, command, gitCommit: git.commit, gitDirty: git.dirty, seed: run.train.seed, dataset,
        steps: trainer.step, batchSize: run.train.batchSize,
        wallTimeSec: Math.round(wall()), cpuTimeSec: Math.round(cpu()),
        stepsPerSec: trainer.step > 0 ? Number((trainer.step / wall()).toFixed(4)) : 0,
        backend: backend.line, loadAverage: { start: load0.map(round2), end: os.loadavg().map(round2), cores: os.cpus().length },
        ...losses(), paramCount: model.paramCount(), model: run.model, train: run.train,
        checkpoint: CHECKPOINT_FILE, date: new Date().toISOString(),
      };
      updateProvenance(provFile, (previous) => ({ ...previous, ...prov }));
    };
    const checkpoint = async () => {
      await saveBaselineTrainer(file, trainer, { dataset, meta: { wallTimeSec: Math.round(wall()), backend: backend.name } });
      writeProvenance();
    };

    // initial: a resumed run's rate and ETA count from the resume (it printed 2,544 it/s at step 7,001 of 10,000)
    const total = Math.max(1, run.train.steps);
    const bar = progressBar({ total, initial: Math.min(trainer.step, total), label: run.name, mode: args.quiet ? 'silent' : 'auto' });
    const deadline = args.timeLimitMin ? t0 + args.timeLimitMin * 60_000 : Infinity;
    const common = {
      shouldStop: () => Date.now() >= deadline,
      onCheckpoint: async (step: number) => {
        await checkpoint();
        if (!args.quiet) console.log(`\ncheckpoint: ${file} at step ${step} (${Math.round(wall())} s)`);
      },
    };
    if (trainer instanceof GanTrainer) {
      const t = trainer;
      await t.fit(source, { ...common, onStep: (e) => bar.update(e.step + 1, { g: e.loss, d: e.d.loss, gAvg100: t.recentLoss(), dAvg100: t.recentDLoss() }) });
    } else {
      const t = trainer;
      await t.fit(source, { ...common, onStep: (e) => bar.update(e.step + 1, { loss: e.loss, avg100: t.recentLoss(), gnorm: e.gradNorm }) });
    }
    bar.done();
    if (trainer.step === 0 || !fs.existsSync(file)) await checkpoint();
    console.log(`done: ${trainer.step} steps, ${Math.round(wall())} s → ${file}`);
    return outDir;
  } finally {
    trainer.dispose();
    model.dispose();
  }
}

const round = (v: number) => Number(v.toFixed(4));
const round2 = (v: number) => Number(v.toFixed(2));

if (require.main === module) {
  runTrainBaseline(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof DiffusionError ? `${e.name}: ${e.message}` : e);
    process.exit(1);
  });
}
