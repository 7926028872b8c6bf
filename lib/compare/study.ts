/**
 * The study behind notebook 10 ("why diffusion?"), in one config file (configs/why-diffusion-<dataset>.json) and one
 * results file (checkpoints/why-diffusion-<dataset>/results.json):
 *
 *   for each seed, for each of U-Net, VAE, GAN (interleaved, so that a change in machine load hits all three alike):
 *     train from scratch for the SAME wall-clock budget (budget.ts) → weights-only EMA checkpoint
 *     → judge it (judge.ts): N unconditional samples (mode coverage, FID / floor, within-class spread),
 *       perClass class-conditional samples (accuracy, FID / floor), the U-Net also with guidance
 *     → flag the run: failed (non-finite), collapsed (entropy ratio below the threshold), poor (FID above k × floor)
 *   then time sampling (ms per image at the cost batch and at batch 1) for each kind.
 *
 * The results file is rewritten after every run, and a run already in it (same config) is not repeated: an interrupted
 * study resumes. Thresholds are part of the config, fixed before the results are seen. Each run records which
 * classifier judged it (a fingerprint of the file): when the data set's classifier has changed since, a resume judges
 * the recorded runs again from their saved checkpoints first, so that every run of a study has the same judge.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CorruptFileError, InvalidArgumentError } from '../errors';
import { DATASET_NAMES, type DatasetName, loadDataset } from '../data/datasets';
import type { DigitClassifier } from '../eval/classifier';
import type { ModeCoverage } from '../eval/coverage';
import { realReference, type RealReference } from '../eval/evaluate';
import { readBaselineConfig } from '../train/baseline-config';
import { loadBaseline, saveBaselineTrainer } from '../train/baseline-state';
import { epochSource } from '../train/data';
import type { ScheduleSpec } from '../train/run-config';
import { loadModel, saveTrainer } from '../train/state';
import { DEFAULT_TRAIN, type TrainConfig, Trainer } from '../train/trainer';
import type { UNetConfig } from '../models/unet';
import { type AnyTrainer, type BudgetRun, type ComparisonSpec, disposeTrainer, downsample, makeTrainer, trainForBudget } from './budget';
import { baselineGenerator, diffusionGenerator, type Generator, MODEL_KINDS, type ModelKind } from './generators';
import { CLASSIFIER_FILE } from '../eval/classifier-io';
import {
  classifierDirFor, classifierFor, judgeConditional, judgeUnconditional, realYardstick, type RealYardstick, type SamplingCost,
  timeSampling,
} from './judge';

export interface StudyEval {
  /** Unconditional samples per run (mode coverage, FID). */
  unconditional: number;
  /** Class-conditional samples per class per run. */
  perClass: number;
  /** DDIM steps of the diffusion model's samples. */
  ddimSteps: number;
  /** Classifier-free guidance weight of the U-Net's extra conditional set (lib's convention, 1 = plain). */
  guidance: number;
  /** Real test images behind the yardstick of coverage and spread. */
  realImages: number;
  /** Batch of the sampling-cost timing, and its repetitions. */
  costBatch: number;
  costReps: number;
}

export interface StudyConfig {
  name: string;
  dataset: DatasetName;
  budgetMinutes: number;
  seeds: number[];
  unet: { model: UNetConfig; schedule: ScheduleSpec; train: TrainConfig; from?: string; fast?: Partial<TrainConfig> };
  /** Paths of the baselines' run configs. */
  vae: string;
  gan: string;
  eval: StudyEval;
  /** A run collapsed when its class-histogram entropy / ln K is below entropyRatioBelow; poor when FID > fidRatioAbove × floor. */
  thresholds: { entropyRatioBelow: number; fidRatioAbove: number };
  /** Overrides in fast mode (DIFFUSION_FAST=1): budget, seeds, eval sizes. */
  fast?: Partial<Pick<StudyConfig, 'budgetMinutes' | 'seeds'> & StudyEval>;
}

/** Read and check a study config; `fast` applies its overrides (and the baselines' own fast overrides). */
export function readStudyConfig(file: string, fast = false): { config: StudyConfig; spec: ComparisonSpec; hash: string } {
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new CorruptFileError(`cannot read study config '${file}': ${(e as Error).message}`);
  }
  const bad = (msg: string): never => { throw new InvalidArgumentError(`study config '${file}': ${msg}`); };
  let c: StudyConfig;
  try {
    c = JSON.parse(raw);
  } catch (e) {
    return bad(`not JSON (${(e as Error).message})`);
  }
  if (!(DATASET_NAMES as readonly string[]).includes(c.dataset)) bad(`dataset must be one of ${DATASET_NAMES.join(', ')}, got ${JSON.stringify(c.dataset)}`);
  if (fast && c.fast) {
    const { budgetMinutes, seeds, ...ev } = c.fast;
    c = { ...c, budgetMinutes: budgetMinutes ?? c.budgetMinutes, seeds: seeds ?? c.seeds, eval: { ...c.eval, ...ev } };
  }
  if (!(c.budgetMinutes > 0)) bad(`budgetMinutes must be > 0, got ${c.budgetMinutes}`);
  if (!Array.isArray(c.seeds) || c.seeds.length === 0 || !c.seeds.every((s) => Number.isInteger(s) && s >= 0)) bad(`seeds must be a non-empty list of integers ≥ 0, got ${JSON.stringify(c.seeds)}`);
  for (const k of ['unconditional', 'perClass', 'ddimSteps', 'realImages', 'costBatch', 'costReps'] as const) {
    if (!(Number.isInteger(c.eval?.[k]) && c.eval[k] > 0)) bad(`eval.${k} must be a positive integer, got ${c.eval?.[k]}`);
  }
  if (!Number.isFinite(c.eval.guidance)) bad(`eval.guidance must be a number, got ${c.eval.guidance}`);
  if (!(c.thresholds?.entropyRatioBelow > 0 && c.thresholds.fidRatioAbove > 1)) bad(`thresholds need entropyRatioBelow > 0 and fidRatioAbove > 1, got ${JSON.stringify(c.thresholds)}`);
  const dir = path.dirname(path.dirname(path.resolve(file))); // configs/ sits in the repository root
  const vae = readBaselineConfig(path.resolve(dir, c.vae), fast);
  const gan = readBaselineConfig(path.resolve(dir, c.gan), fast);
  if (vae.model.kind !== 'vae' || gan.model.kind !== 'gan') bad('"vae" and "gan" must name a VAE and a GAN run config');
  for (const r of [vae, gan]) if (r.data.dataset !== c.dataset) bad(`${r.name} trains on ${r.data.dataset}, the study on ${c.dataset}`);
  const spec: ComparisonSpec = {
    unet: { model: c.unet.model, schedule: c.unet.schedule, train: { ...DEFAULT_TRAIN, ...c.unet.train, ...(fast ? c.unet.fast ?? {} : {}) } },
    vae: { model: vae.model as ComparisonSpec['vae']['model'], train: vae.train as ComparisonSpec['vae']['train'] },
    gan: { model: gan.model as ComparisonSpec['gan']['model'], train: gan.train as ComparisonSpec['gan']['train'] },
  };
  const hash = createHash('sha256').update(JSON.stringify({ c, spec })).digest('hex').slice(0, 16);
  return { config: c, spec, hash };
}

/** What one model's samples scored (a summary of the judge's reports: small enough for a committed JSON). */
export interface RunEvaluation {
  unconditional: {
    samples: number; counts: number[]; entropyRatio: number; effectiveClasses: number; klFromUniform: number; tvFromUniform: number;
    rareClasses: number[]; fid: number; floor: number; fidRatio: number; spreadRatio: number;
  };
  conditional: { samples: number; accuracy: number; perClass: number[]; fid: number; floor: number; fidRatio: number };
  /** The U-Net with classifier-free guidance (2 network calls per step). */
  guided?: RunEvaluation['conditional'] & { guidance: number };
  evalSec: number;
}

export interface RunRecord {
  kind: ModelKind;
  seed: number;
  steps: number;
  wallSec: number;
  cpuSec: number;
  load: { start: number[]; end: number[] };
  failed?: string;
  /** Losses downsampled to ≤ 100 points (means of `every` steps). */
  losses: Record<string, { every: number; values: number[] }>;
  eval?: RunEvaluation;
  collapsed?: boolean;
  poor?: boolean;
  /** Fingerprint of the classifier file that judged `eval` (classifierFingerprint); absent in results written before it existed. */
  judge?: string;
}

export interface StudyResults {
  name: string;
  configHash: string;
  dataset: DatasetName;
  budgetMinutes: number;
  seeds: number[];
  fast: boolean;
  command: string;
  gitCommit: string;
  gitDirty: boolean | 'unknown';
  backend: string;
  cores: number;
  classifier: string;
  /** classifierFingerprint of that classifier: every judged run carries the same one. */
  classifierHash: string;
  thresholds: StudyConfig['thresholds'];
  eval: StudyEval;
  spec: ComparisonSpec;
  real: { count: number; counts: number[]; entropyRatio: number; effectiveClasses: number; tvFromUniform: number; klFromUniform: number; realAccuracy: number };
  runs: RunRecord[];
  cost?: Record<string, SamplingCost & { atBatch1: SamplingCost }>;
  started: string;
  updated: string;
  /** Load average (1, 5, 15 min) when the study started and at the last update. */
  load: { start: number[]; last: number[] };
}

export interface StudyOptions {
  /** Where results.json and the seed-0 checkpoints go (checkpoints/why-diffusion-<dataset>). */
  outDir: string;
  /** Where every run's checkpoint goes (git-ignored: out/why-diffusion-<dataset>). */
  runDir: string;
  command: string;
  git: { commit: string; dirty: boolean | 'unknown' };
  backend: string;
  fast: boolean;
  log?: (line: string) => void;
  progress?: boolean;
  /** Checkpoints root for the classifier (tests). */
  checkpointsRoot?: string;
}

const summary = (c: ModeCoverage) => ({
  counts: c.counts, entropyRatio: c.entropyRatio, effectiveClasses: c.effectiveClasses, klFromUniform: c.klFromUniform,
  tvFromUniform: c.tvFromUniform, rareClasses: c.rareClasses,
});

/** SHA-256 (first 16 hex digits) of a classifier's checkpoint file: which judge scored a run. */
export function classifierFingerprint(dir: string): string {
  return createHash('sha256').update(fs.readFileSync(path.join(dir, CLASSIFIER_FILE))).digest('hex').slice(0, 16);
}

/** The generator of a saved run (diffusion: DDIM with the study's steps). */
function generatorOf(kind: ModelKind, file: string, ddimSteps: number): { gen: Generator; dispose: () => void } {
  if (kind === 'unet') {
    const { model, schedule } = loadModel(file);
    return { gen: diffusionGenerator(model, schedule, ddimSteps), dispose: () => model.dispose() };
  }
  const { model } = loadBaseline(file);
  return { gen: baselineGenerator(model), dispose: () => model.dispose() };
}

/** Judge one saved run. */
export async function evaluateRun(
  kind: ModelKind, file: string, seed: number, ev: StudyEval, classifier: DigitClassifier, real: RealReference, yardstick: RealYardstick,
): Promise<RunEvaluation> {
  const t0 = Date.now();
  const { gen, dispose } = generatorOf(kind, file, ev.ddimSteps);
  try {
    const evalSeed = 1000 + seed;
    const images = await gen.sample(ev.unconditional, evalSeed);
    let u;
    try {
      u = await judgeUnconditional(classifier, images, real, yardstick);
    } finally {
      images.dispose();
    }
    const cond = async (guidance?: number) => {
      const r = await judgeConditional(classifier, gen, ev.perClass, real, evalSeed + 1, guidance === undefined ? {} : { guidance });
      return {
        samples: r.accuracy.total, accuracy: r.accuracy.overall, perClass: r.accuracy.perClass.map((p) => p.accuracy),
        fid: r.fid.fid, floor: r.fid.floor, fidRatio: r.fid.fid / r.fid.floor,
      };
    };
    const conditional = await cond();
    const guided = kind === 'unet' ? { ...(await cond(ev.guidance)), guidance: ev.guidance } : undefined;
    return {
      unconditional: { samples: ev.unconditional, ...summary(u.coverage), fid: u.fid.fid, floor: u.fid.floor, fidRatio: u.fidRatio, spreadRatio: u.spreadRatio },
      conditional, guided, evalSec: (Date.now() - t0) / 1000,
    };
  } finally {
    dispose();
  }
}

/** The trainer's EMA weights only: what sampling needs, a third of a resumable file. */
async function saveWeights(trainer: AnyTrainer, file: string, dataset: DatasetName, meta: Record<string, unknown>): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  if (trainer instanceof Trainer) await saveTrainer(file, trainer, { weightsOnly: true, meta: { ...meta, dataset } });
  else await saveBaselineTrainer(file, trainer, { weightsOnly: true, dataset, meta });
}

function readResults(file: string): StudyResults | undefined {
  if (!fs.existsSync(file)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as StudyResults;
  } catch (e) {
    throw new CorruptFileError(`cannot read study results '${file}': ${(e as Error).message}`);
  }
}

function writeJson(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(value, null, 1)}\n`);
  fs.renameSync(tmp, file);
}

const r2 = (v: number) => Math.round(v * 100) / 100;

/**
 * Run (or resume) the study; returns the results, also written to outDir/results.json after every run. The first
 * seed's checkpoints are copied to outDir/<kind>/ with their provenance.
 */
export async function runStudy(configFile: string, opts: StudyOptions): Promise<StudyResults> {
  const { config, spec, hash } = readStudyConfig(configFile, opts.fast);
  const log = opts.log ?? (() => undefined);
  const resultsFile = path.join(opts.outDir, 'results.json');
  const previous = readResults(resultsFile);
  const keep = previous && previous.configHash === hash && previous.fast === opts.fast ? previous.runs : [];
  if (previous && keep.length === 0) log(`${resultsFile}: written for another config or mode; starting afresh`);

  const classifierDir = classifierDirFor(config.dataset, opts.checkpointsRoot);
  const classifier = classifierFor(config.dataset, opts.checkpointsRoot);
  const judgeId = classifierFingerprint(classifierDir);
  try {
    const train = loadDataset(config.dataset, 'train');
    const test = loadDataset(config.dataset, 'test');
    const real = await realReference(classifier, test);
    const yard = await realYardstick(classifier, test, config.eval.realImages);
    const results: StudyResults = {
      name: config.name, configHash: hash, dataset: config.dataset, budgetMinutes: config.budgetMinutes, seeds: config.seeds, fast: opts.fast,
      command: opts.command, gitCommit: opts.git.commit, gitDirty: opts.git.dirty, backend: opts.backend, cores: os.cpus().length,
      classifier: path.relative(path.join(path.dirname(classifierDir), '..'), classifierDir), classifierHash: judgeId, thresholds: config.thresholds, eval: config.eval, spec,
      real: { count: yard.count, ...summary(yard.coverage), realAccuracy: real.accuracy },
      runs: keep.slice(), cost: previous?.configHash === hash && previous.fast === opts.fast ? previous.cost : undefined,
      started: keep.length > 0 ? previous!.started : new Date().toISOString(), updated: new Date().toISOString(),
      load: { start: keep.length > 0 ? previous!.load.start : os.loadavg().map(r2), last: os.loadavg().map(r2) },
    };
    const save = () => {
      results.updated = new Date().toISOString();
      results.load.last = os.loadavg().map(r2);
      writeJson(resultsFile, results);
    };
    save();
    const runFile = (kind: ModelKind, seed: number) => path.join(opts.runDir, `${kind}-s${seed}`, 'checkpoint.bin');
    const judge = async (record: RunRecord) => {
      record.eval = await evaluateRun(record.kind, runFile(record.kind, record.seed), record.seed, config.eval, classifier, real, yard);
      record.judge = judgeId;
      record.collapsed = record.eval.unconditional.entropyRatio < config.thresholds.entropyRatioBelow;
      record.poor = record.eval.unconditional.fidRatio > config.thresholds.fidRatioAbove;
      const e = record.eval;
      log(`${record.kind} seed ${record.seed}: FID ${e.unconditional.fid.toFixed(1)} (floor ${e.unconditional.floor.toFixed(1)}), entropy ratio ${e.unconditional.entropyRatio.toFixed(3)}, ` +
        `conditional accuracy ${(100 * e.conditional.accuracy).toFixed(1)} %${e.guided ? `, guided ${(100 * e.guided.accuracy).toFixed(1)} %` : ''} (${e.evalSec.toFixed(0)} s)`);
    };
    // runs judged by another classifier (or before runs recorded theirs): judged again, from their checkpoints
    const stale = results.runs.filter((r) => !r.failed && r.judge !== judgeId);
    if (stale.length > 0) {
      const missing = stale.filter((r) => !fs.existsSync(runFile(r.kind, r.seed)));
      if (missing.length > 0) {
        throw new InvalidArgumentError(`${resultsFile}: ${stale.length} runs were judged by another classifier than ${results.classifier} (${judgeId}), ` +
          `and the checkpoints of ${missing.map((r) => `${r.kind} seed ${r.seed}`).join(', ')} are not in ${opts.runDir} to judge them again; ` +
          'restore them (or the classifier they were judged by), or move the results file away to start the study afresh');
      }
      log(`${stale.length} runs were judged by another classifier (${stale[0].judge ?? previous?.classifier ?? 'unrecorded'}): judging them again with ${results.classifier} (${judgeId})`);
      for (const record of stale) {
        await judge(record);
        if (record.seed === config.seeds[0]) rejudgeExport(path.join(opts.outDir, record.kind), record);
        save();
      }
    }
    for (const seed of config.seeds) {
      for (const kind of MODEL_KINDS) {
        if (results.runs.some((r) => r.kind === kind && r.seed === seed)) continue;
        log(`${kind} seed ${seed}: training for ${config.budgetMinutes} min (load ${os.loadavg()[0].toFixed(2)})`);
        const trainer = makeTrainer(kind, spec, seed);
        let run: BudgetRun;
        try {
          run = await trainForBudget(kind, trainer, train, config.budgetMinutes * 60, { progress: opts.progress ? `${kind} s${seed}` : undefined });
          if (!run.failed) await saveWeights(trainer, runFile(kind, seed), config.dataset, { study: config.name, seed, steps: run.steps, wallSec: run.wallSec });
        } finally {
          disposeTrainer(trainer);
        }
        const record: RunRecord = {
          kind, seed, steps: run.steps, wallSec: run.wallSec, cpuSec: run.cpuSec,
          load: { start: run.load.start.map(r2), end: run.load.end.map(r2) }, failed: run.failed,
          losses: Object.fromEntries(Object.entries(run.losses).map(([k, v]) => [k, downsample(v)])),
        };
        log(`${kind} seed ${seed}: ${run.steps} steps in ${run.wallSec.toFixed(0)} s (CPU ${run.cpuSec.toFixed(0)} s)${run.failed ? `, FAILED: ${run.failed}` : ''}; judging`);
        if (!run.failed) await judge(record);
        results.runs.push(record);
        if (seed === config.seeds[0] && !run.failed) exportRun(configFile, kind, seed, runFile(kind, seed), opts.outDir, record, results, spec);
        save();
      }
    }
    if (!results.cost) {
      results.cost = {};
      for (const kind of MODEL_KINDS) {
        const file = runFile(kind, config.seeds[0]);
        if (!fs.existsSync(file)) continue;
        const { gen, dispose } = generatorOf(kind, file, config.eval.ddimSteps);
        try {
          log(`timing ${kind} sampling (batch ${config.eval.costBatch} and 1)`);
          const batch = await timeSampling(gen, config.eval.costBatch, config.eval.costReps);
          const one = await timeSampling(gen, 1, config.eval.costReps);
          results.cost[kind] = { ...batch, atBatch1: one };
        } finally {
          dispose();
        }
      }
      save();
    }
    return results;
  } finally {
    classifier.dispose();
  }
}

/** Copy the first seed's checkpoint to outDir/<kind>/ with a provenance.json that says how it was made. */
function exportRun(
  configFile: string, kind: ModelKind, seed: number, file: string, outDir: string, run: RunRecord, results: StudyResults, spec: ComparisonSpec,
): void {
  const dir = path.join(outDir, kind);
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(file, path.join(dir, 'checkpoint.bin'));
  const reproduce = `npm run why-diffusion -- ${path.relative(process.cwd(), configFile)} --reproduce ${kind}:${seed}`;
  writeJson(path.join(dir, 'provenance.json'), {
    name: `${results.name}/${kind}`, command: results.command, reproduce, gitCommit: results.gitCommit, gitDirty: results.gitDirty,
    seed, dataset: results.dataset, steps: run.steps, wallTimeSec: Math.round(run.wallSec), cpuTimeSec: Math.round(run.cpuSec),
    budgetMinutes: results.budgetMinutes, backend: results.backend, loadAverage: run.load, cores: results.cores,
    weights: 'EMA only (weights-only checkpoint: samples, cannot resume)', model: spec[kind].model, train: spec[kind].train,
    ...(kind === 'unet' ? { schedule: spec.unet.schedule } : {}),
    metrics: run.eval, date: new Date().toISOString(),
  });
}

/** A re-judged first-seed export keeps its provenance (how it was trained) and gets the new scores and judge. */
function rejudgeExport(dir: string, run: RunRecord): void {
  const file = path.join(dir, 'provenance.json');
  if (!fs.existsSync(file)) return;
  const prov = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  writeJson(file, { ...prov, metrics: run.eval, judge: run.judge, judgedAgain: new Date().toISOString() });
}

/** Re-train one run for exactly the steps the results recorded and compare its EMA weights with the saved ones. */
export async function reproduceRun(
  configFile: string, kind: ModelKind, seed: number, opts: { outDir: string; runDir: string; fast: boolean; log?: (s: string) => void },
): Promise<{ steps: number; maxAbsDiff: number; file: string }> {
  const { spec } = readStudyConfig(configFile, opts.fast);
  const results = readResults(path.join(opts.outDir, 'results.json'));
  const rec = results?.runs.find((r) => r.kind === kind && r.seed === seed);
  if (!rec) throw new InvalidArgumentError(`no ${kind} run of seed ${seed} in ${path.join(opts.outDir, 'results.json')}`);
  const saved = [path.join(opts.runDir, `${kind}-s${seed}`, 'checkpoint.bin'), path.join(opts.outDir, kind, 'checkpoint.bin')].find((f) => fs.existsSync(f));
  if (!saved) throw new InvalidArgumentError(`no saved checkpoint of ${kind} seed ${seed} to compare with`);
  const trainer = makeTrainer(kind, spec, seed);
  const file = path.join(opts.runDir, `${kind}-s${seed}-reproduced`, 'checkpoint.bin');
  try {
    const train = loadDataset(results!.dataset, 'train');
    const source = epochSource(train, trainer.config.batchSize, trainer.config.seed);
    opts.log?.(`${kind} seed ${seed}: re-training ${rec.steps} steps`);
    await trainer.fit(source, { until: rec.steps, progress: `${kind} s${seed} (reproduce)` });
    await saveWeights(trainer, file, results!.dataset, { reproduces: saved });
  } finally {
    disposeTrainer(trainer);
  }
  const a = kind === 'unet' ? loadModel(file).model : loadBaseline(file).model;
  const b = kind === 'unet' ? loadModel(saved).model : loadBaseline(saved).model;
  try {
    const [va, vb] = await Promise.all([a.params.snapshot(), b.params.snapshot()]);
    let max = 0;
    const names = kind === 'gan' ? (a as unknown as { partNames(w: string): string[] }).partNames('generator') : [...va.keys()];
    for (const n of names) {
      const x = va.get(n)!;
      const y = vb.get(n)!;
      for (let i = 0; i < x.length; i++) max = Math.max(max, Math.abs(x[i] - y[i]));
    }
    return { steps: rec.steps, maxAbsDiff: max, file };
  } finally {
    a.dispose();
    b.dispose();
  }
}
