/**
 * Shared types of the samplers. Timesteps follow lib/schedule.ts: int32 in [0, T), T−1 the noisiest.
 */
import type * as tf from '@tensorflow/tfjs';
import type { PredictionType } from '../param';

export type { Denoiser, ScoreModel } from '../param';
import type { Denoiser } from '../param';

/**
 * A denoiser whose output arrives later, e.g. lib/parallel's parallelDenoiser (the model split over worker threads).
 * The samplers await it; it owns (and disposes) its own intermediate tensors. Mark one with asyncDenoiser().
 */
export interface AsyncDenoiser {
  (x: tf.Tensor, t: tf.Tensor1D, classes?: tf.Tensor1D): Promise<tf.Tensor>;
  readonly async: true;
}

/** What the samplers accept: a Denoiser (builds its output synchronously) or an AsyncDenoiser. */
export type SamplerModel = Denoiser | AsyncDenoiser;

/** Marks `f` as an AsyncDenoiser. */
export function asyncDenoiser(f: (x: tf.Tensor, t: tf.Tensor1D, classes?: tf.Tensor1D) => Promise<tf.Tensor>): AsyncDenoiser {
  return Object.assign(f, { async: true as const });
}

export function isAsyncDenoiser(m: SamplerModel): m is AsyncDenoiser {
  return (m as Partial<AsyncDenoiser>).async === true;
}

/** Reported after each sampler step: `step` of `total` done; `t` the timestep the model was just called at. */
export interface Progress {
  step: number;
  total: number;
  t: number;
  /**
   * Model calls so far and in the whole run (set by the scheduler loop; Heun calls the model twice in most steps, so
   * calls ≠ steps). A guided call evaluates the network once on the doubled batch and counts as one call.
   */
  calls?: number;
  totalCalls?: number;
}

/**
 * Classifier-free guidance: out = out_u + weight·(out_c − out_u) (weight 1 = plain conditional, 0 = unconditional,
 * > 1 = guided). Ho & Salimans write (1+w)·ε_c − w·ε_u: their w is weight − 1 here.
 */
export interface GuidanceOptions {
  weight: number;
  /** One class per example ([B]). */
  classes: number[] | tf.Tensor1D;
  /** The label the model was trained with for "no class" (CONTRIBUTING: numClasses = 10). */
  nullClass?: number;
}

export interface SamplerOptions {
  /** Reproducible from a seed; without one a random seed is drawn and reported in the result. */
  seed?: number;
  onStep?: (progress: Progress) => void;
  /** true: about 10 evenly spaced snapshots; k: every k-th step. The start and the end are always included. */
  returnTrajectory?: boolean | number;
  /** Clip the predicted x0 to [−c, c] (true: c = 1, the data range of images) before the update. */
  clipX0?: boolean | number;
  /**
   * What the model predicts — required, never defaulted: sampling a v- or x0-model as if it predicted ε gives speckled,
   * half-formed samples without any error (pass `model.predictionType`).
   */
  predictionType: PredictionType;
  /** Class labels [B] for a conditional model without guidance. */
  classes?: number[] | tf.Tensor1D;
  guidance?: GuidanceOptions;
  /** Start from this x_T instead of seeded N(0, I) noise (not disposed; shape must equal `shape`). */
  initialNoise?: tf.Tensor;
  /**
   * Check every model output and new x for NaN/±Infinity (default true). The check is counted on the device and read
   * back every `checkEvery` steps and at the end; an error names the first bad step.
   */
  checkFinite?: boolean;
  /** Steps between two reads of the finite check (default 25). */
  checkEvery?: number;
}

export interface TrajectoryPoint {
  /** Steps done so far (0 = the initial noise). */
  step: number;
  /** The timestep x is at: the next model call's t, or −1 for the final sample. */
  t: number;
  x: tf.Tensor;
  /** The x0 predicted at the step that produced x (absent for the initial noise). */
  predX0?: tf.Tensor;
}

export interface SampleResult {
  sample: tf.Tensor;
  /** Empty unless returnTrajectory was set. Its tensors belong to the caller: see disposeResult. */
  trajectory: TrajectoryPoint[];
  /** The seed actually used (reuse it to reproduce the run). */
  seed: number;
  /** The timesteps visited, in order (descending); fractional for the Karras-σ samplers (see karras.ts). */
  timesteps: number[];
  /** Model calls made (set by the scheduler loop): = steps, except Heun's 2·steps − 1. */
  modelCalls?: number;
}

/** One reverse step's result (the diffusers shape). */
export type StepOutput = {
  prevSample: tf.Tensor;
  predX0: tf.Tensor;
};

/** A configured reverse-process stepper (DDPM, DDIM, DPM-Solver++, Euler, Heun …). */
export interface Scheduler {
  /** The model timesteps, one per step; a non-integer one is passed to the model as float32 (Karras σ samplers). */
  readonly timesteps: readonly number[];
  /** Whether step(…, t, …) uses fresh noise. */
  needsNoise(t: number): boolean;
  step(modelOutput: tf.Tensor, t: number, x: tf.Tensor, noise?: tf.Tensor): StepOutput;
  /**
   * Second-order correctors (Heun): the timestep of a second model evaluation in the step from t, at step()'s
   * prevSample (the predictor); undefined for none. The loop then calls correct() with that output.
   */
  correctionTimestep?(t: number): number | undefined;
  /** The corrected step from t, given step()'s result `first` and the model's output at (first.prevSample, correctionTimestep(t)). */
  correct?(correctionOutput: tf.Tensor, t: number, x: tf.Tensor, first: StepOutput): StepOutput;
  /** Multistep schedulers: forget (and dispose) the history of earlier steps; the loop calls it when a run stops early. */
  reset?(): void;
}

/** Disposes a result's sample and every trajectory tensor (each once, even when shared). */
export function disposeResult(result: SampleResult): void {
  const seen = new Set<tf.Tensor>([result.sample]);
  for (const p of result.trajectory) {
    seen.add(p.x);
    if (p.predX0) seen.add(p.predX0);
  }
  for (const t of seen) t.dispose();
}
