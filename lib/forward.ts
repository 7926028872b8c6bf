/**
 * The forward (noising) process and its posterior. Index convention: see lib/schedule.ts (code t = 0 … T−1).
 *   forwardStep:  x_t = √(1−β_t)·x_{t−1} + √β_t·ε          (one step; x_{−1} is the data)
 *   addNoise:     x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε               (closed form q(x_t | x0), any t per example)
 *   posterior:    q(x_{t−1} | x_t, x0) = N(coef1_t·x0 + coef2_t·x_t, β̃_t)
 */
import * as tf from '@tensorflow/tfjs';
import { ShapeMismatchError } from './errors';
import type { NoiseSchedule, ScheduleField } from './schedule';

/** Timesteps: an int32 [B] tensor, an array of B numbers, or one number shared by the whole batch. */
export type Timesteps = tf.Tensor1D | ArrayLike<number> | number;

export function assertSameShape(a: tf.Tensor, b: tf.Tensor, what: string): void {
  if (a.rank !== b.rank || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new ShapeMismatchError(`${what}: shapes must match, got [${a.shape}] and [${b.shape}]`);
  }
}

function timestepCount(t: Timesteps): number {
  if (typeof t === 'number') return 1;
  if (t instanceof tf.Tensor) return t.rank === 1 ? t.shape[0] : -1;
  return t.length;
}

/**
 * Schedule field at t, shaped [B or 1, 1, …] to broadcast against `x`. Throws ShapeMismatchError when the number of
 * timesteps is neither 1 nor the batch size of x, InvalidArgumentError when a t is outside [0, T).
 */
export function coef(schedule: NoiseSchedule, name: ScheduleField, t: Timesteps, x: tf.Tensor): tf.Tensor {
  if (x.rank < 1) throw new ShapeMismatchError(`data must have a batch axis, got a scalar`);
  const n = timestepCount(t);
  if (n !== 1 && n !== x.shape[0]) {
    throw new ShapeMismatchError(`timesteps: expected 1 or ${x.shape[0]} (the batch size of [${x.shape}]), got ${n < 0 ? 'a tensor that is not 1-D' : n}`);
  }
  return schedule.at(name, t, x.rank);
}

/** The seed's single step x_{t−1} → x_t = √(1−β_t)·x_{t−1} + √β_t·ε. Iterating it for t = 0 … k gives q(x_k | x0). */
export function forwardStep(xPrev: tf.Tensor, t: Timesteps, noise: tf.Tensor, schedule: NoiseSchedule): tf.Tensor {
  assertSameShape(xPrev, noise, 'forwardStep(xPrev, noise)');
  return tf.tidy(() => {
    const beta = coef(schedule, 'betas', t, xPrev);
    return tf.add(tf.mul(tf.sqrt(tf.sub(1, beta)), xPrev), tf.mul(tf.sqrt(beta), noise));
  });
}

/** Closed form q(x_t | x0): √ᾱ_t·x0 + √(1−ᾱ_t)·ε, with a different t for each example if t is [B]. */
export function addNoise(x0: tf.Tensor, noise: tf.Tensor, t: Timesteps, schedule: NoiseSchedule): tf.Tensor {
  assertSameShape(x0, noise, 'addNoise(x0, noise)');
  return tf.tidy(() =>
    tf.add(tf.mul(coef(schedule, 'sqrtAlphasCumprod', t, x0), x0), tf.mul(coef(schedule, 'sqrtOneMinusAlphasCumprod', t, x0), noise)),
  );
}

export interface Posterior {
  /** coef1·x0 + coef2·x_t, shaped like x_t. */
  mean: tf.Tensor;
  /** β̃_t, shaped [B, 1, …] (broadcasts against x_t); 0 at t = 0. */
  variance: tf.Tensor;
  /** log β̃_t, clipped at t = 0 (see NoiseSchedule.posteriorLogVarianceClipped). */
  logVariance: tf.Tensor;
}

/** q(x_{t−1} | x_t, x0): mean and variance (Ho et al. eq. 6–7). Dispose the three tensors after use. */
export function posterior(x0: tf.Tensor, xt: tf.Tensor, t: Timesteps, schedule: NoiseSchedule): Posterior {
  assertSameShape(x0, xt, 'posterior(x0, xt)');
  return tf.tidy(() => ({
    mean: tf.add(tf.mul(coef(schedule, 'posteriorMeanCoef1', t, xt), x0), tf.mul(coef(schedule, 'posteriorMeanCoef2', t, xt), xt)),
    variance: coef(schedule, 'posteriorVariance', t, xt),
    logVariance: coef(schedule, 'posteriorLogVarianceClipped', t, xt),
  }));
}
