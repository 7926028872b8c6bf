/**
 * Training losses. Index convention: lib/schedule.ts. All reductions are means over the non-batch axes, then over
 * the batch, so the numbers do not depend on the image size.
 *   L_simple (Ho et al.):   E_{t, x0, ε} ‖ε − ε̂(x_t, t)‖²     (predictionType 'epsilon')
 *   x0 / v targets:         ‖x0 − x̂0‖², ‖v − v̂‖² with v = √ᾱ·ε − √(1−ᾱ)·x0
 *   min-SNR-γ (Hang et al. 2023): per-example weight min(SNR, γ)/SNR (ε), min(SNR, γ) (x0), min(SNR, γ)/(SNR+1) (v),
 *                           i.e. the x0-space weight min(SNR, γ) whatever the model predicts.
 *   DSM (Vincent 2011):     x̃ = x0 + σ·ε,  ‖s(x̃, σ) + ε/σ‖²  (the score of q_σ(x̃ | x0) is −ε/σ).
 * DSM with weight σ² is ‖σ·s + ε‖², the ε-loss of the model ε̂ = −σ·s; for the VP process at step t
 * (x_t/√ᾱ = x0 + σ_t·ε with σ_t² = (1−ᾱ)/ᾱ) it equals L_simple up to the weight σ_t². test/math/losses.test.ts shows it.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from './errors';
import { addNoise, assertSameShape, type Timesteps } from './forward';
import { checkPredictionType, vFromEpsilonX0, type Denoiser, type PredictionType, type ScoreModel } from './param';
import { seedStream } from './random';
import type { NoiseSchedule } from './schedule';

export type LossWeighting = 'none' | { minSnrGamma: number };

/** `w` as a LossWeighting, or a named error: 'none', or { minSnrGamma: γ } with a finite γ > 0. `what` names the field. */
export function checkLossWeighting(w: unknown, what: string): LossWeighting {
  if (w === 'none') return w;
  const gamma = typeof w === 'object' && w !== null ? (w as { minSnrGamma?: unknown }).minSnrGamma : undefined;
  if (!(typeof gamma === 'number' && gamma > 0 && Number.isFinite(gamma))) {
    throw new InvalidArgumentError(`${what} must be 'none' or { "minSnrGamma": a positive number }, got ${JSON.stringify(w)}`);
  }
  return w as LossWeighting;
}

/** The regression target of a model that predicts `predictionType`. */
export function predictionTarget(predictionType: PredictionType, x0: tf.Tensor, noise: tf.Tensor, t: Timesteps, schedule: NoiseSchedule): tf.Tensor {
  switch (checkPredictionType(predictionType)) {
    case 'epsilon':
      return noise.clone();
    case 'x0':
      return x0.clone();
    case 'v':
      return vFromEpsilonX0(noise, x0, t, schedule);
  }
}

/** min-SNR-γ weight for one example (see the header). */
export function minSnrWeight(snr: number, gamma: number, predictionType: PredictionType): number {
  if (!(gamma > 0)) throw new InvalidArgumentError(`minSnrGamma must be > 0, got ${gamma}`);
  const m = Math.min(snr, gamma);
  switch (checkPredictionType(predictionType)) {
    case 'epsilon':
      return m / snr;
    case 'x0':
      return m;
    case 'v':
      return m / (snr + 1);
  }
}

/** Mean squared error over every axis but the batch axis: [B]. */
export function perExampleMse(pred: tf.Tensor, target: tf.Tensor): tf.Tensor1D {
  assertSameShape(pred, target, 'model output vs target');
  return tf.tidy(() => {
    const sq = tf.squaredDifference(pred, target);
    return (sq.rank > 1 ? tf.mean(sq, [...Array(sq.rank).keys()].slice(1)) : sq) as tf.Tensor1D;
  });
}

export interface DiffusionLossOptions {
  /** What the model predicts, hence the target (default 'epsilon'). */
  predictionType?: PredictionType;
  weighting?: LossWeighting;
  /** Seeds the draw of t and ε (one stream; pass a new seed per training step). */
  seed?: number;
  /** Fixed timesteps instead of uniform draws (one, or one per example). */
  t?: Timesteps;
  /** Fixed noise instead of a seeded draw (shape of x0). */
  noise?: tf.Tensor;
  /** Class labels [B] passed to the model (already with any label dropout applied). */
  classes?: tf.Tensor1D;
}

/**
 * The batch's timesteps: drawn on the JS side when not given, else checked (arrays) or taken as they are (a tensor is
 * not read back: schedule.at looks its values up on the device). Numbers are expanded to one per example.
 */
function batchTimesteps(t: Timesteps | undefined, b: number, schedule: NoiseSchedule, seed: () => number): number[] | tf.Tensor1D {
  if (t === undefined) return Array.from(schedule.drawTimesteps(b, seed()));
  if (t instanceof tf.Tensor) {
    if (t.rank !== 1 || (t.shape[0] !== 1 && t.shape[0] !== b)) {
      throw new ShapeMismatchError(`t: expected 1 or ${b} timesteps (the batch size), got shape [${t.shape}]`);
    }
    return t;
  }
  const v = schedule.checkTimesteps(t);
  if (v.length === 1) return new Array(b).fill(v[0]);
  if (v.length !== b) throw new ShapeMismatchError(`t: expected 1 or ${b} timesteps (the batch size), got ${v.length}`);
  return v;
}

/** Per-example weighted loss [B]: draws t (uniform over 0 … T−1) and ε, noises x0, calls the model once. */
export function diffusionLossPerExample(model: Denoiser, x0: tf.Tensor, schedule: NoiseSchedule, opts: DiffusionLossOptions = {}): tf.Tensor1D {
  const predictionType = checkPredictionType(opts.predictionType ?? 'epsilon');
  if (x0.rank < 2) throw new ShapeMismatchError(`x0 must be a batch [B, …] of rank ≥ 2, got shape [${x0.shape}]`);
  const b = x0.shape[0];
  const seeds = seedStream(opts.seed);
  const ts = batchTimesteps(opts.t, b, schedule, seeds.next);
  const noiseSeed = seeds.next();
  if (opts.noise) assertSameShape(x0, opts.noise, 'diffusionLoss(x0, noise)');
  const w = checkLossWeighting(opts.weighting ?? 'none', 'weighting');
  // the weight of every timestep, computed once here (validates γ before any tensor is made)
  const weights = w === 'none' ? undefined : Array.from(schedule.snr, (snr) => minSnrWeight(snr, w.minSnrGamma, predictionType));
  return tf.tidy(() => {
    const noise = opts.noise ?? tf.randomNormal(x0.shape, 0, 1, 'float32', noiseSeed);
    const tTensor = ts instanceof tf.Tensor ? (ts.shape[0] === b ? ts : tf.broadcastTo(ts, [b]) as tf.Tensor1D) : tf.tensor1d(ts, 'int32');
    const xt = addNoise(x0, noise, ts, schedule);
    const out = model(xt, tTensor, opts.classes);
    const mse = perExampleMse(out, predictionTarget(predictionType, x0, noise, ts, schedule));
    if (!weights) return mse;
    return tf.mul(mse, schedule.lookup(weights, ts, 1));
  });
}

/** Scalar training loss (mean of diffusionLossPerExample); usable inside optimizer.minimize. */
export function diffusionLoss(model: Denoiser, x0: tf.Tensor, schedule: NoiseSchedule, opts: DiffusionLossOptions = {}): tf.Scalar {
  return tf.tidy(() => tf.mean(diffusionLossPerExample(model, x0, schedule, opts)));
}

export interface DsmLossOptions {
  seed?: number;
  noise?: tf.Tensor;
  /** 'none' (Vincent's loss at one σ) or 'sigma2' (λ(σ) = σ², Song & Ermon's choice across levels). Default 'none'. */
  weighting?: 'none' | 'sigma2';
}

/**
 * Denoising score matching at noise level σ (one number, or one per example): x̃ = x0 + σ·ε, target −ε/σ.
 * Returns the batch mean of the per-example mean squared error (Vincent's ½·Σ is this times D/2).
 */
export function dsmLoss(score: ScoreModel, x0: tf.Tensor, sigma: number | number[], opts: DsmLossOptions = {}): tf.Scalar {
  if (x0.rank < 2) throw new ShapeMismatchError(`x0 must be a batch [B, …] of rank ≥ 2, got shape [${x0.shape}]`);
  const b = x0.shape[0];
  const sig = typeof sigma === 'number' ? new Array<number>(b).fill(sigma) : sigma;
  if (sig.length !== b) throw new ShapeMismatchError(`sigma: expected 1 or ${b} noise levels, got ${sig.length}`);
  sig.forEach((s) => {
    if (!(s > 0) || !Number.isFinite(s)) throw new InvalidArgumentError(`noise level sigma must be a positive finite number, got ${s}`);
  });
  const weighting = opts.weighting ?? 'none';
  if (weighting !== 'none' && weighting !== 'sigma2') throw new InvalidArgumentError(`dsm weighting must be 'none' or 'sigma2', got '${weighting}'`);
  if (opts.noise) assertSameShape(x0, opts.noise, 'dsmLoss(x0, noise)');
  const noiseSeed = seedStream(opts.seed).next();
  return tf.tidy(() => {
    const noise = opts.noise ?? tf.randomNormal(x0.shape, 0, 1, 'float32', noiseSeed);
    const sigmaB = tf.tensor(sig, [b, ...new Array(x0.rank - 1).fill(1)]);
    const xTilde = tf.add(x0, tf.mul(sigmaB, noise));
    const target = tf.neg(tf.div(noise, sigmaB));
    const mse = perExampleMse(score(xTilde, tf.tensor1d(sig)), target);
    return tf.mean(weighting === 'sigma2' ? tf.mul(mse, tf.tensor1d(sig.map((s) => s * s))) : mse);
  });
}
