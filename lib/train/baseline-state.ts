/**
 * The baselines' training state ↔ checkpoint file, in lib/train/checkpoint's format (atomic write, SHA-256, shape
 * table), as state.ts does it for the diffusion trainer:
 *
 *   header  { kind: 'baseline', model (VaeConfig | GanConfig), step, train, lossHistory, emaUpdates, adamStep, dataset, meta }
 *   groups  'ema'     the averaged weights: every VAE parameter, the GAN's generator
 *           'params'  every parameter (raw weights)                    ┐
 *           'adam.m', 'adam.v'  the moments of the EMA'd variables   ├ left out by weightsOnly
 *           'adam-d.m', 'adam-d.v'  the GAN discriminator's          ┘
 *
 * saveBaselineTrainer / resumeBaselineTrainer round-trip a trainer exactly (a resumed run computes the steps an
 * uninterrupted one would, bit for bit); loadBaseline builds the model for sampling (EMA weights by default). A weights-only
 * GAN file holds the generator only. Diffusion checkpoints are refused here, and baseline ones by loadModel (no schedule).
 */
import * as tf from '@tensorflow/tfjs';
import { CorruptFileError, InvalidArgumentError } from '../errors';
import { checkDatasetName, type DatasetName } from '../data/sources';
import { Gan, type GanConfig } from '../models/gan';
import { Vae, type VaeConfig } from '../models/vae';
import {
  type BaselineTrainer, DEFAULT_GAN_TRAIN, DEFAULT_VAE_TRAIN, GanTrainer, type GanTrainConfig, VaeTrainer, type VaeTrainConfig,
} from './baseline-trainer';
import { readCheckpointFile, type TensorGroup, writeCheckpointFile } from './checkpoint';
import { checkpointDataset, checkpointPath, sameJson } from './state';

export const BASELINE_KIND = 'baseline';

export type BaselineConfig = VaeConfig | GanConfig;
export type BaselineModel = Vae | Gan;

export interface BaselineHeader {
  kind: typeof BASELINE_KIND;
  model: BaselineConfig;
  step: number;
  train?: VaeTrainConfig | GanTrainConfig;
  lossHistory?: number[];
  emaUpdates?: number;
  adamStep?: number;
  /** The data set trained on (evaluation picks its classifier and real images by it). */
  dataset?: DatasetName;
  meta?: Record<string, unknown>;
}

/** A model of either kind from its config. */
export function createBaseline(config: BaselineConfig): BaselineModel {
  const kind = (config as { kind?: unknown })?.kind;
  if (kind === 'vae') return new Vae(config as VaeConfig);
  if (kind === 'gan') return new Gan(config as GanConfig);
  throw new InvalidArgumentError(`baseline config: kind must be 'vae' or 'gan', got ${JSON.stringify(kind)}`);
}

/** The trainer of `model` (a VaeTrainer or a GanTrainer), with `train` completed from the kind's defaults. */
export function createBaselineTrainer(model: BaselineModel, train: Partial<VaeTrainConfig & GanTrainConfig>): BaselineTrainer {
  if (model instanceof Vae) return new VaeTrainer(model, { ...DEFAULT_VAE_TRAIN, ...pick(train, DEFAULT_VAE_TRAIN) });
  return new GanTrainer(model, { ...DEFAULT_GAN_TRAIN, ...pick(train, DEFAULT_GAN_TRAIN) });
}

/** The keys of `o` that `like` has (a GAN config's lrD is no VAE option and vice versa). */
function pick<T extends object>(o: Partial<T> & object, like: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([k]) => k in like)) as Partial<T>;
}

/** Names of the averaged (and Adam-optimized) variables, in the optimizer's order. */
function emaNames(model: BaselineModel): string[] {
  return model instanceof Gan ? model.partNames('generator') : model.params.names();
}

function group(names: string[], model: BaselineModel, values: Float32Array[]): TensorGroup {
  return new Map(names.map((n, i) => [n, { shape: model.params.get(n).shape.slice(), data: values[i] }]));
}

const readAll = (vars: tf.Variable[]) => Promise.all(vars.map((v) => v.data() as Promise<Float32Array>));

export interface SaveBaselineOptions {
  /** Only the averaged weights: a smaller file that can sample but not resume. */
  weightsOnly?: boolean;
  dataset?: DatasetName;
  meta?: Record<string, unknown>;
}

/** Atomically write the trainer's state (queued steps are read first: a non-finite one throws before anything is written). */
export async function saveBaselineTrainer(file: string, trainer: BaselineTrainer, opts: SaveBaselineOptions = {}): Promise<void> {
  if (opts.dataset !== undefined) checkDatasetName(opts.dataset);
  await trainer.flush();
  const model = trainer.model;
  const names = emaNames(model);
  const header: BaselineHeader = {
    kind: BASELINE_KIND, model: model.config, step: trainer.step, train: trainer.config, lossHistory: trainer.lossHistory,
    emaUpdates: trainer.ema.updates, adamStep: opts.weightsOnly ? undefined : trainer.optimizer.step, dataset: opts.dataset, meta: opts.meta,
  };
  const groups: Record<string, TensorGroup> = { ema: group(names, model, await trainer.ema.values()) };
  if (!opts.weightsOnly) {
    const [params, adam] = await Promise.all([readAll(model.params.variables()), trainer.optimizer.getState()]);
    groups.params = group(model.params.names(), model, params);
    groups['adam.m'] = group(names, model, adam.m);
    groups['adam.v'] = group(names, model, adam.v);
    if (trainer instanceof GanTrainer) {
      const d = await trainer.optimizerD.getState();
      const dNames = trainer.model.partNames('discriminator');
      groups['adam-d.m'] = group(dNames, model, d.m);
      groups['adam-d.v'] = group(dNames, model, d.v);
    }
  }
  writeCheckpointFile(file, { header: header as unknown as Record<string, unknown>, groups });
}

function checkHeader(h: Record<string, unknown>, source: string): BaselineHeader {
  const fail = (msg: string): never => { throw new CorruptFileError(`${source}: ${msg}`); };
  if (h.kind !== BASELINE_KIND) {
    fail(h.schedule !== undefined ? 'holds a diffusion model (load it with loadModel)' : `kind is ${JSON.stringify(h.kind)}, expected '${BASELINE_KIND}'`);
  }
  const model = h.model as { kind?: unknown } | undefined;
  if (typeof model !== 'object' || model === null || (model.kind !== 'vae' && model.kind !== 'gan')) fail(`header's model must be a VAE or GAN config, got ${JSON.stringify(model)}`);
  if (!Number.isInteger(h.step) || (h.step as number) < 0) fail(`header step must be an integer ≥ 0, got ${String(h.step)}`);
  if (h.dataset !== undefined) checkDatasetName(h.dataset as string);
  return h as unknown as BaselineHeader;
}

/** Values of `g` for `names` (shapes checked against the model), in that order. */
function valuesFor(model: BaselineModel, g: TensorGroup | undefined, names: string[], what: string, source: string): Float32Array[] {
  if (!g) throw new CorruptFileError(`${source}: has no '${what}' tensors`);
  if (g.size !== names.length) throw new CorruptFileError(`${source}: '${what}' holds ${g.size} tensors, expected ${names.length}`);
  return names.map((name) => {
    const t = g.get(name);
    if (!t) throw new CorruptFileError(`${source}: '${what}' lacks parameter '${name}'`);
    const want = model.params.get(name).shape;
    if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
      throw new CorruptFileError(`${source}: '${what}/${name}' has shape [${t.shape}], the model expects [${want}]`);
    }
    return t.data;
  });
}

function assign(model: BaselineModel, names: string[], values: Float32Array[]): void {
  const byName = new Map(model.params.entries());
  names.forEach((n, i) => {
    const v = byName.get(n)!;
    tf.tidy(() => v.assign(tf.tensor(values[i], v.shape, 'float32')));
  });
}

export interface ResumeBaselineOptions {
  /** The checkpoint's model config must equal it. */
  expectModel?: BaselineConfig;
  /** The checkpoint must have been trained on this data set. */
  expectDataset?: DatasetName;
  /** Override the train config (e.g. more steps); default the stored one. */
  train?: VaeTrainConfig | GanTrainConfig;
}

/** Rebuild a trainer exactly as it was saved: weights, EMA, both players' Adam moments, step, loss history. */
export function resumeBaselineTrainer(fileOrDir: string, opts: ResumeBaselineOptions = {}): BaselineTrainer {
  const file = checkpointPath(fileOrDir);
  const source = `checkpoint '${file}'`;
  const c = readCheckpointFile(file);
  const h = checkHeader(c.header, source);
  if (opts.expectModel && !sameJson(opts.expectModel, h.model)) {
    throw new CorruptFileError(`${source}: was trained with model config ${JSON.stringify(h.model)}, but ${JSON.stringify(opts.expectModel)} was asked for`);
  }
  if (opts.expectDataset !== undefined && checkpointDataset(h) !== opts.expectDataset) {
    throw new InvalidArgumentError(`${source}: was trained on ${checkpointDataset(h)}, but ${opts.expectDataset} was asked for`);
  }
  const train = opts.train ?? h.train;
  if (!train) throw new CorruptFileError(`${source}: has no train config (weights-only checkpoints cannot resume)`);
  const model = createBaseline(h.model);
  let trainer: BaselineTrainer | undefined;
  try {
    trainer = createBaselineTrainer(model, train);
    const names = emaNames(model);
    // read every group before changing anything
    const params = valuesFor(model, c.groups.params, model.params.names(), 'params', source);
    const ema = valuesFor(model, c.groups.ema, names, 'ema', source);
    const m = valuesFor(model, c.groups['adam.m'], names, 'adam.m', source);
    const v = valuesFor(model, c.groups['adam.v'], names, 'adam.v', source);
    let dState: { m: Float32Array[]; v: Float32Array[] } | undefined;
    if (trainer instanceof GanTrainer) {
      const dNames = trainer.model.partNames('discriminator');
      dState = { m: valuesFor(model, c.groups['adam-d.m'], dNames, 'adam-d.m', source), v: valuesFor(model, c.groups['adam-d.v'], dNames, 'adam-d.v', source) };
    }
    assign(model, model.params.names(), params);
    const adamStep = h.adamStep ?? h.step;
    trainer.optimizer.setState({ step: adamStep, m, v });
    if (trainer instanceof GanTrainer && dState) trainer.optimizerD.setState({ step: adamStep, ...dState });
    trainer.ema.setValues(ema, h.emaUpdates ?? h.step);
    trainer.step = h.step;
    trainer.lossHistory.push(...(h.lossHistory ?? []));
    return trainer;
  } catch (e) {
    trainer?.dispose();
    model.dispose();
    throw e;
  }
}

export interface LoadedBaseline {
  model: BaselineModel;
  header: BaselineHeader;
}

/**
 * A baseline ready to sample: the EMA weights (default) or the raw last iterate. For a GAN the EMA covers the generator;
 * its discriminator gets the file's raw weights when there are any (a weights-only file: the initial ones).
 */
export function loadBaseline(fileOrDir: string, weights: 'ema' | 'params' = 'ema'): LoadedBaseline {
  const file = checkpointPath(fileOrDir);
  const source = `checkpoint '${file}'`;
  const c = readCheckpointFile(file);
  const header = checkHeader(c.header, source);
  const model = createBaseline(header.model);
  try {
    if (weights === 'params' || c.groups.params) {
      const all = model.params.names();
      assign(model, all, valuesFor(model, c.groups.params, all, 'params', source));
    }
    if (weights === 'ema') {
      const names = emaNames(model);
      assign(model, names, valuesFor(model, c.groups.ema, names, 'ema', source));
    }
    return { model, header };
  } catch (e) {
    model.dispose();
    throw e;
  }
}
