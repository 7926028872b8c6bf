/**
 * A baseline training run in one JSON file (configs/vae-<dataset>.json, configs/gan-<dataset>.json), like run-config.ts
 * for the diffusion models:
 *   { "name": "gan-mnist", "model": { "kind": "gan", … }, "train": { "steps": …, "lrD": …, … },
 *     "data": { "dataset": "mnist" | "fashion-mnist" },  ← lib/data's loadDataset, the whole train split
 *     "fast": { "steps": 3, "batchSize": 8 } }            ← overrides applied in fast mode (DIFFUSION_FAST=1)
 * Train options the kind does not have (lrD for a VAE, beta for a GAN) are errors; missing ones take the kind's defaults
 * (DEFAULT_VAE_TRAIN, DEFAULT_GAN_TRAIN).
 */
import { InvalidArgumentError } from '../errors';
import { DATASET_NAMES, type DatasetName } from '../data/sources';
import { type GanConfig, validateGanConfig } from '../models/gan';
import { validateVaeConfig, type VaeConfig } from '../models/vae';
import {
  DEFAULT_GAN_TRAIN, DEFAULT_VAE_TRAIN, type GanTrainConfig, validateGanTrainConfig, validateVaeTrainConfig, type VaeTrainConfig,
} from './baseline-trainer';
import { readConfigJson } from './run-config';

export type BaselineRunConfig =
  | { name: string; model: VaeConfig; train: VaeTrainConfig; data: { dataset: DatasetName }; fast?: Partial<VaeTrainConfig> }
  | { name: string; model: GanConfig; train: GanTrainConfig; data: { dataset: DatasetName }; fast?: Partial<GanTrainConfig> };

/** Parse and check a baseline run config; `fast` applies its fast-mode overrides. */
export function parseBaselineConfig(json: unknown, source: string, fast = false): BaselineRunConfig {
  const bad = (msg: string): never => { throw new InvalidArgumentError(`${source}: ${msg}`); };
  if (!json || typeof json !== 'object' || Array.isArray(json)) bad('must be a JSON object');
  const c = json as Record<string, unknown>;
  for (const k of Object.keys(c)) if (!['name', 'model', 'train', 'data', 'fast', 'comment'].includes(k)) bad(`unknown key "${k}"`);
  if (typeof c.name !== 'string' || !/^[\w.-]+$/.test(c.name)) bad(`name must be a simple file name, got ${JSON.stringify(c.name)}`);
  const model = c.model as VaeConfig | GanConfig;
  if (!model || typeof model !== 'object') bad('needs a "model" object');
  const data = (c.data ?? { dataset: 'mnist' }) as { dataset?: unknown };
  if (typeof data !== 'object' || !(DATASET_NAMES as readonly unknown[]).includes(data.dataset)) {
    bad(`data.dataset must be one of ${DATASET_NAMES.map((n) => `'${n}'`).join(', ')}, got ${JSON.stringify(data.dataset)}`);
  }
  const kind = (model as { kind?: unknown }).kind;
  if (kind !== 'vae' && kind !== 'gan') bad(`model.kind must be 'vae' or 'gan', got ${JSON.stringify(kind)}`);
  const defaults: VaeTrainConfig | GanTrainConfig = kind === 'vae' ? DEFAULT_VAE_TRAIN : DEFAULT_GAN_TRAIN;
  for (const [where, o] of [['train', c.train], ['fast', c.fast]] as const) {
    if (o === undefined) continue;
    if (typeof o !== 'object' || o === null) bad(`"${where}" must be an object`);
    for (const k of Object.keys(o as object)) if (!(k in defaults)) bad(`${where}.${k} is not a ${String(kind).toUpperCase()} training option (known: ${Object.keys(defaults).join(', ')})`);
  }
  const train = { ...defaults, ...(c.train as object), ...(fast ? (c.fast as object) ?? {} : {}) };
  try {
    if (model.kind === 'vae') {
      validateVaeConfig(model);
      validateVaeTrainConfig(train as VaeTrainConfig);
    } else {
      validateGanConfig(model);
      validateGanTrainConfig(train as GanTrainConfig);
    }
  } catch (e) {
    if (e instanceof InvalidArgumentError) bad(e.message);
    throw e;
  }
  return { name: c.name as string, model, train, data: { dataset: data.dataset as DatasetName }, fast: c.fast } as BaselineRunConfig;
}

export function readBaselineConfig(file: string, fast = false): BaselineRunConfig {
  return parseBaselineConfig(readConfigJson(file), `run config '${file}'`, fast);
}
