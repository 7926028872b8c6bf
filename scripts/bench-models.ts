/**
 * What `npm run bench` (scripts/bench.ts) and the GPU check's host bench (scripts/bench-webgpu-host.ts) time: the
 * models, picked from configs/, and their stand-in batches. A module without an entry point, so that a script bundled
 * with it (scripts/gpu-check.sh) does not also run bench's main.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../lib/errors';
import { REFERENCE_UNET, type ModelConfig } from '../lib/models';
import { readRunConfig } from '../lib/train/run-config';
import type { Batch } from '../lib/train/trainer';

// the repository root: this file's parent, or the working directory when it runs as a bundle (the GPU check)
const ROOT = fs.existsSync(path.resolve(__dirname, '..', 'configs')) ? path.resolve(__dirname, '..') : process.cwd();

/** A model to benchmark: its config, schedule and the batch it is trained with in the course. */
export interface BenchModel {
  name: string;
  model: ModelConfig;
  schedule: { kind: 'linear' | 'cosine'; T: number };
  trainBatch: number;
}

/** The diffusion models to time: the reference, then every diffusion run config in `dir` (VAE/GAN and study configs skipped). */
export function benchModels(only?: string[], dir = path.join(ROOT, 'configs'), batch = 64): { models: BenchModel[]; skipped: string[] } {
  const models: BenchModel[] = [
    { name: 'reference', model: REFERENCE_UNET, schedule: { kind: 'linear', T: 1000 }, trainBatch: batch },
  ];
  const skipped: string[] = [];
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort() : [];
  // the cost of a step depends on the network and the batch only: a config with the reference's network (the shipped
  // models') or with a network already picked (recipes that differ only in training) would time the same thing again
  const costKey = (m: ModelConfig, batch: number) => JSON.stringify({ ...m, predictionType: undefined, seed: undefined, batch });
  const timedAs = new Map<string, string>([[costKey(REFERENCE_UNET, batch), 'reference']]);
  for (const f of files) {
    // notebook 10's VAE/GAN run configs and its study configs live beside the diffusion ones: no schedule, not timed here
    const raw = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { model?: { kind?: string }; schedule?: unknown };
    if (raw.schedule === undefined || raw.model === undefined) {
      skipped.push(`${f}: not a diffusion run config (${raw.model?.kind ?? 'a study'}: no schedule)`);
      continue;
    }
    const rc = readRunConfig(path.join(dir, f));
    const key = costKey(rc.model, rc.train.batchSize);
    const same = timedAs.get(key);
    if (!only && same !== undefined) {
      skipped.push(same === 'reference'
        ? `${rc.name}: the reference network at the same batch (timed once, as 'reference')`
        : `${rc.name}: the same network at the same batch as ${same} (timed once, as '${same}')`);
      continue;
    }
    timedAs.set(key, rc.name);
    models.push({ name: rc.name, model: rc.model, schedule: rc.schedule, trainBatch: rc.train.batchSize });
  }
  // by default: the reference and the course's models; configs named *test* are for tests (name them to include them)
  const isTest = (m: BenchModel) => /test/i.test(m.name);
  if (!models.some((m) => m.name !== 'reference' && !isTest(m))) {
    skipped.push('no course model config in configs/ (looked for configs/*.json without "test" in the name)');
  }
  if (!only) return { models: models.filter((m) => !isTest(m)), skipped };
  const unknown = only.filter((n) => !models.some((m) => m.name === n));
  if (unknown.length) throw new InvalidArgumentError(`--models: unknown ${unknown.join(', ')}; known: ${models.map((m) => m.name).join(', ')}`);
  return { models: models.filter((m) => only.includes(m.name)), skipped };
}

/** Deterministic stand-in data: images in [−1, 1] and labels; speed does not depend on the pixels. */
export function syntheticBatch(model: ModelConfig, batch: number, step: number): Batch {
  const m = model as { imageSize?: number; channels?: number; numClasses?: number };
  const shape = m.imageSize ? [batch, m.imageSize, m.imageSize, m.channels ?? 1] : [batch, 2];
  const classes = m.numClasses ?? 0;
  return {
    x: tf.randomUniform(shape, -1, 1, 'float32', 1000 + step),
    y: classes > 0 ? tf.tensor1d(Array.from({ length: batch }, (_, i) => (i + step) % classes), 'int32') : undefined,
  };
}

