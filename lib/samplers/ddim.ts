/**
 * DDIM (Song et al. 2021, eq. 12), from t to the previous visited step t' (ᾱ' = 1 after the last step):
 *   x_t' = √ᾱ'·x̂0 + √(1 − ᾱ' − σ²)·ε̂ + σ·z,   σ = η·√((1−ᾱ')/(1−ᾱ_t))·√(1 − ᾱ_t/ᾱ')
 * η = 0: deterministic; η = 1: σ² is the DDPM posterior variance and the step equals DDPM's.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors';
import { posteriorCoefficients, type NoiseSchedule } from '../schedule';
import type { PredictionType } from '../param';
import { requirePredictionType, runSampler, type SamplerRun } from './loop';
import { BaseScheduler, type SchedulerConfig } from './scheduler';
import type { SampleResult, SamplerModel, SamplerOptions, Scheduler, StepOutput } from './types';

export interface DDIMConfig extends SchedulerConfig {
  /** Stochasticity η ∈ [0, 1] (default 0). */
  eta?: number;
}

export class DDIMScheduler extends BaseScheduler implements Scheduler {
  readonly eta: number;

  constructor(schedule: NoiseSchedule, config: DDIMConfig = {}) {
    super(schedule, config);
    const eta = config.eta ?? 0;
    if (!(eta >= 0 && eta <= 1)) throw new InvalidArgumentError(`DDIM eta must lie in [0, 1], got ${eta}`);
    this.eta = eta;
  }

  /** σ of the step from t. */
  sigma(t: number): number {
    const prev = this.prevTimestep(t);
    return this.eta * Math.sqrt(posteriorCoefficients(this.alphaBar(t), this.alphaBar(prev)).variance);
  }

  needsNoise(t: number): boolean {
    return this.sigma(t) > 0;
  }

  step(modelOutput: tf.Tensor, t: number, x: tf.Tensor, noise?: tf.Tensor): StepOutput {
    const abPrev = this.alphaBar(this.prevTimestep(t));
    const sigma = this.sigma(t);
    const dirCoef = Math.sqrt(Math.max(0, 1 - abPrev - sigma * sigma)); // rounding can make it −1e-17
    return tf.tidy(() => {
      const { eps, x0 } = this.predict(modelOutput, t, x);
      let prevSample = tf.add(tf.mul(x0, Math.sqrt(abPrev)), tf.mul(eps, dirCoef));
      if (sigma > 0) prevSample = tf.add(prevSample, tf.mul(noise ?? tf.randomNormal(x.shape), sigma));
      return { prevSample, predX0: x0 };
    });
  }
}

export interface DDIMSampleOptions extends SamplerOptions, DDIMConfig {
  predictionType: PredictionType;
  /** Number of steps ≤ T (default 50, or T if smaller). */
  steps?: number;
  /** Explicit strictly descending timesteps (overrides steps/spacing). */
  timesteps?: number[];
}

function makeRun(model: SamplerModel, shape: number[], schedule: NoiseSchedule, opts: DDIMSampleOptions): SamplerRun {
  requirePredictionType(opts);
  const scheduler = new DDIMScheduler(schedule, opts).setTimesteps(opts.timesteps ?? opts.steps ?? Math.min(50, schedule.T));
  return { model, scheduler, shape, opts };
}

/** DDIM sampling of `shape` from N(0, I) (or opts.initialNoise); async as ddpmSample. */
export async function ddimSample(model: SamplerModel, shape: number[], schedule: NoiseSchedule, opts: DDIMSampleOptions): Promise<SampleResult> {
  return runSampler(makeRun(model, shape, schedule, opts));
}
