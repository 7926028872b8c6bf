/**
 * npm run train -- configs/<name>.json [--resume] [--steps N] [--out checkpoints/<name>] [--time-limit MIN] [--threads N] [--quiet]
 *
 * Trains the configured model on the config's data set (data.dataset: mnist or fashion-mnist, its whole 60,000-image
 * train split) with lib/train, writing <out>/checkpoint.bin atomically every
 * train.checkpointEvery steps and at the end, and <out>/provenance.json (command, git commit, seed, steps, wall time,
 * backend, final loss, data set; the checkpoint header records the data set too). --resume continues from <out>/checkpoint.bin at its step with its optimizer and EMA state.
 * --time-limit stops after MIN minutes of wall time (this invocation), checkpointing the step reached.
 * --threads N (default 1) computes each step's gradients data-parallel on N threads (lib/parallel's
 * ParallelCourseTrainer: the same step up to float rounding, ~N× faster on N idle cores); checkpoints are
 * interchangeable between thread counts.
 * Fast mode (DIFFUSION_FAST=1) applies the config's "fast" overrides.
 */
import { gitState, updateProvenance } from './provenance';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../lib/backend';
import { loadDataset } from '../lib/data/datasets';
import { isFastMode } from '../lib/env';
import { DiffusionError, InvalidArgumentError } from '../lib/errors';
import { ArgList } from './cli-args';
import { createModel, formatSummary } from '../lib/models';
import { ParallelCourseTrainer } from '../lib/parallel/course-trainer';
import { CHECKPOINT_FILE, epochSource, makeSchedule, readRunConfig, resumeTrainer, saveTrainer, Trainer, validateTrainConfig, type FitOptions } from '../lib/train';
import { progressBar } from '../lib/viz/progress';

interface Args { config: string; resume: boolean; steps?: number; out?: string; quiet: boolean; timeLimitMin?: number; threads: number }

function parseArgs(argv: string[]): Args {
  const a: Args = { config: '', resume: false, quiet: false, threads: 1 };
  const args = new ArgList(argv);
  for (let k = args.next(); k !== undefined; k = args.next()) {
    if (k === '--resume') a.resume = true;
    else if (k === '--quiet') a.quiet = true;
    else if (k === '--steps') {
      const v = args.value(k);
      a.steps = Number(v);
      if (!Number.isInteger(a.steps) || a.steps < 0) throw new InvalidArgumentError(`--steps must be an integer ≥ 0, got ${v}`);
    } else if (k === '--out') a.out = args.value(k);
    else if (k === '--time-limit') {
      const v = args.value(k);
      a.timeLimitMin = Number(v);
      if (!(a.timeLimitMin > 0)) throw new InvalidArgumentError(`--time-limit must be a positive number of minutes, got ${v}`);
    }
    else if (k === '--threads') {
      const v = args.value(k);
      a.threads = Number(v);
      if (!(Number.isInteger(a.threads) && a.threads >= 1 && a.threads <= 64)) throw new InvalidArgumentError(`--threads must be an integer in 1…64, got ${v}`);
    }
    else if (k.startsWith('--')) throw new InvalidArgumentError(`unknown option ${k}; expected --resume, --steps N, --out DIR, --time-limit MIN, --threads N, --quiet`);
    else if (!a.config) a.config = k;
    else throw new InvalidArgumentError(`unexpected argument ${k}`);
  }
  if (!a.config) throw new InvalidArgumentError('usage: npm run train -- configs/<name>.json [--resume] [--steps N] [--out DIR] [--time-limit MIN] [--threads N]');
  return a;
}

/** For tests: called with the trainer once it is built or resumed, before the first step. */
export interface TrainHooks {
  onTrainer?: (trainer: Trainer | ParallelCourseTrainer) => void | Promise<void>;
}

/** The CLI as a function (tests call it in-process); argv excludes node and the script. */
export async function runTrain(argv: string[], hooks: TrainHooks = {}): Promise<void> {
  const args = parseArgs(argv);
  const fast = isFastMode();
  const run = readRunConfig(args.config, fast);
  if (args.steps !== undefined) run.train.steps = args.steps;
  validateTrainConfig(run.train); // again after --steps
  if (args.threads > run.train.batchSize) {
    throw new InvalidArgumentError(`--threads ${args.threads} exceeds the batch of ${run.train.batchSize}: each thread needs at least one example`);
  }
  const outDir = args.out ?? path.join('checkpoints', run.name);
  const file = path.join(outDir, CHECKPOINT_FILE);
  const backend = await initBackend();

  let trainer: Trainer | ParallelCourseTrainer;
  let priorWallSec = 0;
  if (args.resume) {
    if (!fs.existsSync(file)) throw new InvalidArgumentError(`--resume: no checkpoint at ${file}`);
    const opts = { expectModel: run.model, train: run.train, expectDataset: run.data.dataset };
    trainer = args.threads > 1 ? await ParallelCourseTrainer.resume(file, { ...opts, threads: args.threads }) : resumeTrainer(file, opts);
    const prov = path.join(outDir, 'provenance.json');
    if (fs.existsSync(prov)) priorWallSec = Number(JSON.parse(fs.readFileSync(prov, 'utf8')).wallTimeSec) || 0;
    console.log(`resumed ${file} at step ${trainer.step}`);
  } else if (args.threads > 1) {
    trainer = await ParallelCourseTrainer.create(run.model, makeSchedule(run.schedule), run.train, args.threads);
  } else {
    trainer = new Trainer(createModel(run.model), makeSchedule(run.schedule), run.train);
  }
  const model = trainer.model;
  try {
    await hooks.onTrainer?.(trainer);
    console.log(`${run.name}: ${model.paramCount().toLocaleString('en')} parameters, ${run.data.dataset}, ${run.train.steps} steps of batch ${run.train.batchSize}${args.threads > 1 ? ` on ${args.threads} threads` : ''}${fast ? ' (fast mode)' : ''}`);
    if (!args.quiet) console.log(formatSummary(model.summary()));

    const data = loadDataset(run.data.dataset, 'train');
    const source = epochSource(data, run.train.batchSize, run.train.seed);
    const command = ['npm run train --', ...argv].join(' ');
    const git = gitState(); // read at the start: the code that runs is the code of this moment
    const t0 = Date.now();
    const wall = () => priorWallSec + (Date.now() - t0) / 1000;
    const recentLoss = () => trainer.recentLoss(100);
    const writeProvenance = () => {
      const prov = {
        name: run.name,
        command,
        gitCommit: git.commit,
        gitDirty: git.dirty,
        seed: run.train.seed,
        dataset: run.data.dataset,
        steps: trainer.step,
        batchSize: run.train.batchSize,
        threads: args.threads,
        wallTimeSec: Math.round(wall()),
        stepsPerSec: trainer.step > 0 ? Number((trainer.step / wall()).toFixed(4)) : 0,
        backend: backend.line,
        loadAverage: os.loadavg().map((v) => Number(v.toFixed(2))),
        finalLoss: Number(recentLoss().toFixed(5)),
        finalLossNote: 'mean training loss over the last 100 steps',
        paramCount: model.paramCount(),
        model: run.model,
        schedule: run.schedule,
        train: run.train,
        checkpoint: CHECKPOINT_FILE,
        date: new Date().toISOString(),
      };
      updateProvenance(path.join(outDir, 'provenance.json'), (previous) => ({ ...previous, ...prov }));
    };
    const checkpoint = async () => {
      await saveTrainer(file, trainer, { dataset: run.data.dataset, meta: { wallTimeSec: Math.round(wall()), backend: backend.name, threads: args.threads } });
      writeProvenance();
    };

    // (a bar needs a positive total: --steps 0 just writes the initial checkpoint)
    // initial: a resumed run's rate and ETA count from the resume (it printed 2,544 it/s at step 7,001 of 10,000)
    const total = Math.max(1, run.train.steps);
    const bar = progressBar({ total, initial: Math.min(trainer.step, total), label: run.name, mode: args.quiet ? 'silent' : 'auto' });
    const deadline = args.timeLimitMin ? t0 + args.timeLimitMin * 60_000 : Infinity;
    const fitOptions: FitOptions = {
      shouldStop: () => Date.now() >= deadline,
      onStep: (e) => bar.update(e.step + 1, { loss: e.loss, avg100: recentLoss(), lr: e.lr, gnorm: e.gradNorm }),
      onCheckpoint: async (step) => {
        await checkpoint();
        if (!args.quiet) console.log(`\ncheckpoint: ${file} at step ${step} (avg loss ${recentLoss().toFixed(4)}, ${Math.round(wall())} s)`);
      },
    };
    await trainer.fit(source, fitOptions);
    bar.done({ avg100: recentLoss() });
    if (trainer.step === 0 || !fs.existsSync(file)) await checkpoint();
    console.log(`done: ${trainer.step} steps, ${Math.round(wall())} s, avg loss ${recentLoss().toFixed(4)} → ${file}`);
  } finally {
    // also on a failed step, so that no worker thread outlives the run
    if (trainer instanceof Trainer) {
      trainer.dispose();
      model.dispose();
    } else await trainer.dispose();
  }
}

if (require.main === module) {
  runTrain(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof DiffusionError ? `${e.name}: ${e.message}` : e);
    process.exit(1);
  });
}
