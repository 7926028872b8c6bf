/**
 * Training state ↔ checkpoint file: model config, schedule, step, train config, loss history, weights, EMA weights and
 * Adam moments. `saveTrainer` / `resumeTrainer` round-trip a Trainer exactly; `openResume` restores the same state into any
 * trainer of that shape (lib/parallel's ParallelCourseTrainer); `loadModel` builds a model for sampling (EMA weights by
 * default).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { CorruptFileError, InvalidArgumentError } from '../errors';
import { checkDatasetName, DATASET_NAMES, type DatasetName } from '../data/sources';
import { createModel, type DiffusionModel, type ModelConfig } from '../models/index';
import { NoiseSchedule, type ScheduleJSON } from '../schedule';
import { type CheckpointContents, readCheckpointFile, type TensorGroup, writeCheckpointFile } from './checkpoint';
import { readSteps, type StepState, Trainer, type TrainConfig } from './trainer';

/** The checkpoint file inside a checkpoint folder. */
export const CHECKPOINT_FILE = 'checkpoint.bin';

/** Accept a folder (→ folder/checkpoint.bin) or a file path. */
export function checkpointPath(p: string): string {
  return fs.existsSync(p) && fs.statSync(p).isDirectory() ? path.join(p, CHECKPOINT_FILE) : p;
}

export interface CheckpointHeader {
  model: ModelConfig;
  schedule: ScheduleJSON;
  step: number;
  train?: TrainConfig;
  lossHistory?: number[];
  emaUpdates?: number;
  adamStep?: number;
  /** The data set the model was trained on (absent in checkpoints written before it was recorded: MNIST). */
  dataset?: DatasetName;
  /** Free-form provenance (backend, wall time …). */
  meta?: Record<string, unknown>;
}

/** The data set a checkpoint's model was trained on: header.dataset, or 'mnist' for checkpoints that predate it. */
export function checkpointDataset(header: Pick<CheckpointHeader, 'dataset'>): DatasetName {
  return header.dataset ?? 'mnist';
}

function group(names: string[], vars: { shape: number[] }[], values: Float32Array[]): TensorGroup {
  return new Map(names.map((n, i) => [n, { shape: vars[i].shape.slice(), data: values[i] }]));
}

export interface SaveOptions {
  /** Leave out the raw weights and Adam moments (a smaller file that can sample but not resume). */
  weightsOnly?: boolean;
  /** With weightsOnly: keep the raw weights too (no Adam moments), for comparing raw and EMA samples (notebook 06). */
  keepRaw?: boolean;
  /** The data set trained on (recorded in the header: evaluation picks its classifier and real data by it). */
  dataset?: DatasetName;
  meta?: Record<string, unknown>;
}

/**
 * What a checkpoint saves and restores: lib/train's Trainer and lib/parallel's ParallelCourseTrainer both have it
 * (model = the master weights, optimizer and EMA over model.params.variables() in that order).
 */
export interface CheckpointableTrainer extends StepState {
  readonly model: DiffusionModel;
  readonly schedule: NoiseSchedule;
}

/**
 * Atomically write the trainer's full state (see checkpoint.ts for the format). Steps still queued are read first
 * (readSteps: their losses join the history, and a non-finite one throws before anything is written); the tensors are
 * read back with awaited reads.
 */
export async function saveTrainer(file: string, trainer: CheckpointableTrainer, opts: SaveOptions = {}): Promise<void> {
  if (opts.dataset !== undefined) checkDatasetName(opts.dataset);
  await readSteps(trainer);
  const params = trainer.model.params;
  const names = params.names();
  const vars = params.variables();
  const header: CheckpointHeader = {
    model: trainer.model.config as ModelConfig,
    schedule: trainer.schedule.toJSON(),
    step: trainer.step,
    train: trainer.config,
    lossHistory: trainer.lossHistory,
    emaUpdates: trainer.ema.updates,
    adamStep: opts.weightsOnly ? undefined : trainer.optimizer.step,
    dataset: opts.dataset,
    meta: opts.meta,
  };
  const groups: Record<string, TensorGroup> = { ema: group(names, vars, await trainer.ema.values()) };
  if (!opts.weightsOnly) {
    const [adam, values] = await Promise.all([trainer.optimizer.getState(), Promise.all(vars.map((v) => v.data() as Promise<Float32Array>))]);
    groups.params = group(names, vars, values);
    groups['adam.m'] = group(names, vars, adam.m);
    groups['adam.v'] = group(names, vars, adam.v);
  } else if (opts.keepRaw) {
    groups.params = group(names, vars, await Promise.all(vars.map((v) => v.data() as Promise<Float32Array>)));
  }
  writeCheckpointFile(file, { header: header as unknown as Record<string, unknown>, groups });
}

function checkHeader(h: Record<string, unknown>, source: string): CheckpointHeader {
  const fail = (msg: string): never => { throw new CorruptFileError(`${source}: ${msg}`); };
  if (typeof h.model !== 'object' || h.model === null) fail('header has no model config');
  if (typeof h.schedule !== 'object' || h.schedule === null) fail('header has no schedule');
  if (!Number.isInteger(h.step) || (h.step as number) < 0) fail(`header step must be an integer ≥ 0, got ${String(h.step)}`);
  if (h.dataset !== undefined && !(DATASET_NAMES as readonly unknown[]).includes(h.dataset)) {
    fail(`header dataset ${JSON.stringify(h.dataset)} is none of ${DATASET_NAMES.join(', ')}`);
  }
  return h as unknown as CheckpointHeader;
}

/** Values of `g` in the order of `model`'s variables, checking that names and shapes match one to one. */
function valuesFor(model: DiffusionModel, g: TensorGroup | undefined, what: string, source: string): Float32Array[] {
  if (!g) throw new CorruptFileError(`${source}: has no '${what}' tensors`);
  const entries = model.params.entries();
  if (g.size !== entries.length) {
    throw new CorruptFileError(`${source}: '${what}' holds ${g.size} tensors, the model has ${entries.length} parameters`);
  }
  return entries.map(([name, v]: [string, tf.Variable]) => {
    const t = g.get(name);
    if (!t) throw new CorruptFileError(`${source}: '${what}' lacks parameter '${name}'`);
    if (t.shape.length !== v.shape.length || t.shape.some((d, i) => d !== v.shape[i])) {
      throw new CorruptFileError(`${source}: '${what}/${name}' has shape [${t.shape}], the model expects [${v.shape}]`);
    }
    return t.data;
  });
}

/** Deep equality of two JSON-like values, key order and undefined members ignored (configs read back from a header). */
export function sameJson(a: unknown, b: unknown): boolean {
  const norm = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(norm) : v && typeof v === 'object'
      ? Object.fromEntries(Object.entries(v as object).filter(([, x]) => x !== undefined).sort(([x], [y]) => x.localeCompare(y)).map(([k, x]) => [k, norm(x)]))
      : v;
  return JSON.stringify(norm(a)) === JSON.stringify(norm(b));
}

export interface ResumeOptions {
  /** When given, the checkpoint's model config must equal it (a resumed run must train the same network). */
  expectModel?: ModelConfig;
  /** Override the train config (e.g. more steps); defaults to the stored one. */
  train?: TrainConfig;
  /** When given, the checkpoint must have been trained on this data set (a resumed run must see the same data). */
  expectDataset?: DatasetName;
}

/** A checkpoint read for resuming: what to build, and `restore` to put the saved state into the trainer built. */
export interface ResumePoint {
  header: CheckpointHeader;
  /** opts.train, else the stored train config. */
  train: TrainConfig;
  schedule: NoiseSchedule;
  /**
   * Weights, EMA, Adam moments, step and loss history into `target`, whose model must have been built from
   * header.model (checked parameter by parameter) and whose step must still be 0.
   */
  restore(target: CheckpointableTrainer): void;
}

/** Read `file` for resuming, checking the header and (opts.expectModel) the model config; nothing is built yet. */
export function openResume(file: string, opts: ResumeOptions = {}): ResumePoint {
  const source = `checkpoint '${file}'`;
  const c = readCheckpointFile(file);
  const header = checkHeader(c.header, source);
  if (opts.expectModel && !sameJson(opts.expectModel, header.model)) {
    throw new CorruptFileError(`${source}: was trained with model config ${JSON.stringify(header.model)}, but ${JSON.stringify(opts.expectModel)} was asked for`);
  }
  if (opts.expectDataset !== undefined && checkpointDataset(header) !== opts.expectDataset) {
    throw new InvalidArgumentError(`${source}: was trained on ${checkpointDataset(header)}, but the run config asks for ${opts.expectDataset}`);
  }
  const train = opts.train ?? header.train;
  if (!train) throw new CorruptFileError(`${source}: has no train config (weights-only checkpoints cannot resume)`);
  return { header, train, schedule: NoiseSchedule.fromJSON(header.schedule), restore: (target) => restoreInto(target, c, header, source) };
}

function restoreInto(target: CheckpointableTrainer, c: CheckpointContents, h: CheckpointHeader, source: string): void {
  if (target.step !== 0 || target.lossHistory.length !== 0) {
    throw new InvalidArgumentError(`resume from ${source}: the trainer must be fresh (step 0), it is at step ${target.step}`);
  }
  if (!sameJson(target.model.config, h.model)) {
    throw new InvalidArgumentError(`resume from ${source}: the trainer's model config ${JSON.stringify(target.model.config)} differs from the checkpoint's`);
  }
  const model = target.model;
  // read every group before changing anything: a bad file leaves the target as it was
  const params = valuesFor(model, c.groups.params, 'params', source);
  const ema = valuesFor(model, c.groups.ema, 'ema', source);
  const m = valuesFor(model, c.groups['adam.m'], 'adam.m', source);
  const v = valuesFor(model, c.groups['adam.v'], 'adam.v', source);
  model.params.load(new Map(model.params.names().map((n, i) => [n, params[i]])));
  target.optimizer.setState({ step: h.adamStep ?? h.step, m, v });
  target.ema.setValues(ema, h.emaUpdates ?? h.step);
  target.step = h.step;
  target.lossHistory.push(...(h.lossHistory ?? []));
}

/** Rebuild a Trainer exactly as it was saved: weights, EMA, Adam moments and step, loss history. */
export function resumeTrainer(file: string, opts: ResumeOptions = {}): Trainer {
  const point = openResume(file, opts);
  const model = createModel(point.header.model);
  let trainer: Trainer | undefined;
  try {
    trainer = new Trainer(model, point.schedule, point.train);
    point.restore(trainer);
    return trainer;
  } catch (e) {
    trainer?.dispose();
    model.dispose();
    throw e;
  }
}

export interface LoadedModel {
  model: DiffusionModel<ModelConfig>;
  schedule: NoiseSchedule;
  header: CheckpointHeader;
}

/** A model ready to sample: EMA weights (default) or the raw last iterate. */
export function loadModel(fileOrDir: string, weights: 'ema' | 'params' = 'ema'): LoadedModel {
  const file = checkpointPath(fileOrDir);
  const source = `checkpoint '${file}'`;
  const c = readCheckpointFile(file);
  const header = checkHeader(c.header, source);
  const model = createModel(header.model);
  try {
    const values = valuesFor(model, c.groups[weights], weights, source);
    model.params.load(new Map(model.params.names().map((n, i) => [n, values[i]])));
    return { model, schedule: NoiseSchedule.fromJSON(header.schedule), header };
  } catch (e) {
    model.dispose();
    throw e;
  }
}
