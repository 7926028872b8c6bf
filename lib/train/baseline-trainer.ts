/**
 * Trainers for the baselines of notebook 10 (lib/models' Vae and Gan), composed from the diffusion trainer's pieces so
 * that every model of the comparison is trained the same way: applyStepGradients (global-norm clipping, warm-up,
 * Adam, EMA, the sticky on-device "all finite" flag that masks a bad step), PendingSteps + readSteps (losses read in
 * batches; a non-finite step → NonFiniteError naming it, state rolled back to the step before), FitLoop (progress,
 * due checkpoints, early stop), dropClasses (label dropout to the null class) and stepSeed (every draw of step n from
 * (seed, n), so a resumed run computes exactly the steps an uninterrupted one would).
 *
 *   VaeTrainer  one update per step: loss = mean(recon + β·kl) (vaeLossGrads), Adam and EMA over every parameter.
 *   GanTrainer  two updates per step, D then G through the updated D (DCGAN's alternation, as ganTrainStep):
 *               D with its own Adam and no average, G with its Adam and the EMA that sampling uses. Both go through
 *               applyStepGradients with ONE shared PendingSteps, so the finite flag is shared: a bad D step masks G's
 *               update of that step too, and everything after it. The queue then holds two entries per step (D's,
 *               then G's), and lossHistory both losses in that order (dLosses() / gLosses() split them).
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, NonFiniteError } from '../errors';
import {
  checkGanStep, discriminatorGrads, Gan, GAN_ADAM, generatorGrads, type GeneratorLossKind, stepLatents,
} from '../models/gan';
import { Vae, vaeLossGrads } from '../models/vae';
import { progressBar } from '../viz/progress';
import { Adam } from './adam';
import { Ema } from './ema';
import {
  applyStepGradients, type Batch, type BatchSource, DEFAULT_TRAIN, dropClasses, FitLoop, type FitOptions, meanOfLast,
  nextTick, PendingSteps, type ProgressEvent, readSteps, type StepResult, type StepState, stepSeed, type TrainConfig,
  validateTrainConfig,
} from './trainer';

/** Streams of stepSeed beyond the diffusion trainer's 1–5 (timesteps, noise, label dropout, dropout masks, epochs). */
const VAE_NOISE_STREAM = 6;
const GAN_LATENT_STREAM = 7;
const LABEL_DROPOUT_STREAM = 3; // the diffusion trainer's: the same labels drop at the same step

export interface VaeTrainConfig extends TrainConfig {
  /** Weight of the KL term (1: the loss is −ELBO). */
  beta: number;
  /** Add uniform noise of one grey level to the pixels (the ELBO then bounds the discrete likelihood). */
  dequantize: boolean;
}

export interface GanTrainConfig extends TrainConfig {
  /** The discriminator's peak learning rate (`lr` is the generator's); same warm-up. */
  lrD: number;
  generatorLoss: GeneratorLossKind;
}

export const DEFAULT_VAE_TRAIN: VaeTrainConfig = { ...DEFAULT_TRAIN, beta: 1, dequantize: true };
/** DCGAN's 2e-4 for both players; clipping left at a norm that only catches blow-ups (DCGAN clips nothing). */
export const DEFAULT_GAN_TRAIN: GanTrainConfig = {
  ...DEFAULT_TRAIN, lr: 2e-4, lrD: 2e-4, warmupSteps: 0, gradClip: 100, generatorLoss: 'non-saturating',
};

export function validateVaeTrainConfig(c: VaeTrainConfig): void {
  validateTrainConfig(c);
  if (!(c.beta >= 0 && Number.isFinite(c.beta))) throw new InvalidArgumentError(`train config: beta must be a finite number ≥ 0, got ${c.beta}`);
  if (typeof c.dequantize !== 'boolean') throw new InvalidArgumentError(`train config: dequantize must be true or false, got ${JSON.stringify(c.dequantize)}`);
}

export function validateGanTrainConfig(c: GanTrainConfig): void {
  validateTrainConfig(c);
  if (!(c.lrD > 0 && Number.isFinite(c.lrD))) throw new InvalidArgumentError(`train config: lrD must be a positive number, got ${c.lrD}`);
  if (c.generatorLoss !== 'non-saturating' && c.generatorLoss !== 'saturating') {
    throw new InvalidArgumentError(`train config: generatorLoss must be 'non-saturating' or 'saturating', got ${JSON.stringify(c.generatorLoss)}`);
  }
}

/** Labels after dropout for a conditional model, none for an unconditional one (labels of the batch are then unused). */
function stepClasses(numClasses: number, batch: Batch, config: TrainConfig, step: number): tf.Tensor1D | undefined {
  if (numClasses === 0) return undefined;
  return dropClasses(batch.y, batch.x.shape[0], numClasses, config.classDropout, stepSeed(config.seed, step, LABEL_DROPOUT_STREAM));
}

/** What both trainers share: the step counters and the batched reads, fit as in lib/train's Trainer. */
abstract class BaselineTrainerBase<M extends { params: { variables(): tf.Variable[] } }, C extends TrainConfig> implements StepState {
  abstract readonly optimizer: Adam;
  abstract readonly ema: Ema;
  readonly pending = new PendingSteps();
  readonly lossHistory: number[] = [];
  /** Steps applied so far (= the index of the next step). */
  step = 0;

  constructor(readonly model: M, readonly config: C) {}

  /** Applies one step on `batch` (disposed here) on the device; nothing is read back. */
  abstract queueStep(batch: Batch): void;

  /** Reads every queued step back (the losses join lossHistory); a non-finite one throws NonFiniteError naming it. */
  async flush(onResult?: (r: StepResult) => void): Promise<StepResult[]> {
    return this.guard(() => readSteps(this, onResult));
  }

  /** Runs `f` (which reads queued steps); after a NonFiniteError puts the trainer's own counters at the rolled-back step. */
  protected async guard<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      if (e instanceof NonFiniteError) throw this.afterRollback(e);
      throw e;
    }
  }

  /** readSteps has rolled back step, Adam, EMA: bring anything else in line and say what failed. */
  protected afterRollback(e: NonFiniteError): Error {
    return e;
  }

  /** One step on `batch` (disposed here), read back with any steps still queued. */
  async trainStep(batch: Batch): Promise<StepResult> {
    this.queueStep(batch);
    const results = await this.flush();
    return results[results.length - 1];
  }

  /** Mean loss over the last `n` read steps (NaN before the first). */
  recentLoss(n = 100): number {
    return meanOfLast(this.lossHistory, n);
  }

  /** Trainer.fit's loop: queue a step, let FitLoop read, checkpoint or stop, yield to the event loop. */
  protected async runLoop(loop: FitLoop, source: BatchSource): Promise<void> {
    await this.guard(async () => {
      while (loop.running()) {
        this.queueStep(source(this.step));
        if (await loop.after()) break;
        await nextTick();
      }
      await loop.done();
    });
  }

  dispose(): void {
    this.optimizer.dispose();
    this.ema.dispose();
    this.pending.dispose();
  }
}

export class VaeTrainer extends BaselineTrainerBase<Vae, VaeTrainConfig> {
  readonly optimizer: Adam;
  readonly ema: Ema;

  constructor(model: Vae, config: VaeTrainConfig) {
    validateVaeTrainConfig(config);
    super(model, config);
    const vars = model.params.variables();
    this.optimizer = new Adam(vars);
    this.ema = new Ema(vars, config.emaDecay);
  }

  queueStep(batch: Batch): void {
    const { model, config } = this;
    let classes: tf.Tensor1D | undefined;
    try {
      classes = stepClasses(model.numClasses, batch, config, this.step);
      const r = vaeLossGrads(model, { x: batch.x, classes }, {
        seed: stepSeed(config.seed, this.step, VAE_NOISE_STREAM), beta: config.beta, dequantize: config.dequantize,
      });
      tf.dispose([r.recon, r.kl, r.negElbo, r.bitsPerDim]);
      applyStepGradients(this, r.grads, r.loss);
    } finally {
      tf.dispose([batch.x, batch.y, classes]);
    }
  }

  /** Train from the current step to opts.until (default config.steps), as lib/train's Trainer.fit. */
  async fit(source: BatchSource, opts: FitOptions = {}): Promise<void> {
    await this.runLoop(new FitLoop(this, opts), source);
  }
}

/** The discriminator keeps no weight average; StepState needs an Ema, so this one averages nothing and only counts. */
class NoAverage extends Ema {
  constructor() {
    super([]);
  }

  override update(): number {
    this.updates += 1;
    return 0;
  }
}

/** A step of a GAN, read back: G's result (StepResult's loss, gradNorm, lr) and D's. */
export interface GanStepResult extends StepResult {
  d: { loss: number; gradNorm: number; lr: number };
}

export interface GanProgressEvent extends ProgressEvent {
  d: { loss: number; gradNorm: number; lr: number };
}

export interface GanFitOptions extends Omit<FitOptions, 'onStep'> {
  /** Called for every step once both players' losses were read (loss, gradNorm, lr: G's; d: D's). */
  onStep?: (e: GanProgressEvent) => void;
}

export class GanTrainer extends BaselineTrainerBase<Gan, GanTrainConfig> {
  /** G's Adam: the StepState optimizer, whose counters readSteps rolls back. */
  readonly optimizer: Adam;
  /** EMA of G's weights (what sampling uses). */
  readonly ema: Ema;
  /** D's Adam; its step counter is kept equal to the trainer's step. */
  readonly optimizerD: Adam;
  /** D's view of the step state: its own config (lr = lrD), optimizer and no average, the trainer's queue. */
  private readonly dState: StepState;

  constructor(model: Gan, config: GanTrainConfig) {
    validateGanTrainConfig(config);
    super(model, config);
    const g = model.generatorVariables();
    this.optimizer = new Adam(g, GAN_ADAM);
    this.ema = new Ema(g, config.emaDecay);
    this.optimizerD = new Adam(model.discriminatorVariables(), GAN_ADAM);
    this.dState = { config: { ...config, lr: config.lrD }, optimizer: this.optimizerD, ema: new NoAverage(), lossHistory: [], step: 0, pending: this.pending };
  }

  queueStep(batch: Batch): void {
    const { model, config } = this;
    let classes: tf.Tensor1D | undefined;
    let z: tf.Tensor2D | undefined;
    try {
      classes = stepClasses(model.numClasses, batch, config, this.step);
      const seed = stepSeed(config.seed, this.step, GAN_LATENT_STREAM);
      checkGanStep(model, { x: batch.x, classes }, seed);
      z = stepLatents(model, batch.x.shape[0], seed);
      const d = discriminatorGrads(model, batch.x, classes, z);
      tf.dispose([d.dReal, d.dFake]);
      this.dState.step = this.step;
      this.optimizerD.step = this.step;
      applyStepGradients(this.dState, d.grads, d.value);
      const g = generatorGrads(model, classes, z, config.generatorLoss);
      applyStepGradients(this, g.grads, g.value);
    } finally {
      tf.dispose([batch.x, batch.y, classes, z]);
    }
  }

  /** The rollback moved G's counters and the step; D's Adam and the history (D's entry of the bad step) follow. */
  protected override afterRollback(e: NonFiniteError): Error {
    // readSteps appends D's loss of a step before checking G's: an odd length means G's entry was the bad one
    const who = this.lossHistory.length % 2 === 0 ? 'discriminator' : 'generator';
    this.lossHistory.length = 2 * this.step;
    this.optimizerD.step = this.step;
    this.dState.step = this.step;
    return new NonFiniteError(`GAN ${who}: ${e.message}`);
  }

  /** One step on `batch` (disposed here), both players' results read back. */
  async trainStep(batch: Batch): Promise<GanStepResult> {
    this.queueStep(batch);
    const r = await this.flush();
    return pairUp(r[r.length - 2], r[r.length - 1]);
  }

  /** D's losses, one per step read so far. */
  dLosses(): number[] {
    return this.lossHistory.filter((_, i) => i % 2 === 0);
  }

  /** G's losses, one per step read so far. */
  gLosses(): number[] {
    return this.lossHistory.filter((_, i) => i % 2 === 1);
  }

  /** Mean G loss over the last `n` steps. */
  override recentLoss(n = 100): number {
    return meanOfLast(this.gLosses(), n);
  }

  /** Mean D loss over the last `n` steps. */
  recentDLoss(n = 100): number {
    return meanOfLast(this.dLosses(), n);
  }

  /**
   * Train from the current step to opts.until (default config.steps), as Trainer.fit; onStep and the progress bar see
   * each step once, with both players' losses.
   */
  async fit(source: BatchSource, opts: GanFitOptions = {}): Promise<void> {
    const until = opts.until ?? this.config.steps;
    const bar = opts.progress
      ? progressBar({ total: until, initial: Math.min(this.step, until), label: typeof opts.progress === 'string' ? opts.progress : 'GAN' })
      : undefined;
    let held: ProgressEvent | undefined; // D's half of a step, until G's arrives
    const onStep = bar || opts.onStep ? (e: ProgressEvent) => {
      if (!held) {
        held = e;
        return;
      }
      const ev: GanProgressEvent = { ...e, d: { loss: held.loss, gradNorm: held.gradNorm, lr: held.lr } };
      held = undefined;
      opts.onStep?.(ev);
      bar?.update(ev.step + 1, { g: ev.loss, d: ev.d.loss, gAvg100: this.recentLoss(), dAvg100: this.recentDLoss() });
    } : undefined;
    // two queue entries per step: read every readEvery steps, as the other trainers
    try {
      await this.runLoop(new FitLoop(this, { ...opts, progress: false, onStep, readEvery: 2 * (opts.readEvery ?? 20) }), source);
    } finally {
      bar?.done({ gAvg100: this.recentLoss(), dAvg100: this.recentDLoss() });
    }
  }

  override dispose(): void {
    super.dispose();
    this.optimizerD.dispose();
    this.dState.ema.dispose();
  }
}

function pairUp(d: StepResult, g: StepResult): GanStepResult {
  return { ...g, d: { loss: d.loss, gradNorm: d.gradNorm, lr: d.lr } };
}

export type BaselineTrainer = VaeTrainer | GanTrainer;
