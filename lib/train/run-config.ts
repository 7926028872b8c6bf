/**
 * A training run described in one JSON file (configs/<name>.json): model config, schedule, train config, data.
 *   { "name": "unet-cond-mnist", "model": { "kind": "unet", … }, "schedule": { "kind": "linear", "T": 1000 },
 *     "train": { "steps": 2500, "batchSize": 32, … }, "data": { "dataset": "mnist", "split": "train" },
 *     (data.dataset: 'mnist' or 'fashion-mnist', lib/data's loadDataset; the whole 60,000-image train split)
 *     "fast": { "steps": 3, "batchSize": 8 } }            ← overrides applied in fast mode (DIFFUSION_FAST=1)
 */
import * as fs from 'node:fs';
import { CorruptFileError, InvalidArgumentError } from '../errors';
import { DATASET_NAMES, type DatasetName } from '../data/sources';
import type { ModelConfig } from '../models/index';
import { NoiseSchedule } from '../schedule';
import { DEFAULT_TRAIN, type TrainConfig, validateTrainConfig } from './trainer';

export interface ScheduleSpec {
  kind: 'linear' | 'cosine';
  T: number;
  betaStart?: number;
  betaEnd?: number;
}

export interface RunConfig {
  name: string;
  model: ModelConfig;
  schedule: ScheduleSpec;
  train: TrainConfig;
  data: { dataset: DatasetName; split: 'train' };
  fast?: Partial<TrainConfig>;
}

export function makeSchedule(s: ScheduleSpec): NoiseSchedule {
  if (s.kind === 'linear') return NoiseSchedule.linear(s.T, s.betaStart, s.betaEnd);
  if (s.kind === 'cosine') return NoiseSchedule.cosine(s.T);
  throw new InvalidArgumentError(`schedule.kind must be 'linear' or 'cosine', got ${JSON.stringify((s as { kind?: unknown }).kind)}`);
}

/** Parse and check a run config; `fast` applies its fast-mode overrides. */
export function parseRunConfig(json: unknown, source: string, fast = false): RunConfig {
  const c = json as Partial<RunConfig>;
  const bad = (msg: string): never => { throw new InvalidArgumentError(`${source}: ${msg}`); };
  if (!c || typeof c !== 'object') bad('must be a JSON object');
  if (typeof c.name !== 'string' || !/^[\w.-]+$/.test(c.name)) bad(`name must be a simple file name, got ${JSON.stringify(c.name)}`);
  if (!c.model || typeof c.model !== 'object') bad('needs a "model" object');
  if (!c.schedule || typeof c.schedule !== 'object') bad('needs a "schedule" object');
  if (c.data !== undefined) {
    if (typeof c.data !== 'object' || c.data === null) bad('"data" must be an object { "dataset": …, "split": "train" }');
    if (!(DATASET_NAMES as readonly unknown[]).includes(c.data.dataset)) {
      bad(`data.dataset must be one of ${DATASET_NAMES.map((n) => `'${n}'`).join(', ')}, got ${JSON.stringify(c.data.dataset)}`);
    }
    if (c.data.split !== undefined && c.data.split !== 'train') bad(`data.split must be 'train', got ${JSON.stringify(c.data.split)}`);
  }
  const train: TrainConfig = { ...DEFAULT_TRAIN, ...(c.train ?? {}), ...(fast ? c.fast ?? {} : {}) };
  validateTrainConfig(train);
  makeSchedule(c.schedule!); // validates kind and T
  return { name: c.name!, model: c.model!, schedule: c.schedule!, train, data: { dataset: c.data?.dataset ?? 'mnist', split: 'train' }, fast: c.fast };
}

/** The parsed JSON of a run config file; a missing or malformed file is a CorruptFileError naming it. */
export function readConfigJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CorruptFileError(`cannot read run config '${file}': ${(e as Error).message}`);
  }
}

export function readRunConfig(file: string, fast = false): RunConfig {
  return parseRunConfig(readConfigJson(file), `run config '${file}'`, fast);
}
