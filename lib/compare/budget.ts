/**
 * Training each model of notebook 10 for the same WALL-CLOCK budget: the diffusion U-Net with lib/train's Trainer, the
 * VAE and the GAN with VaeTrainer / GanTrainer, each on its own config (batch, lr …) and the same data, stopped by
 * FitLoop's shouldStop once the budget has passed (the step in flight finishes: a run overshoots by at most one step).
 * A run that goes non-finite ends there and is recorded as failed (NonFiniteError's message), not thrown.
 * Model init and train seeds both become the run's seed, so seeds vary the initial weights, the data order and the noise.
 */
import * as os from 'node:os';
import { InvalidArgumentError, NonFiniteError } from '../errors';
import type { ImageSplit } from '../data/datasets';
import { Gan, type GanConfig } from '../models/gan';
import { UNet, type UNetConfig } from '../models/unet';
import { Vae, type VaeConfig } from '../models/vae';
import { GanTrainer, type GanTrainConfig, VaeTrainer, type VaeTrainConfig } from '../train/baseline-trainer';
import { createBaseline, type BaselineModel } from '../train/baseline-state';
import { epochSource } from '../train/data';
import { makeSchedule, type ScheduleSpec } from '../train/run-config';
import { type FitOptions, type TrainConfig, Trainer } from '../train/trainer';
import { processCpuSeconds } from '../parallel/cputime';
import { progressBar } from '../viz/progress';
import type { ModelKind } from './generators';

/** The three runs' configurations (model + training; the U-Net's noise schedule). */
export interface ComparisonSpec {
  unet: { model: UNetConfig; schedule: ScheduleSpec; train: TrainConfig };
  vae: { model: VaeConfig; train: VaeTrainConfig };
  gan: { model: GanConfig; train: GanTrainConfig };
}

export type AnyTrainer = Trainer | VaeTrainer | GanTrainer;

export interface BudgetRun {
  kind: ModelKind;
  seed: number;
  budgetSec: number;
  steps: number;
  /** Wall time of the fit loop (the budget plus the last step's overshoot and the final read). */
  wallSec: number;
  /** CPU seconds of this process meanwhile (every thread: 2 cores fully used would be 2 × wallSec). */
  cpuSec: number;
  load: { start: number[]; end: number[] };
  /** The NonFiniteError's message when the run went non-finite. */
  failed?: string;
  /** Per-step training losses: unet {loss}, vae {negElbo} (nats per image), gan {d, g}. */
  losses: Record<string, number[]>;
}

export interface BudgetOptions {
  /** A progress bar over the budget's seconds (a string is its label). */
  progress?: boolean | string;
  /** Called after each step read back with the seconds elapsed. */
  onStep?: (step: number, seconds: number) => void;
  readEvery?: number;
}

/** A fresh trainer of `kind` for `seed` (the model's seed and the train seed both set to it). */
export function makeTrainer(kind: ModelKind, spec: ComparisonSpec, seed: number): AnyTrainer {
  if (kind === 'unet') {
    const s = spec.unet;
    return new Trainer(new UNet({ ...s.model, seed }), makeSchedule(s.schedule), { ...s.train, seed });
  }
  if (kind === 'vae') return new VaeTrainer(new Vae({ ...spec.vae.model, seed }), { ...spec.vae.train, seed });
  if (kind === 'gan') return new GanTrainer(new Gan({ ...spec.gan.model, seed }), { ...spec.gan.train, seed });
  throw new InvalidArgumentError(`model kind must be 'unet', 'vae' or 'gan', got ${JSON.stringify(kind)}`);
}

/**
 * Train `trainer` on `data` for `seconds` of wall time (at most its config's steps). Returns the run's record; the
 * trainer keeps its state (the caller samples from its EMA and disposes it).
 */
export async function trainForBudget(kind: ModelKind, trainer: AnyTrainer, data: ImageSplit, seconds: number, opts: BudgetOptions = {}): Promise<BudgetRun> {
  if (!(seconds > 0 && Number.isFinite(seconds))) throw new InvalidArgumentError(`budget must be a positive number of seconds, got ${seconds}`);
  const source = epochSource(data, trainer.config.batchSize, trainer.config.seed);
  const load0 = os.loadavg();
  const cpu0 = processCpuSeconds();
  const t0 = Date.now();
  const deadline = t0 + seconds * 1000;
  const bar = opts.progress
    ? progressBar({ total: Math.ceil(seconds), label: typeof opts.progress === 'string' ? opts.progress : kind })
    : undefined;
  const fitOpts: FitOptions = {
    shouldStop: () => Date.now() >= deadline,
    readEvery: opts.readEvery,
    onStep: opts.onStep || bar ? (e) => {
      const sec = (Date.now() - t0) / 1000;
      opts.onStep?.(e.step, sec);
      bar?.update(Math.min(Math.floor(sec), Math.ceil(seconds)), { step: e.step + 1, loss: e.loss });
    } : undefined,
  };
  let failed: string | undefined;
  try {
    await trainer.fit(source, fitOpts);
  } catch (e) {
    if (!(e instanceof NonFiniteError)) throw e;
    failed = e.message;
  } finally {
    bar?.done({ steps: trainer.step });
  }
  const losses = trainer instanceof GanTrainer ? { d: trainer.dLosses(), g: trainer.gLosses() }
    : { [kind === 'vae' ? 'negElbo' : 'loss']: trainer.lossHistory.slice() };
  return {
    kind, seed: trainer.config.seed, budgetSec: seconds, steps: trainer.step, wallSec: (Date.now() - t0) / 1000, cpuSec: processCpuSeconds() - cpu0,
    load: { start: load0, end: os.loadavg() }, failed, losses,
  };
}

/**
 * The EMA-weighted model of a trainer, as a new model (the trainer's own is left as it is): what sampling uses.
 * The caller disposes it.
 */
export async function emaModel(trainer: AnyTrainer): Promise<UNet | BaselineModel> {
  if (trainer instanceof Trainer) {
    const m = new UNet(trainer.model.config as UNetConfig);
    m.params.load(await trainer.emaWeights());
    return m;
  }
  const m = createBaseline(trainer.model.config);
  const names = trainer instanceof GanTrainer ? trainer.model.partNames('generator') : trainer.model.params.names();
  const ema = await trainer.ema.values();
  const raw = await trainer.model.params.snapshot();
  names.forEach((n, i) => raw.set(n, ema[i]));
  m.params.load(raw);
  return m;
}

/** Mean of consecutive windows, so that a long loss curve keeps at most `points` points: { every, values }. */
export function downsample(values: readonly number[], points = 100): { every: number; values: number[] } {
  if (!(Number.isInteger(points) && points > 0)) throw new InvalidArgumentError(`points must be a positive integer, got ${points}`);
  const every = Math.max(1, Math.ceil(values.length / points));
  const out: number[] = [];
  for (let i = 0; i < values.length; i += every) {
    const w = values.slice(i, i + every);
    out.push(w.reduce((s, v) => s + v, 0) / w.length);
  }
  return { every, values: out };
}

/** Disposes a trainer and its model. */
export function disposeTrainer(t: AnyTrainer): void {
  t.dispose();
  t.model.dispose();
}
