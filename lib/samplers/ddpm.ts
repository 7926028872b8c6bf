/**
 * DDPM ancestral sampling (Ho et al. 2020, Algorithm 2):
 *   x_prev = coef1·x̂0 + coef2·x_t + σ·z,  σ² = β̃ ('posterior') or β ('beta'); no noise on the last step.
 * With fewer steps than T the step from t to an earlier t' uses β = 1 − ᾱ_t/ᾱ_t' (diffusers' DDPMScheduler).
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors';
import { posteriorCoefficients, type NoiseSchedule } from '../schedule';
import type { PredictionType } from '../param';
import { requirePredictionType, runSampler, type SamplerRun } from './loop';
import { BaseScheduler, type SchedulerConfig } from './scheduler';
import type { SampleResult, SamplerModel, SamplerOptions, Scheduler, StepOutput } from './types';
import type { Spacing } from './timesteps';

export type DDPMVariance = 'beta' | 'posterior';

export interface DDPMConfig extends SchedulerConfig {
  /** σ² = β̃_t (posterior, default; the lower bound) or β_t (the upper bound); Ho et al. found both similar. */
  variance?: DDPMVariance;
}

export class DDPMScheduler extends BaseScheduler implements Scheduler {
  readonly variance: DDPMVariance;

  constructor(schedule: NoiseSchedule, config: DDPMConfig = {}) {
    super(schedule, config);
    const v = config.variance ?? 'posterior';
    if (v !== 'beta' && v !== 'posterior') throw new InvalidArgumentError(`DDPM variance must be 'beta' or 'posterior', got '${v}'`);
    this.variance = v;
  }

  /** σ² of the step from t (0 on the last step). */
  stepVariance(t: number): number {
    const prev = this.prevTimestep(t);
    if (prev < 0) return 0;
    const p = posteriorCoefficients(this.alphaBar(t), this.alphaBar(prev));
    return this.variance === 'posterior' ? p.variance : p.beta;
  }

  needsNoise(t: number): boolean {
    return this.stepVariance(t) > 0;
  }

  /** One reverse step from x_t. `noise` ~ N(0, I) shaped like x (drawn unseeded if omitted and needed). */
  step(modelOutput: tf.Tensor, t: number, x: tf.Tensor, noise?: tf.Tensor): StepOutput {
    const prev = this.prevTimestep(t);
    const { coef1, coef2 } = posteriorCoefficients(this.alphaBar(t), this.alphaBar(prev));
    const sigma = Math.sqrt(this.stepVariance(t));
    return tf.tidy(() => {
      const { x0 } = this.predict(modelOutput, t, x);
      let prevSample = tf.add(tf.mul(x0, coef1), tf.mul(x, coef2));
      if (sigma > 0) prevSample = tf.add(prevSample, tf.mul(noise ?? tf.randomNormal(x.shape), sigma));
      return { prevSample, predX0: x0 };
    });
  }
}

export interface DDPMSampleOptions extends SamplerOptions, DDPMConfig {
  predictionType: PredictionType;
  /** Number of steps (default T: every step). */
  steps?: number;
  spacing?: Spacing;
}

function makeRun(model: SamplerModel, shape: number[], schedule: NoiseSchedule, opts: DDPMSampleOptions): SamplerRun {
  requirePredictionType(opts);
  const scheduler = new DDPMScheduler(schedule, opts).setTimesteps(opts.steps ?? schedule.T);
  return { model, scheduler, shape, opts };
}

/**
 * Ancestral DDPM sampling of `shape` (e.g. [16, 28, 28, 1]) from N(0, I). Async: it yields to the event loop between
 * steps (live progress in notebooks) and reads its finite check back only every opts.checkEvery steps.
 */
export async function ddpmSample(model: SamplerModel, shape: number[], schedule: NoiseSchedule, opts: DDPMSampleOptions): Promise<SampleResult> {
  return runSampler(makeRun(model, shape, schedule, opts));
}
