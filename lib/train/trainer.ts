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
import { checkLossWeighting, diffusionLoss, type LossWeighting } from '../losses';
import type { DiffusionModel } from '../models/types';
import type { Denoiser } from '../param';
import { makeRng } from '../random';
import type { NoiseSchedule } from '../schedule';
import { progressBar } from '../viz/progress';
import { Adam, ControlMasks, gradientControl, scheduledLr } from './adam';
import { Ema } from './ema';

export interface TrainConfig {
  /** Total optimizer steps of the run. */
  steps: number;
  batchSize: number;
  /** Peak learning rate, reached after warmupSteps. */
  lr: number;
  warmupSteps: number;
  /** Cosine cool-down of the lr to 0 over this fraction of the steps, at the end (scheduledLr; absent or 0: constant). */
  decayFraction?: number;
  /** Maximum global gradient norm (Infinity: no clipping). */
  gradClip: number;
  /** EMA decay ceiling; the warm-up min(decay, (1+n)/(10+n)) applies below it. */
  emaDecay: number;
  /** Probability of replacing a label by the null class (conditional models only). */
  classDropout: number;
  seed: number;
  /** Write a checkpoint every this many steps (0: only at the end). */
  checkpointEvery: number;
  /** Per-timestep loss weight (lib/losses.ts): absent or 'none' = plain MSE of the prediction type; { minSnrGamma } = Min-SNR-γ. */
  lossWeighting?: LossWeighting;
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
  if (c.decayFraction !== undefined && !(c.decayFraction >= 0 && c.decayFraction <= 1)) {
    bad(`decayFraction must be a number in [0, 1], got ${c.decayFraction}`);
  }
  if (!(c.gradClip > 0)) bad(`gradClip must be > 0 (Infinity for none), got ${c.gradClip}`);
  if (!(c.emaDecay >= 0 && c.emaDecay < 1)) bad(`emaDecay must be in [0, 1), got ${c.emaDecay}`);
  if (!(c.classDropout >= 0 && c.classDropout <= 1)) bad(`classDropout must be in [0, 1], got ${c.classDropout}`);
  if (!Number.isInteger(c.seed)) bad(`seed must be an integer, got ${c.seed}`);
  if (!(Number.isInteger(c.checkpointEvery) && c.checkpointEvery >= 0)) bad(`checkpointEvery must be an integer ≥ 0, got ${c.checkpointEvery}`);
  if (c.lossWeighting !== undefined) checkLossWeighting(c.lossWeighting, 'train config: lossWeighting');
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
  const classes = numClasses > 0 ? dropClasses(batch.y, b, numClasses, config.classDropout, stepSeed(config.seed, step, 3)) : undefined;
  return { x0: batch.x.clone(), noise, t, classes, dropoutSeed: stepSeed(config.seed, step, 4) };
}

/**
 * Class dropout: each of the b labels becomes the null class `numClasses` with probability p (all of them when `labels`
 * is absent). Which labels drop is drawn on the JS side with `seed` (one draw per example, whatever its label), the
 * replacement happens on the device: the labels themselves are never read back. Shared by every trainer in lib/train.
 */
export function dropClasses(labels: tf.Tensor1D | undefined, b: number, numClasses: number, p: number, seed: number): tf.Tensor1D {
  const rng = makeRng(seed);
  const drop = Array.from({ length: b }, () => rng() < p);
  return tf.tidy(() => {
    const nullClass = tf.fill([b], numClasses, 'int32');
    if (!labels) return nullClass as tf.Tensor1D;
    return tf.where(tf.tensor1d(drop, 'bool'), nullClass, tf.cast(labels, 'int32')) as tf.Tensor1D;
  });
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
  /** Called for every step, in order, once its loss has been read back (reads come in batches: see readEvery). */
  onStep?: (e: ProgressEvent) => void;
  /**
   * Called with the step number when a checkpoint is due (every config.checkpointEvery steps and at the end), after
   * every step so far was read back and found finite; awaited.
   */
  onCheckpoint?: (step: number) => void | Promise<void>;
  /** Checked after each step: true ends the run early (a checkpoint is then due at once), e.g. a wall-time budget. */
  shouldStop?: () => boolean;
  /** Draw a lib/viz progress bar (loss, mean of the last 100 losses, it/s, ETA); a string is its label. */
  progress?: boolean | string;
  /**
   * Read the queued losses and gradient norms back every this many steps (default 20; also at checkpoints, at a stop,
   * at the end, and at least once a second while a progress bar or onStep shows them). Between reads the device runs
   * ahead; a non-finite step is still caught exactly (see readSteps).
   */
  readEvery?: number;
}

/** A queued step: its number, learning rate, loss and control tensor ([norm, scale, ok], gradientControl's). */
export interface PendingStep { step: number; lr: number; loss: tf.Scalar; control: tf.Tensor1D }

/**
 * The steps applied on the device whose loss and gradient norm have not been read back yet, and the sticky on-device
 * flag "every step so far was finite" that masks Adam's and the EMA's updates (so a bad step, and every step after it,
 * changes nothing until the next read finds it). The flag is the `ok` of the latest step's control tensor: the next
 * step's gradientControl takes that tensor as `previous` (no extra op, no read).
 */
export class PendingSteps {
  private last: tf.Tensor1D;
  private entries: PendingStep[] = [];

  constructor() {
    this.last = PendingSteps.allOk();
  }

  /** A control tensor that says "ok" (norm 0, scale 1, ok 1): the flag before the first step, and after a rollback. */
  private static allOk(): tf.Tensor1D {
    return tf.tensor1d([0, 1, 1], 'float32');
  }

  /** The latest control tensor (its element 2 is the sticky flag): pass it to gradientControl as `previous`. */
  get previous(): tf.Tensor1D {
    return this.last;
  }

  get size(): number {
    return this.entries.length;
  }

  /** Queue step `step`'s loss and control tensor (owned here from now on; the control becomes the flag). */
  push(step: number, lr: number, loss: tf.Scalar, control: tf.Tensor1D): void {
    this.entries.push({ step, lr, loss, control });
    this.last.dispose();
    this.last = tf.keep(control.clone()); // a clone shares the data: no copy, no kernel
  }

  /** Hands over every queued entry (the caller disposes their tensors). */
  take(): PendingStep[] {
    const out = this.entries;
    this.entries = [];
    return out;
  }

  /** After a rollback: accept steps again. */
  reset(): void {
    this.last.dispose();
    this.last = PendingSteps.allOk();
  }

  dispose(): void {
    tf.dispose([this.last, ...this.take().flatMap((e) => [e.loss, e.control])]);
  }
}

/**
 * What one optimizer step updates besides the weights: the state shared by lib/train's Trainer and lib/parallel's
 * ParallelCourseTrainer (which differ only in where the gradients come from).
 */
export interface StepState {
  readonly config: TrainConfig;
  readonly optimizer: Adam;
  readonly ema: Ema;
  /** Every step's loss up to the last read (see readSteps). */
  readonly lossHistory: number[];
  /** Steps applied so far (= the index of the next step); applyStepGradients advances it. */
  step: number;
  readonly pending: PendingSteps;
}

/**
 * The tail of a training step, given the batch's mean `loss` and its gradients `grads` (in the order of the optimizer's
 * variables; both disposed here in every case): gradientControl (global norm, clip scale, and ok = the loss and the
 * norm are finite and every step before was), the scheduled learning rate (scheduledLr), Adam (clip scale applied
 * inside), EMA, step + 1 — and nothing read back. The control tensor masks the Adam and EMA updates: from a non-finite step on, no weight,
 * moment or EMA value changes. On webgpu that is ⌈N/7⌉ + 1 dispatches for the control and one per tensor for each of
 * Adam and the EMA. readSteps later reads the step's loss and norm, and throws for the bad step after rolling back.
 */
export function applyStepGradients(state: StepState, grads: tf.Tensor[], loss: tf.Scalar): void {
  const { config, pending } = state;
  const lr = scheduledLr(state.step, config);
  try {
    tf.tidy(() => {
      const control = gradientControl(grads, config.gradClip, { previous: pending.previous, loss });
      // one set of masks for Adam and the EMA (composite path; the webgpu kernels read the control tensor itself)
      const masks = new ControlMasks(control);
      try {
        state.optimizer.apply(grads, lr, masks);
        state.ema.update(masks);
      } finally {
        masks.dispose();
      }
      pending.push(state.step, lr, tf.keep(loss.clone()), tf.keep(control));
    });
  } finally {
    tf.dispose([...grads, loss]);
  }
  state.step += 1;
}

/**
 * Reads every queued step's loss and gradient norm back (one awaited read), appends the losses to lossHistory and calls
 * `onResult` for each step in order. If a step was non-finite, the state is rolled back to just before it — the masked
 * updates left weights, moments and EMA there already; step counters return to it and the flag is reset — and
 * NonFiniteError names that step.
 */
export async function readSteps(state: StepState, onResult?: (r: StepResult) => void): Promise<StepResult[]> {
  const entries = state.pending.take();
  if (entries.length === 0) return [];
  // [loss, norm, scale, ok] per step, in one read
  const all = tf.tidy(() => tf.concat(entries.flatMap((e) => [tf.reshape(e.loss, [1]), e.control])));
  tf.dispose(entries.flatMap((e) => [e.loss, e.control]));
  let data: Float32Array;
  try {
    data = (await all.data()) as Float32Array;
  } finally {
    all.dispose();
  }
  const results: StepResult[] = [];
  entries.forEach(({ step, lr }, i) => {
    const loss = data[4 * i];
    const gradNorm = data[4 * i + 1];
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      rollBack(state, step);
      const what = Number.isFinite(loss) ? `gradient norm is ${gradNorm}` : `training loss is ${loss}`;
      throw new NonFiniteError(`${what} at step ${step}: stopping (weights, Adam moments and EMA are those of the last good step; try a lower lr or gradClip)`);
    }
    state.lossHistory.push(loss);
    const r = { step, loss, gradNorm, lr };
    results.push(r);
    onResult?.(r);
  });
  return results;
}

/** Undo the counters of steps `step` … state.step − 1 (their updates were masked on the device: nothing else changed). */
function rollBack(state: StepState, step: number): void {
  const n = state.step - step;
  state.optimizer.step -= n;
  state.ema.updates -= n;
  state.step = step;
  state.pending.reset();
}

/** Mean of the last `n` losses (NaN before the first). */
export function meanOfLast(history: readonly number[], n: number): number {
  const h = history.slice(-n);
  return h.length ? h.reduce((s, v) => s + v, 0) / h.length : NaN;
}

/** Lets the event loop run (a notebook's live display, timers) between steps. */
export function nextTick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The bookkeeping of a fit loop around any step function (Trainer.fit, ParallelCourseTrainer.fit): batched reads,
 * progress bar, progress events, due checkpoints, early stop.
 *   const loop = new FitLoop(state, opts); while (loop.running()) { queue a step; if (await loop.after()) break; } await loop.done();
 */
export class FitLoop {
  private readonly until: number;
  private readonly start: number;
  private readonly readEvery: number;
  private readonly t0 = Date.now();
  private lastRead = Date.now();
  private readonly bar?: ReturnType<typeof progressBar>;

  constructor(private readonly state: StepState, private readonly opts: FitOptions) {
    this.until = opts.until ?? state.config.steps;
    this.start = state.step;
    this.readEvery = opts.readEvery ?? 20;
    if (!(Number.isInteger(this.readEvery) && this.readEvery > 0)) {
      throw new InvalidArgumentError(`readEvery must be a positive integer, got ${opts.readEvery}`);
    }
    this.bar = opts.progress
      ? progressBar({ total: this.until, initial: Math.min(state.step, this.until), label: typeof opts.progress === 'string' ? opts.progress : 'train' })
      : undefined;
  }

  /** True while steps remain before `until`. */
  running(): boolean {
    return this.state.step < this.until;
  }

  /**
   * Call after each queued step: reads the queued steps back when due (reporting them), then takes a due checkpoint.
   * Returns true when the run should end now (its checkpoint has been taken).
   */
  async after(): Promise<boolean> {
    const { state, opts, until } = this;
    const stop = opts.shouldStop?.() ?? false;
    const every = state.config.checkpointEvery;
    const checkpoint = opts.onCheckpoint !== undefined && ((every > 0 && state.step % every === 0) || state.step === until || stop);
    const watched = this.bar !== undefined || opts.onStep !== undefined;
    if (checkpoint || stop || state.step >= until || state.pending.size >= this.readEvery || (watched && Date.now() - this.lastRead >= 1000)) {
      await this.read();
    }
    if (checkpoint) await opts.onCheckpoint!(state.step);
    return stop;
  }

  private async read(): Promise<void> {
    const { state, opts, until } = this;
    let last: StepResult | undefined;
    await readSteps(state, (r) => {
      last = r;
      if (!opts.onStep) return;
      const done = r.step + 1 - this.start;
      const sec = (Date.now() - this.t0) / 1000;
      const stepsPerSec = sec > 0 ? done / sec : 0;
      opts.onStep({ ...r, total: until, stepsPerSec, etaSec: stepsPerSec > 0 ? (until - r.step - 1) / stepsPerSec : Infinity });
    });
    this.lastRead = Date.now();
    if (last) this.bar?.update(last.step + 1, { loss: last.loss, avg100: meanOfLast(state.lossHistory, 100) });
  }

  /** Reads what is still queued and closes the progress bar. */
  async done(): Promise<void> {
    await this.read();
    this.bar?.done({ avg100: meanOfLast(this.state.lossHistory, 100) });
  }
}

export class Trainer implements StepState {
  readonly optimizer: Adam;
  readonly ema: Ema;
  readonly lossHistory: number[] = [];
  readonly pending = new PendingSteps();
  /** Steps applied so far (= the index of the next step). */
  step = 0;

  constructor(readonly model: DiffusionModel, readonly schedule: NoiseSchedule, readonly config: TrainConfig) {
    validateTrainConfig(config);
    const vars = model.params.variables();
    this.optimizer = new Adam(vars);
    this.ema = new Ema(vars, config.emaDecay);
  }

  /**
   * Applies one step on `batch` (disposed here) on the device and reads nothing back: its loss and gradient norm are
   * queued for the next readSteps (fit reads them in batches). A non-finite step changes no weight, moment or EMA value.
   */
  queueStep(batch: Batch): void {
    const vars = this.model.params.variables();
    const inputs = drawStepInputs(batch, this.schedule, this.model.numClasses, this.config, this.step);
    tf.dispose([batch.x, batch.y]);
    const { value, grads } = tf.variableGrads(() => stepLoss(this.model, this.schedule, inputs, this.config.lossWeighting), vars);
    tf.dispose([inputs.x0, inputs.noise, inputs.t, inputs.classes]);
    const ordered = vars.map((v) => grads[v.name]);
    const missing = this.model.params.names().filter((_, i) => ordered[i] === undefined);
    if (missing.length > 0) {
      tf.dispose([value, ...Object.values(grads)]);
      throw new InvalidArgumentError(`no gradient reaches parameter(s) ${missing.join(', ')}: every parameter must affect the loss`);
    }
    applyStepGradients(this, ordered, value);
  }

  /**
   * One step on `batch` (disposed here) and its loss, read back (with any steps still queued). A non-finite loss or
   * gradient throws NonFiniteError naming the step, with weights, moments and EMA those before it.
   */
  async trainStep(batch: Batch): Promise<StepResult> {
    this.queueStep(batch);
    const results = await readSteps(this);
    return results[results.length - 1];
  }

  /**
   * Train from the current step to `until` (default config.steps), calling back for progress and checkpoints. Losses are
   * read back in batches (opts.readEvery); it yields to the event loop after every step, so that a notebook's live
   * progress display (and any timer) updates while training runs.
   */
  async fit(source: BatchSource, opts: FitOptions = {}): Promise<void> {
    const loop = new FitLoop(this, opts);
    while (loop.running()) {
      this.queueStep(source(this.step));
      if (await loop.after()) break;
      await nextTick();
    }
    await loop.done();
  }

  /** Mean loss over the last `n` read steps (NaN before the first). */
  recentLoss(n = 100): number {
    return meanOfLast(this.lossHistory, n);
  }

  /** EMA weights by parameter name (what sampling should use), read back. */
  async emaWeights(): Promise<Map<string, Float32Array>> {
    const names = this.model.params.names();
    const values = await this.ema.values();
    return new Map(names.map((n, i) => [n, values[i]]));
  }

  dispose(): void {
    this.optimizer.dispose();
    this.ema.dispose();
    this.pending.dispose();
  }
}
