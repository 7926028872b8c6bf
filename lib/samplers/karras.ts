/**
 * Euler and Heun on Karras σ spacing (Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative
 * Models": eq. 5 and Algorithm 1, the deterministic sampler), on the course's discrete VP schedules.
 *
 * Noise levels, ρ = 7 by default:
 *   σ_i = (σ_max^{1/ρ} + i/(N−1)·(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ,  i = 0 … N−1,   σ_N = 0        (N = 1: σ_0 = σ_max)
 * Algorithm 1, with D(x; σ) the denoiser (x̂0) and d_i = (x_i − D(x_i; σ_i))/σ_i:
 *   x_{i+1} = x_i + (σ_{i+1} − σ_i)·d_i                                                     Euler (both)
 *   if σ_{i+1} ≠ 0:  x_{i+1} = x_i + (σ_{i+1} − σ_i)·(½·d_i + ½·d'_i),
 *                    d'_i = (x_{i+1} − D(x_{i+1}; σ_{i+1}))/σ_{i+1}                         Heun's correction
 * so Heun calls the model 2N − 1 times in N steps (no correction on the last step, to σ = 0).
 *
 * VP ↔ σ (k-diffusion; diffusers' EulerDiscreteScheduler): x_σ = x0 + σ·ε is the VP sample rescaled,
 *   x_σ = x_VP/√ᾱ = x_VP·√(1+σ²),   σ(t) = √((1−ᾱ_t)/ᾱ_t) (schedule.sqrtRecipm1AlphasCumprod),   ᾱ = 1/(1+σ²),
 * and d = (x_σ − x̂0)/σ is the model's ε̂ at that level. The loop keeps x in VP form — what the model sees (diffusers'
 * scale_model_input) — and starts from x_T ~ N(0, I) like DDPM/DDIM (diffusers' init_noise_sigma = √(σ_max² + 1)), so
 * one update reads  x'_VP = √((1+σ²)/(1+σ'²))·x_VP + (σ' − σ)/√(1+σ'²)·d.
 * Euler is thus DDIM (η = 0) visiting the Karras noise levels; its last step (σ' = 0) returns x̂0.
 *
 * Model timesteps: a σ_i mostly lies between two of the schedule's σ(k) < σ_i < σ(k+1). As diffusers with
 * use_karras_sigmas=True (`_sigma_to_t`), the model is called at the fractional timestep
 *   t = k + (log σ_i − log σ(k))/(log σ(k+1) − log σ(k))                   (linear in log σ; timestepToSigma inverts it)
 * which the loop passes as float32 (the course's sinusoidal time embeddings take any real t). σ_min and σ_max
 * default to the schedule's σ(0) and σ(T−1), so the first and last levels are the integer timesteps T−1 and 0.
 * The first and last σ_i are set to σ_max and σ_min exactly (the formula can miss them by an ulp).
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors';
import { checkPredictionType, epsilonFromX0, toEpsilonAndX0, type PredictionType } from '../param';
import type { NoiseSchedule } from '../schedule';
import { requirePredictionType, runSampler, type SamplerRun } from './loop';
import { SAMPLER_OPTION_KEYS, checkOptionKeys } from './options';
import { clipRange } from './scheduler';
import type { Denoiser, SampleResult, SamplerOptions, Scheduler, StepOutput } from './types';

/** Karras et al. eq. 5: n levels from sigmaMax down to sigmaMin, then 0 (n + 1 numbers, as k-diffusion's get_sigmas_karras). */
export function karrasSigmas(n: number, sigmaMin: number, sigmaMax: number, rho = 7): number[] {
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`number of Karras levels must be a positive integer, got ${n}`);
  if (!(sigmaMin > 0) || !Number.isFinite(sigmaMax) || !(n === 1 ? sigmaMax >= sigmaMin : sigmaMax > sigmaMin)) {
    throw new InvalidArgumentError(`Karras sigmas need 0 < sigmaMin < sigmaMax < ∞, got sigmaMin = ${sigmaMin}, sigmaMax = ${sigmaMax}`);
  }
  if (!(rho > 0) || !Number.isFinite(rho)) throw new InvalidArgumentError(`rho must be a positive number, got ${rho}`);
  const lo = sigmaMin ** (1 / rho);
  const hi = sigmaMax ** (1 / rho);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    if (i === 0) out.push(sigmaMax);
    else if (i === n - 1) out.push(sigmaMin);
    else out.push((hi + (i / (n - 1)) * (lo - hi)) ** rho);
  }
  out.push(0);
  return out;
}

/** The schedule's σ(t) = √((1−ᾱ_t)/ᾱ_t), increasing in t. */
export function scheduleSigmas(schedule: NoiseSchedule): Float64Array {
  return schedule.sqrtRecipm1AlphasCumprod;
}

/** The fractional model timestep of a noise level σ ∈ [σ(0), σ(T−1)]: linear in log σ between neighbouring steps. */
export function sigmaToTimestep(schedule: NoiseSchedule, sigma: number): number {
  const s = scheduleSigmas(schedule);
  const T = schedule.T;
  if (!(sigma >= s[0] && sigma <= s[T - 1])) {
    throw new InvalidArgumentError(`noise level σ must lie in [σ(0), σ(T−1)] = [${s[0]}, ${s[T - 1]}] of this schedule, got ${sigma}`);
  }
  let k = 0; // the largest k with σ(k) ≤ sigma
  let hiIdx = T - 1;
  while (k < hiIdx) {
    const mid = Math.ceil((k + hiIdx) / 2);
    if (s[mid] <= sigma) k = mid;
    else hiIdx = mid - 1;
  }
  if (s[k] === sigma || k === T - 1) return k;
  return k + (Math.log(sigma) - Math.log(s[k])) / (Math.log(s[k + 1]) - Math.log(s[k]));
}

/** σ at a real timestep t ∈ [0, T−1]: the schedule's σ(t) at integers, log-linear in between (inverse of sigmaToTimestep). */
export function timestepToSigma(schedule: NoiseSchedule, t: number): number {
  const s = scheduleSigmas(schedule);
  if (!(t >= 0 && t <= schedule.T - 1)) throw new InvalidArgumentError(`timestep must lie in [0, ${schedule.T - 1}], got ${t}`);
  const k = Math.floor(t);
  if (k === t) return s[k];
  return Math.exp(Math.log(s[k]) + (t - k) * (Math.log(s[k + 1]) - Math.log(s[k])));
}

export interface KarrasConfig {
  predictionType?: PredictionType;
  /** Clip x̂0 = D(x; σ) to [−c, c] (true: c = 1); d is then (x_σ − clipped x̂0)/σ. */
  clipX0?: boolean | number;
  /** Smallest nonzero level (default σ(0) of the schedule); must lie in [σ(0), σ(T−1)]. */
  sigmaMin?: number;
  /**
   * Largest level, where sampling starts; must lie in [σ(0), σ(T−1)]. Default min(80, σ(T−1)): EDM's σ_max. A cosine
   * schedule's last level is ~2·10⁴ (its β is clipped at 0.999), and ρ = 7 then spends most steps far above the data —
   * measured: Heun at 10 steps from σ(T−1) missed a Gaussian's moments by 1.24, from 80 by 0.11 (test/math/samplers-fewstep).
   */
  sigmaMax?: number;
  /** ρ of eq. 5 (default 7; larger crowds the steps near σ_min). */
  rho?: number;
}

/** The default largest level when the schedule's own is higher (Karras et al. 2022, EDM's σ_max). */
export const DEFAULT_SIGMA_MAX = 80;

const CONFIG_KEYS: Record<keyof KarrasConfig, true> = { predictionType: true, clipX0: true, sigmaMin: true, sigmaMax: true, rho: true };

/** What Euler and Heun share: the σ levels, their model timesteps, x̂0/d from a model output, the Euler update. */
export abstract class KarrasScheduler implements Scheduler {
  readonly predictionType: PredictionType;
  readonly clip: number | undefined;
  readonly sigmaMin: number;
  readonly sigmaMax: number;
  readonly rho: number;
  /** σ_0 > … > σ_{N−1} > σ_N = 0. */
  sigmas: number[] = [];
  /** The model timestep of each σ_i, i < N (fractional in general). */
  timesteps: number[] = [];

  constructor(readonly schedule: NoiseSchedule, config: KarrasConfig = {}) {
    checkOptionKeys(config, CONFIG_KEYS, new.target.name);
    this.predictionType = checkPredictionType(config.predictionType ?? 'epsilon');
    this.clip = clipRange(config.clipX0);
    const s = scheduleSigmas(schedule);
    this.sigmaMin = config.sigmaMin ?? s[0];
    this.sigmaMax = config.sigmaMax ?? Math.min(DEFAULT_SIGMA_MAX, s[schedule.T - 1]);
    for (const [name, v] of [['sigmaMin', this.sigmaMin], ['sigmaMax', this.sigmaMax]] as const) {
      if (!(v >= s[0] && v <= s[schedule.T - 1])) {
        throw new InvalidArgumentError(`${name} must lie in [σ(0), σ(T−1)] = [${s[0]}, ${s[schedule.T - 1]}] of this schedule, got ${v}`);
      }
    }
    this.rho = config.rho ?? 7;
    karrasSigmas(schedule.T === 1 ? 1 : 2, this.sigmaMin, this.sigmaMax, this.rho); // checks σ_min < σ_max and ρ now
    this.setTimesteps(schedule.T);
  }

  /** N steps, 1 ≤ N ≤ T: σ levels by eq. 5 and their model timesteps. */
  setTimesteps(steps: number): this {
    const T = this.schedule.T;
    if (!Number.isInteger(steps) || steps < 1 || steps > T) {
      throw new InvalidArgumentError(`number of sampling steps must be an integer in [1, T = ${T}], got ${steps}`);
    }
    this.sigmas = karrasSigmas(steps, this.sigmaMin, this.sigmaMax, this.rho);
    this.timesteps = this.sigmas.slice(0, steps).map((sg) => sigmaToTimestep(this.schedule, sg));
    return this;
  }

  needsNoise(): boolean {
    return false;
  }

  protected index(t: number): number {
    const i = this.timesteps.indexOf(t);
    if (i < 0) throw new InvalidArgumentError(`timestep ${t} is not among this scheduler's timesteps (${this.timesteps.length} steps from ${this.timesteps[0]})`);
    return i;
  }

  /** (σ, σ') of the step from t. */
  levels(t: number): { sigma: number; next: number } {
    const i = this.index(t);
    return { sigma: this.sigmas[i], next: this.sigmas[i + 1] };
  }

  /** x̂0 (optionally clipped) and d = (x_σ − x̂0)/σ = ε̂ from a model output at level σ (ᾱ = 1/(1+σ²)). */
  predict(modelOutput: tf.Tensor, sigma: number, x: tf.Tensor): { d: tf.Tensor; x0: tf.Tensor } {
    const level = { alphaBar: 1 / (1 + sigma * sigma) };
    return tf.tidy(() => {
      const { eps, x0 } = toEpsilonAndX0(modelOutput, this.predictionType, x, level, this.schedule);
      if (this.clip === undefined) return { d: eps, x0 };
      const clipped = tf.clipByValue(x0, -this.clip, this.clip);
      return { d: epsilonFromX0(x, clipped, level, this.schedule), x0: clipped };
    });
  }

  /** Euler's x_σ' = x_σ + (σ' − σ)·d in VP form: √((1+σ²)/(1+σ'²))·x + (σ' − σ)/√(1+σ'²)·d. */
  protected eulerUpdate(x: tf.Tensor, d: tf.Tensor, sigma: number, next: number): tf.Tensor {
    const cx = Math.sqrt((1 + sigma * sigma) / (1 + next * next));
    const cd = (next - sigma) / Math.sqrt(1 + next * next);
    return tf.tidy(() => tf.add(tf.mul(x, cx), tf.mul(d, cd)));
  }

  /** The Euler step (Heun's predictor). */
  step(modelOutput: tf.Tensor, t: number, x: tf.Tensor): StepOutput {
    const { sigma, next } = this.levels(t);
    return tf.tidy(() => {
      const { d, x0 } = this.predict(modelOutput, sigma, x);
      return { prevSample: this.eulerUpdate(x, d, sigma, next), predX0: x0 };
    });
  }
}

/** Euler on Karras σ spacing: one model call per step. */
export class EulerKarrasScheduler extends KarrasScheduler {}

/** Heun on Karras σ spacing: step() is Euler's predictor; the loop evaluates the model again and calls correct(). */
export class HeunKarrasScheduler extends KarrasScheduler {
  /** The predictor's model timestep, or undefined on the last step (σ' = 0: no correction). */
  correctionTimestep(t: number): number | undefined {
    const i = this.index(t);
    return this.sigmas[i + 1] === 0 ? undefined : this.timesteps[i + 1];
  }

  /** x' = x_σ + (σ' − σ)·(d + d')/2 with d = (x_σ − x̂0)/σ from `first` and d' from the model at the predictor. */
  correct(correctionOutput: tf.Tensor, t: number, x: tf.Tensor, first: StepOutput): StepOutput {
    const { sigma, next } = this.levels(t);
    if (next === 0) throw new InvalidArgumentError('Heun takes no correction on the last step (σ′ = 0)');
    const prevSample = tf.tidy(() => {
      const d = tf.div(tf.sub(tf.mul(x, Math.sqrt(1 + sigma * sigma)), first.predX0), sigma);
      const dNext = this.predict(correctionOutput, next, first.prevSample).d;
      return this.eulerUpdate(x, tf.mul(tf.add(d, dNext), 0.5), sigma, next);
    });
    return { prevSample, predX0: first.predX0 };
  }
}

export interface KarrasSampleOptions extends SamplerOptions, KarrasConfig {
  predictionType: PredictionType;
  /** Number of steps N in [1, T] (default 50, or T if smaller). Heun calls the model 2N − 1 times. */
  steps?: number;
}

const SAMPLE_KEYS: Record<keyof KarrasSampleOptions, true> = { ...SAMPLER_OPTION_KEYS, ...CONFIG_KEYS, steps: true };

function makeRun(
  Cls: typeof EulerKarrasScheduler | typeof HeunKarrasScheduler,
  who: string,
  model: Denoiser,
  shape: number[],
  schedule: NoiseSchedule,
  opts: KarrasSampleOptions,
): SamplerRun {
  checkOptionKeys(opts, SAMPLE_KEYS, who);
  requirePredictionType(opts);
  const { predictionType, clipX0, sigmaMin, sigmaMax, rho } = opts;
  const scheduler = new Cls(schedule, { predictionType, clipX0, sigmaMin, sigmaMax, rho }).setTimesteps(opts.steps ?? Math.min(50, schedule.T));
  return { model, scheduler, shape, opts };
}

/** Euler on Karras σ spacing (deterministic given the initial noise; N model calls). Bad options reject with a named error. */
export async function eulerKarrasSample(model: Denoiser, shape: number[], schedule: NoiseSchedule, opts: KarrasSampleOptions): Promise<SampleResult> {
  return runSampler(makeRun(EulerKarrasScheduler, 'eulerKarrasSample', model, shape, schedule, opts));
}

/** Heun on Karras σ spacing (Karras et al. Algorithm 1; 2N − 1 model calls). Bad options reject with a named error. */
export async function heunKarrasSample(model: Denoiser, shape: number[], schedule: NoiseSchedule, opts: KarrasSampleOptions): Promise<SampleResult> {
  return runSampler(makeRun(HeunKarrasScheduler, 'heunKarrasSample', model, shape, schedule, opts));
}
