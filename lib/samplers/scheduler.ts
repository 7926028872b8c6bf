/**
 * What DDPM and DDIM steps share: the configured timesteps, ᾱ at a step (ᾱ = 1 "before" the first step),
 * and turning a model output into (ε̂, x̂0) with optional clipping of x̂0.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors';
import { addNoise, type Timesteps } from '../forward';
import { checkPredictionType, epsilonFromX0, toEpsilonAndX0, type PredictionType } from '../param';
import type { NoiseSchedule } from '../schedule';
import { checkCustomTimesteps, spacedTimesteps, type Spacing } from './timesteps';

export interface SchedulerConfig {
  predictionType?: PredictionType;
  /** Clip x̂0 to [−c, c] (true: c = 1); ε̂ is then recomputed from the clipped x̂0 so the update stays consistent. */
  clipX0?: boolean | number;
  spacing?: Spacing;
}

export function clipRange(clipX0: boolean | number | undefined): number | undefined {
  if (clipX0 === undefined || clipX0 === false) return undefined;
  const c = clipX0 === true ? 1 : clipX0;
  if (!(c > 0) || !Number.isFinite(c)) throw new InvalidArgumentError(`clipX0 must be true, false or a positive number, got ${clipX0}`);
  return c;
}

export abstract class BaseScheduler {
  readonly predictionType: PredictionType;
  readonly clip: number | undefined;
  readonly spacing: Spacing;
  timesteps: number[];

  constructor(readonly schedule: NoiseSchedule, config: SchedulerConfig = {}) {
    this.predictionType = checkPredictionType(config.predictionType ?? 'epsilon');
    this.clip = clipRange(config.clipX0);
    this.spacing = config.spacing ?? 'trailing';
    this.timesteps = spacedTimesteps(schedule.T, schedule.T, this.spacing);
  }

  /** n evenly spaced steps (1 ≤ n ≤ T, spacing from the config or given), or an explicit strictly descending list. */
  setTimesteps(steps: number | readonly number[], spacing: Spacing = this.spacing): this {
    this.timesteps = typeof steps === 'number' ? spacedTimesteps(this.schedule.T, steps, spacing) : checkCustomTimesteps(steps, this.schedule.T);
    return this;
  }

  /** q(x_t | x0) for the training side of the same schedule (lib/forward.ts's addNoise; diffusers' add_noise). */
  addNoise(x0: tf.Tensor, noise: tf.Tensor, t: Timesteps): tf.Tensor {
    return addNoise(x0, noise, t, this.schedule);
  }

  /** The timestep after t in this run, −1 after the last. */
  prevTimestep(t: number): number {
    const i = this.timesteps.indexOf(t);
    if (i < 0) throw new InvalidArgumentError(`timestep ${t} is not among this scheduler's timesteps (${this.describe()})`);
    return i + 1 < this.timesteps.length ? this.timesteps[i + 1] : -1;
  }

  /** ᾱ at a code timestep; ᾱ = 1 at −1 (the clean data). */
  alphaBar(t: number): number {
    return t < 0 ? 1 : this.schedule.alphasCumprod[t];
  }

  /** (ε̂, x̂0) implied by the model output, with x̂0 clipped if configured. */
  predict(modelOutput: tf.Tensor, t: number, x: tf.Tensor): { eps: tf.Tensor; x0: tf.Tensor } {
    return tf.tidy(() => {
      const { eps, x0 } = toEpsilonAndX0(modelOutput, this.predictionType, x, t, this.schedule);
      if (this.clip === undefined) return { eps, x0 };
      const clipped = tf.clipByValue(x0, -this.clip, this.clip);
      return { eps: epsilonFromX0(x, clipped, t, this.schedule), x0: clipped };
    });
  }

  private describe(): string {
    const ts = this.timesteps;
    return ts.length <= 6 ? ts.join(', ') : `${ts.slice(0, 3).join(', ')} … ${ts.slice(-2).join(', ')}`;
  }
}
