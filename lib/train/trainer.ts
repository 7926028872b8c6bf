/**
 * The training loop: Adam with linear LR warm-up, gradient clipping by global norm, EMA of the weights with warm-up,
 * class dropout to the null class (so one model also predicts unconditionally, for classifier-free guidance),
 * loss history, progress events, periodic atomic checkpoints.
 *
 * Reproducible and resumable: everything random in step n (timesteps, noise, dropped labels, dropout masks) is drawn
 * from seeds derived from (config.seed, n), and the data source is a function of n; a run resumed from a checkpoint at
 * step n therefore computes exactly the steps an uninterrupted run would.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, NonFiniteError } from '../errors';
import { diffusionLoss, type LossWeighting } from '../losses';
import type { DiffusionModel } from '../models/types';
import type { Denoiser } from '../param';
import { makeRng } from '../random';
import type { NoiseSchedule } from '../schedule';
import { progressBar } from '../viz/progress';
import { Adam, clipByGlobalNorm, warmupLr } from './adam';
import { Ema } from './ema';

export interface TrainConfig {
  /** Total optimizer steps of the run. */
  steps: number;
  batchSize: number;
  /** Peak learning rate, reached after warmupSteps. */
  lr: number;
  warmupSteps: number;
  /** Maximum global gradient norm (Infinity: no clipping). */
  gradClip: number;
  /** EMA decay ceiling; the warm-up min(decay, (1+n)/(10+n)) applies below it. */
  emaDecay: number;
  /** Probability of replacing a label by the null class (conditional models only). */
  classDropout: number;
  seed: number;
  /** Write a checkpoint every this many steps (0: only at the end). */
  checkpointEvery: number;
}

export const DEFAULT_TRAIN: TrainConfig = {
  steps: 1000, batchSize: 64, lr: 1e-3, warmupSteps: 100, gradClip: 1, emaDecay: 0.999, classDropout: 0.1, seed: 0,
  checkpointEvery: 200,
};

export function validateTrainConfig(c: TrainConfig): void {
  const bad = (msg: string) => { throw new InvalidArgumentError(`train config: ${msg}`); };
  if (!(Number.isInteger(c.steps) && c.steps >= 0)) bad(`steps must be an integer ≥ 0, got ${c.steps}`);
  if (!(Number.isInteger(c.batchSize) && c.batchSize > 0)) bad(`batchSize must be a positive integer, got ${c.batchSize}`);
  if (!(c.lr > 0 && Number.isFinite(c.lr))) bad(`lr must be a positive number, got ${c.lr}`);
  if (!(Number.isInteger(c.warmupSteps) && c.warmupSteps >= 0)) bad(`warmupSteps must be an integer ≥ 0, got ${c.warmupSteps}`);
  if (!(c.gradClip > 0)) bad(`gradClip must be > 0 (Infinity for none), got ${c.gradClip}`);
  if (!(c.emaDecay >= 0 && c.emaDecay < 1)) bad(`emaDecay must be in [0, 1), got ${c.emaDecay}`);
  if (!(c.classDropout >= 0 && c.classDropout <= 1)) bad(`classDropout must be in [0, 1], got ${c.classDropout}`);
  if (!Number.isInteger(c.seed)) bad(`seed must be an integer, got ${c.seed}`);
  if (!(Number.isInteger(c.checkpointEvery) && c.checkpointEvery >= 0)) bad(`checkpointEvery must be an integer ≥ 0, got ${c.checkpointEvery}`);
}

/** A 32-bit seed for random stream `stream` of step `step` (a hash, so nearby steps get unrelated seeds). */
export function stepSeed(seed: number, step: number, stream: number): number {
  let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (step >>> 0) ^ (h >>> 13), 0xc2b2ae35);
  h = Math.imul(h ^ (stream + 0x27d4eb2f) ^ (h >>> 16), 0x165667b1);
  return (h ^ (h >>> 15)) >>> 0;
}

/** One batch of data: x in the model's input shape, optional labels. The trainer disposes it. */
export interface Batch { x: tf.Tensor; y?: tf.Tensor1D }
/** The batch for global step n; must be deterministic in n for resumption to be exact. */
export type BatchSource = (step: number) => Batch;

/** Everything random that the loss of one step needs, drawn beforehand so the loss itself is deterministic. */
export interface StepInputs {
  x0: tf.Tensor;
  noise: tf.Tensor;
  t: tf.Tensor1D;
  /** Labels after class dropout (null class = numClasses); absent for unconditional models. */
  classes?: tf.Tensor1D;
  /** Seed for dropout masks inside the model. */
  dropoutSeed: number;
}

export function drawStepInputs(
  batch: Batch, schedule: NoiseSchedule, numClasses: number, config: Pick<TrainConfig, 'seed' | 'classDropout'>, step: number,
): StepInputs {
  const b = batch.x.shape[0];
  const t = schedule.sampleTimesteps(b, stepSeed(config.seed, step, 1));
  const noise = tf.randomNormal(batch.x.shape, 0, 1, 'float32', stepSeed(config.seed, step, 2));
  let classes: tf.Tensor1D | undefined;
  if (numClasses > 0) {
    const labels = batch.y ? Array.from(batch.y.dataSync()) : new Array<number>(b).fill(numClasses);
    const rng = makeRng(stepSeed(config.seed, step, 3));
    classes = tf.tensor1d(labels.map((l) => (rng() < config.classDropout ? numClasses : l)), 'int32');
  }
  return { x0: batch.x.clone(), noise, t, classes, dropoutSeed: stepSeed(config.seed, step, 4) };
}

/**
 * The loss of one step on pre-drawn inputs (lib/losses.ts's diffusionLoss with fixed t, noise and labels): the MSE
 * between the model's output at x_t and the target of its prediction type (ε, x0 or v). Deterministic given `inputs`.
 */
export function stepLoss(model: DiffusionModel, schedule: NoiseSchedule, inputs: StepInputs, weighting: LossWeighting = 'none'): tf.Scalar {
  const denoiser: Denoiser = (x, t, classes) => model.apply(x, t, classes, { training: true, seed: inputs.dropoutSeed });
  return diffusionLoss(denoiser, inputs.x0, schedule, {
    predictionType: model.predictionType, t: inputs.t, noise: inputs.noise, classes: inputs.classes, weighting,
  });
}

export interface StepResult { step: number; loss: number; gradNorm: number; lr: number }

export interface ProgressEvent extends StepResult {
  total: number;
  /** Steps per second over this call to fit. */
  stepsPerSec: number;
  etaSec: number;
}

export interface FitOptions {
  /** Stop after this step (default config.steps). */
  until?: number;
  onStep?: (e: ProgressEvent) => void;
  /** Called with the step number when a checkpoint is due (every config.checkpointEvery steps and at the end). */
  onCheckpoint?: (step: number) => void;
  /** Checked after each step: true ends the run early (a checkpoint is then due at once), e.g. a wall-time budget. */
  shouldStop?: () => boolean;
  /** Draw a lib/viz progress bar (loss, mean of the last 100 losses, it/s, ETA); a string is its label. */
  progress?: boolean | string;
}

/**
 * What one optimizer step updates besides the weights: the state shared by lib/train's Trainer and lib/parallel's
 * ParallelCourseTrainer (which differ only in where the gradients come from).
 */
export interface StepState {
  readonly config: TrainConfig;
  readonly optimizer: Adam;
  readonly ema: Ema;
  readonly lossHistory: number[];
  /** Steps completed so far (= the index of the next step); applyStepGradients advances it. */
  step: number;
}

/**
 * The tail of a training step, given the batch's mean `loss` and its gradients `grads` (in the order of the optimizer's
 * variables; disposed here in every case): NaN guard on the loss, clipping by global norm, NaN guard on the norm,
 * warm-up learning rate, Adam, EMA, loss history, step + 1. A non-finite loss or norm throws NonFiniteError before any
 * weight, moment or EMA changes, so the last good state (and checkpoint) survives.
 */
export function applyStepGradients(state: StepState, grads: tf.Tensor[], loss: number): StepResult {
  const { config } = state;
  if (!Number.isFinite(loss)) {
    tf.dispose(grads);
    throw new NonFiniteError(`training loss is ${loss} at step ${state.step}: stopping (weights and checkpoints keep the last good step; try a lower lr or gradClip)`);
  }
  const clipped = clipByGlobalNorm(grads, config.gradClip);
  tf.dispose(grads);
  if (!Number.isFinite(clipped.norm)) {
    tf.dispose(clipped.grads);
    throw new NonFiniteError(`gradient norm is ${clipped.norm} at step ${state.step}: stopping (weights keep the last good step)`);
  }
  const lr = warmupLr(state.step, config.lr, config.warmupSteps);
  state.optimizer.apply(clipped.grads, lr);
  tf.dispose(clipped.grads);
  state.ema.update();
  state.lossHistory.push(loss);
  const result = { step: state.step, loss, gradNorm: clipped.norm, lr };
  state.step += 1;
  return result;
}

/** Mean of the last `n` losses (NaN before the first). */
export function meanOfLast(history: readonly number[], n: number): number {
  const h = history.slice(-n);
  return h.length ? h.reduce((s, v) => s + v, 0) / h.length : NaN;
}

/**
 * The bookkeeping of a fit loop around any step function, sync or async (Trainer.fit / fitAsync,
 * ParallelCourseTrainer.fit): progress bar, progress events, due checkpoints, early stop.
 *   const loop = new FitLoop(state, opts); while (loop.running()) { if (loop.after(step())) break; } loop.done();
 */
export class FitLoop {
  private readonly until: number;
  private readonly start: number;
  private readonly t0 = Date.now();
  private readonly bar?: ReturnType<typeof progressBar>;

  constructor(private readonly state: StepState, private readonly opts: FitOptions) {
    this.until = opts.until ?? state.config.steps;
    this.start = state.step;
    this.bar = opts.progress
      ? progressBar({ total: this.until, label: typeof opts.progress === 'string' ? opts.progress : 'train' })
      : undefined;
  }

  /** True while steps remain before `until`. */
  running(): boolean {
    return this.state.step < this.until;
  }

  /** Report step `r` (already applied); returns true when the run should end now (its checkpoint has been taken). */
  after(r: StepResult): boolean {
    const { state, opts, until } = this;
    const done = state.step - this.start;
    const sec = (Date.now() - this.t0) / 1000;
    const stepsPerSec = sec > 0 ? done / sec : 0;
    this.bar?.update(state.step, { loss: r.loss, avg100: meanOfLast(state.lossHistory, 100) });
    opts.onStep?.({ ...r, total: until, stepsPerSec, etaSec: stepsPerSec > 0 ? (until - state.step) / stepsPerSec : Infinity });
    const stop = opts.shouldStop?.() ?? false;
    const every = state.config.checkpointEvery;
    if (opts.onCheckpoint && ((every > 0 && state.step % every === 0) || state.step === until || stop)) opts.onCheckpoint(state.step);
    return stop;
  }

  done(): void {
    this.bar?.done({ avg100: meanOfLast(this.state.lossHistory, 100) });
  }
}

export class Trainer implements StepState {
  readonly optimizer: Adam;
  readonly ema: Ema;
  readonly lossHistory: number[] = [];
  /** Steps completed so far (= the index of the next step). */
  step = 0;

  constructor(readonly model: DiffusionModel, readonly schedule: NoiseSchedule, readonly config: TrainConfig) {
    validateTrainConfig(config);
    const vars = model.params.variables();
    this.optimizer = new Adam(vars);
    this.ema = new Ema(vars, config.emaDecay);
  }

  /**
   * One step on `batch` (disposed here). A non-finite loss or gradient throws NonFiniteError before any weight, moment
   * or EMA changes, so the last good state (and checkpoint) survives.
   */
  trainStep(batch: Batch): StepResult {
    const vars = this.model.params.variables();
    const inputs = drawStepInputs(batch, this.schedule, this.model.numClasses, this.config, this.step);
    tf.dispose([batch.x, batch.y]);
    const { value, grads } = tf.variableGrads(() => stepLoss(this.model, this.schedule, inputs), vars);
    tf.dispose([inputs.x0, inputs.noise, inputs.t, inputs.classes]);
    const loss = value.dataSync()[0];
    value.dispose();
    const ordered = vars.map((v) => grads[v.name]);
    const missing = this.model.params.names().filter((_, i) => ordered[i] === undefined);
    if (missing.length > 0) {
      tf.dispose(Object.values(grads));
      throw new InvalidArgumentError(`no gradient reaches parameter(s) ${missing.join(', ')}: every parameter must affect the loss`);
    }
    return applyStepGradients(this, ordered, loss);
  }

  /** Train from the current step to `until` (default config.steps), calling back for progress and checkpoints. */
  fit(source: BatchSource, opts: FitOptions = {}): void {
    const loop = this.steps(source, opts);
    while (!loop.next().done) { /* each iteration is one step */ }
  }

  /**
   * Like fit, but yields to the event loop after every step, so that a notebook's live progress display (and any timer)
   * can update while training runs.
   */
  async fitAsync(source: BatchSource, opts: FitOptions = {}): Promise<void> {
    const loop = this.steps(source, opts);
    while (!loop.next().done) await new Promise((resolve) => setImmediate(resolve));
  }

  /** The loop shared by fit and fitAsync: one step per iteration. */
  private *steps(source: BatchSource, opts: FitOptions): Generator<void> {
    const loop = new FitLoop(this, opts);
    while (loop.running()) {
      const stop = loop.after(this.trainStep(source(this.step)));
      if (stop) break;
      yield;
    }
    loop.done();
  }

  /** Mean loss over the last `n` steps (NaN before the first). */
  recentLoss(n = 100): number {
    return meanOfLast(this.lossHistory, n);
  }

  /** EMA weights by parameter name (what sampling should use). */
  emaWeights(): Map<string, Float32Array> {
    const names = this.model.params.names();
    const values = this.ema.values();
    return new Map(names.map((n, i) => [n, values[i]]));
  }

  dispose(): void {
    this.optimizer.dispose();
    this.ema.dispose();
  }
}
