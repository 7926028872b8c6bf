/**
 * Parameterisations of the denoiser's output and the conversions among them, given x_t and t.
 * With x_t = √ᾱ·x0 + √(1−ᾱ)·ε (index convention: lib/schedule.ts):
 *   ε  = (x_t − √ᾱ·x0) / √(1−ᾱ)          x0 = (x_t − √(1−ᾱ)·ε) / √ᾱ
 *   v  = √ᾱ·ε − √(1−ᾱ)·x0                 (Salimans & Ho 2022)   x0 = √ᾱ·x_t − √(1−ᾱ)·v,  ε = √(1−ᾱ)·x_t + √ᾱ·v
 *   score = ∇ log q(x_t) ≈ −ε / √(1−ᾱ)
 * The noise level is a schedule timestep t (ᾱ = schedule.alphasCumprod[t]) or, for samplers that visit levels between the
 * schedule's steps (Karras σ spacing), ᾱ itself: `{ alphaBar }` (ᾱ = 1/(1+σ²)).
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from './errors';
import { assertSameShape, coef, type Timesteps } from './forward';
import type { NoiseSchedule } from './schedule';

/** What a denoiser predicts. */
export type PredictionType = 'epsilon' | 'x0' | 'v';
/** Any quantity a denoiser output can be converted to or from. */
export type Parameterisation = PredictionType | 'score';

/**
 * A trained denoiser: the model's raw output in its predictionType (ε, x0 or v), shaped like x.
 * `t` is int32 [B] in [0, T) (float32 and fractional from the Karras-σ samplers: samplers/karras.ts); `classes` int32 [B] (the null class, e.g. 10, means "unconditional") when conditional.
 * (Defined here, upstream of losses and samplers; lib/samplers re-exports it.)
 */
export type Denoiser = (x: tf.Tensor, t: tf.Tensor1D, classes?: tf.Tensor1D) => tf.Tensor;

/**
 * A noise-conditional score network s(x, σ) ≈ ∇_x log p_σ(x), with σ float32 [B] (NCSN; Song & Ermon 2019).
 * `sigmaValue` is σ as a number when the whole batch shares it (annealed Langevin passes it), so that a model that needs
 * σ on the JS side does not have to read the tensor back.
 */
export type ScoreModel = (x: tf.Tensor, sigma: tf.Tensor1D, sigmaValue?: number) => tf.Tensor;

export const PREDICTION_TYPES: readonly PredictionType[] = ['epsilon', 'x0', 'v'];

export function checkPredictionType(p: string): PredictionType {
  if (!(PREDICTION_TYPES as readonly string[]).includes(p)) {
    throw new InvalidArgumentError(`predictionType must be one of ${PREDICTION_TYPES.join(', ')}; got '${p}'`);
  }
  return p as PredictionType;
}

/** A noise level: timesteps of the schedule, or ᾱ ∈ (0, 1) itself (shared by the whole batch). */
export type NoiseLevel = Timesteps | { alphaBar: number };

function isAlphaBar(t: NoiseLevel): t is { alphaBar: number } {
  return typeof t === 'object' && !(t instanceof tf.Tensor) && 'alphaBar' in t;
}

/** √ᾱ and √(1−ᾱ) at the noise level, as tensors that broadcast against xt. */
function ab(schedule: NoiseSchedule, t: NoiseLevel, xt: tf.Tensor) {
  if (isAlphaBar(t)) {
    const abar = t.alphaBar;
    if (!(abar > 0 && abar < 1)) throw new InvalidArgumentError(`alphaBar must lie in (0, 1), got ${abar}`);
    return { a: tf.scalar(Math.sqrt(abar)), s: tf.scalar(Math.sqrt(1 - abar)) };
  }
  return { a: coef(schedule, 'sqrtAlphasCumprod', t, xt), s: coef(schedule, 'sqrtOneMinusAlphasCumprod', t, xt) };
}

/** x0 = (x_t − √(1−ᾱ)·ε) / √ᾱ */
export function x0FromEpsilon(xt: tf.Tensor, eps: tf.Tensor, t: NoiseLevel, schedule: NoiseSchedule): tf.Tensor {
  assertSameShape(xt, eps, 'x0FromEpsilon(xt, eps)');
  return tf.tidy(() => {
    const { a, s } = ab(schedule, t, xt);
    return tf.div(tf.sub(xt, tf.mul(s, eps)), a);
  });
}

/** ε = (x_t − √ᾱ·x0) / √(1−ᾱ) */
export function epsilonFromX0(xt: tf.Tensor, x0: tf.Tensor, t: NoiseLevel, schedule: NoiseSchedule): tf.Tensor {
  assertSameShape(xt, x0, 'epsilonFromX0(xt, x0)');
  return tf.tidy(() => {
    const { a, s } = ab(schedule, t, xt);
    return tf.div(tf.sub(xt, tf.mul(a, x0)), s);
  });
}

/** v = √ᾱ·ε − √(1−ᾱ)·x0 (needs both; x_t only fixes the shapes and the batch of t). */
export function vFromEpsilonX0(eps: tf.Tensor, x0: tf.Tensor, t: NoiseLevel, schedule: NoiseSchedule): tf.Tensor {
  assertSameShape(eps, x0, 'vFromEpsilonX0(eps, x0)');
  return tf.tidy(() => {
    const { a, s } = ab(schedule, t, x0);
    return tf.sub(tf.mul(a, eps), tf.mul(s, x0));
  });
}

/** x0 = √ᾱ·x_t − √(1−ᾱ)·v */
export function x0FromV(xt: tf.Tensor, v: tf.Tensor, t: NoiseLevel, schedule: NoiseSchedule): tf.Tensor {
  assertSameShape(xt, v, 'x0FromV(xt, v)');
  return tf.tidy(() => {
    const { a, s } = ab(schedule, t, xt);
    return tf.sub(tf.mul(a, xt), tf.mul(s, v));
  });
}

/** ε = √(1−ᾱ)·x_t + √ᾱ·v */
export function epsilonFromV(xt: tf.Tensor, v: tf.Tensor, t: NoiseLevel, schedule: NoiseSchedule): tf.Tensor {
  assertSameShape(xt, v, 'epsilonFromV(xt, v)');
  return tf.tidy(() => {
    const { a, s } = ab(schedule, t, xt);
    return tf.add(tf.mul(s, xt), tf.mul(a, v));
  });
}

/** score = −ε / √(1−ᾱ) */
export function scoreFromEpsilon(eps: tf.Tensor, t: NoiseLevel, schedule: NoiseSchedule): tf.Tensor {
  return tf.tidy(() => tf.neg(tf.div(eps, ab(schedule, t, eps).s)));
}

/** ε = −√(1−ᾱ)·score */
export function epsilonFromScore(score: tf.Tensor, t: NoiseLevel, schedule: NoiseSchedule): tf.Tensor {
  return tf.tidy(() => tf.neg(tf.mul(score, ab(schedule, t, score).s)));
}

/** ε and x0 implied by a model output of any parameterisation (what every sampler step needs). */
export function toEpsilonAndX0(
  output: tf.Tensor,
  from: Parameterisation,
  xt: tf.Tensor,
  t: NoiseLevel,
  schedule: NoiseSchedule,
): { eps: tf.Tensor; x0: tf.Tensor } {
  assertSameShape(xt, output, `model output (${from}) vs x_t`);
  return tf.tidy(() => {
    switch (from) {
      case 'epsilon':
        return { eps: output.clone(), x0: x0FromEpsilon(xt, output, t, schedule) };
      case 'x0':
        return { eps: epsilonFromX0(xt, output, t, schedule), x0: output.clone() };
      case 'v':
        return { eps: epsilonFromV(xt, output, t, schedule), x0: x0FromV(xt, output, t, schedule) };
      case 'score': {
        const eps = epsilonFromScore(output, t, schedule);
        return { eps, x0: x0FromEpsilon(xt, eps, t, schedule) };
      }
      default:
        throw new InvalidArgumentError(`unknown parameterisation '${from as string}'; expected epsilon, x0, v or score`);
    }
  });
}

/** Converts a model output between any two parameterisations (ε, x0, v, score) at (x_t, t). */
export function convertPrediction(
  output: tf.Tensor,
  from: Parameterisation,
  to: Parameterisation,
  xt: tf.Tensor,
  t: NoiseLevel,
  schedule: NoiseSchedule,
): tf.Tensor {
  return tf.tidy(() => {
    const { eps, x0 } = toEpsilonAndX0(output, from, xt, t, schedule);
    switch (to) {
      case 'epsilon':
        return eps;
      case 'x0':
        return x0;
      case 'v':
        return vFromEpsilonX0(eps, x0, t, schedule);
      case 'score':
        return scoreFromEpsilon(eps, t, schedule);
      default:
        throw new InvalidArgumentError(`unknown parameterisation '${to as string}'; expected epsilon, x0, v or score`);
    }
  });
}
