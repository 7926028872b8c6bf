/**
 * DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic Models",
 * Algorithm 2): a multistep second-order solver of the probability-flow ODE in data-prediction (x̂0) form.
 * With α_t = √ᾱ_t, σ_t = √(1 − ᾱ_t), λ_t = log(α_t/σ_t) and h_i = λ_{t_i} − λ_{t_{i−1}}, the step from t_{i−1} to t_i is
 *   x_{t_i} = (σ_{t_i}/σ_{t_{i−1}})·x_{t_{i−1}} − α_{t_i}·(e^{−h_i} − 1)·D_i
 *   D_i = x̂0_{i−1}                                                  first step (and solverOrder 1: then this is DDIM, η = 0)
 *   D_i = (1 + 1/(2r_i))·x̂0_{i−1} − 1/(2r_i)·x̂0_{i−2},  r_i = h_{i−1}/h_i    every later step
 * where x̂0_{i−1} is the model's prediction at (x_{t_{i−1}}, t_{i−1}), converted with lib/param.ts (ε-, x0- or v-models;
 * optionally clipped, as diffusers' thresholding of x0_pred).
 * The last step goes to ᾱ = 1 (σ = 0, λ = ∞, e^{−h} = 0) and returns x̂0 — first order. This is diffusers'
 * DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2) with its default final_sigmas_type="zero",
 * which takes that last step at first order for any step count; that includes lower_order_final (< 15 steps), which
 * with solver_order=2 only concerns the last step. So: 1 step = x̂0(x_T); 2 steps = DDIM's 2 steps; N ≥ 3 steps: 2nd order
 * from the second step on.
 * Timesteps as DDIM (timesteps.ts), default 'trailing': for N = 10, 999 … 99 (diffusers' own "linspace" default for this
 * scheduler gives 999 … 100). Integer timesteps only: the model is called at the schedule's own steps.
 * Stateful: the scheduler keeps x̂0 of the previous step (one tensor, until the next step replaces it, the last step,
 * setTimesteps() or reset()); the first timestep is always first order (a stale x̂0 is replaced), and a second-order
 * step that does not follow its predecessor throws.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors';
import type { PredictionType } from '../param';
import type { NoiseSchedule } from '../schedule';
import { requirePredictionType, runSampler, type SamplerRun } from './loop';
import { SAMPLER_OPTION_KEYS, checkOptionKeys } from './options';
import { BaseScheduler, type SchedulerConfig } from './scheduler';
import type { Spacing } from './timesteps';
import type { Denoiser, SampleResult, SamplerOptions, Scheduler, StepOutput } from './types';

export interface DPMSolverConfig extends SchedulerConfig {
  /** 2 (default): DPM-Solver++(2M); 1: the first-order update at every step (= DDIM, η = 0). */
  solverOrder?: 1 | 2;
}

const CONFIG_KEYS: Record<keyof DPMSolverConfig, true> = { predictionType: true, clipX0: true, spacing: true, solverOrder: true };

export class DPMSolverMultistepScheduler extends BaseScheduler implements Scheduler {
  readonly solverOrder: 1 | 2;
  /** x̂0 predicted at the previous step's timestep (order 2 only). */
  private history: { t: number; x0: tf.Tensor } | undefined;

  constructor(schedule: NoiseSchedule, config: DPMSolverConfig = {}) {
    super(schedule, config);
    checkOptionKeys(config, CONFIG_KEYS, 'DPMSolverMultistepScheduler');
    const order = config.solverOrder ?? 2;
    if (order !== 1 && order !== 2) throw new InvalidArgumentError(`DPM-Solver++ solverOrder must be 1 or 2, got ${order}`);
    this.solverOrder = order;
  }

  /** New timesteps; forgets the history of any earlier run. */
  override setTimesteps(steps: number | readonly number[], spacing: Spacing = this.spacing): this {
    super.setTimesteps(steps, spacing);
    this.reset();
    return this;
  }

  /** Disposes the remembered x̂0 (the loop calls this when a run stops early). */
  reset(): void {
    this.history?.x0.dispose();
    this.history = undefined;
  }

  /** λ_t = log(α_t/σ_t) = ½·log(ᾱ_t/(1 − ᾱ_t)); +∞ at t = −1 (ᾱ = 1, the clean data). */
  lambda(t: number): number {
    const a = this.alphaBar(t);
    return a === 1 ? Infinity : 0.5 * Math.log(a / (1 - a));
  }

  needsNoise(): boolean {
    return false;
  }

  /** Whether the step from t uses the second-order D (a previous x̂0 exists and the step does not end at ᾱ = 1). */
  isSecondOrder(t: number): boolean {
    const i = this.timesteps.indexOf(t);
    return this.solverOrder === 2 && i > 0 && this.prevTimestep(t) >= 0;
  }

  step(modelOutput: tf.Tensor, t: number, x: tf.Tensor): StepOutput {
    const prev = this.prevTimestep(t); // throws for a t that is not in this run
    const i = this.timesteps.indexOf(t);
    const second = this.isSecondOrder(t);
    if (second && this.history?.t !== this.timesteps[i - 1]) {
      throw new InvalidArgumentError(
        `DPM-Solver++ is multistep: the step from t = ${t} must follow the step from t = ${this.timesteps[i - 1]}` +
          `${this.history ? `, not from t = ${this.history.t}` : ''} (setTimesteps() starts a run again)`,
      );
    }
    const res = tf.tidy(() => {
      const { x0 } = this.predict(modelOutput, t, x);
      if (prev < 0) return { prevSample: x0.clone(), predX0: x0 }; // σ_t = 0, e^{−h} = 0: the update is x̂0 itself
      const abS = this.alphaBar(t);
      const abT = this.alphaBar(prev);
      const h = this.lambda(prev) - this.lambda(t);
      const cx = Math.sqrt(1 - abT) / Math.sqrt(1 - abS); // σ_t/σ_s
      const cd = -Math.sqrt(abT) * Math.expm1(-h); // −α_t·(e^{−h} − 1)
      let d = x0;
      if (second && this.history) {
        const r = (this.lambda(t) - this.lambda(this.history.t)) / h;
        d = tf.sub(tf.mul(x0, 1 + 1 / (2 * r)), tf.mul(this.history.x0, 1 / (2 * r)));
      }
      return { prevSample: tf.add(tf.mul(x, cx), tf.mul(d, cd)), predX0: x0 };
    });
    if (this.solverOrder === 2) {
      this.history?.x0.dispose();
      // a clone kept past the loop's tf.tidy: the loop may dispose predX0 itself
      this.history = prev < 0 ? undefined : { t, x0: tf.keep(res.predX0.clone()) };
    }
    return res;
  }
}

export interface DPMSolverSampleOptions extends SamplerOptions, DPMSolverConfig {
  predictionType: PredictionType;
  /** Number of steps in [1, T] (default 50, or T if smaller); each step calls the model once. */
  steps?: number;
  /** Explicit strictly descending timesteps (overrides steps/spacing). */
  timesteps?: number[];
}

const SAMPLE_KEYS: Record<keyof DPMSolverSampleOptions, true> = { ...SAMPLER_OPTION_KEYS, ...CONFIG_KEYS, steps: true, timesteps: true };

function makeRun(model: Denoiser, shape: number[], schedule: NoiseSchedule, opts: DPMSolverSampleOptions): SamplerRun {
  checkOptionKeys(opts, SAMPLE_KEYS, 'dpmSolverSample');
  requirePredictionType(opts);
  const { predictionType, clipX0, spacing, solverOrder } = opts;
  const scheduler = new DPMSolverMultistepScheduler(schedule, { predictionType, clipX0, spacing, solverOrder });
  scheduler.setTimesteps(opts.timesteps ?? opts.steps ?? Math.min(50, schedule.T));
  return { model, scheduler, shape, opts };
}

/**
 * DPM-Solver++(2M) sampling of `shape` from N(0, I) (deterministic given the initial noise); yields to the event loop
 * between steps. Bad options reject the promise with a named error.
 */
export async function dpmSolverSample(model: Denoiser, shape: number[], schedule: NoiseSchedule, opts: DPMSolverSampleOptions): Promise<SampleResult> {
  return runSampler(makeRun(model, shape, schedule, opts));
}
