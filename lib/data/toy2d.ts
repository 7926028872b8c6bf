/**
 * Seeded 2-D data sets for the early notebooks, and a Gaussian mixture whose density and noisy score are known exactly
 * (the score-matching notebook compares a DSM-trained MLP with `scoreAt`).
 *
 * Samples are drawn in plain JS with lib/random (same seed → same points on every backend) and returned as
 * float32 tensors [n, 2] that the caller disposes.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../errors';
import { makeRng, normal, Rng } from '../random';

export interface ToyOptions {
  seed?: number;
  /** Standard deviation of isotropic Gaussian noise added to every point. */
  noise?: number;
}

function checkCount(n: number): void {
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`n must be a positive integer, got ${n}`);
}

function checkNonNegative(name: string, v: number): void {
  if (!(Number.isFinite(v) && v >= 0)) throw new InvalidArgumentError(`${name} must be a finite number ≥ 0, got ${v}`);
}

function points(n: number, rng: Rng, noise: number, at: (u: number) => [number, number]): tf.Tensor2D {
  const out = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const [px, py] = at(rng());
    out[2 * i] = px + noise * normal(rng);
    out[2 * i + 1] = py + noise * normal(rng);
  }
  return tf.tensor2d(out, [n, 2], 'float32');
}

/**
 * Two interleaved half circles (as scikit-learn's make_moons), centred at the origin: upper moon centre (−0.5, −0.25),
 * lower moon centre (0.5, 0.25), radius 1. Each point picks a moon with probability ½.
 */
export function twoMoons(n: number, opts: ToyOptions = {}): tf.Tensor2D {
  checkCount(n);
  const noise = opts.noise ?? 0.05;
  checkNonNegative('noise', noise);
  const rng = makeRng(opts.seed ?? 0);
  return points(n, rng, noise, (u) => {
    // u < ½ → upper moon at angle 2πu ∈ [0, π); else lower moon at angle 2πu − π.
    const upper = u < 0.5;
    const a = upper ? 2 * Math.PI * u : 2 * Math.PI * u - Math.PI;
    return upper ? [Math.cos(a) - 0.5, Math.sin(a) - 0.25] : [1 - Math.cos(a) - 0.5, 0.25 - Math.sin(a)];
  });
}

/**
 * A 2-D swiss roll: θ uniform in [1.5π, 4.5π], point θ·(cos θ, sin θ) / 5, so that it spans about [−2.7, 2.8].
 */
export function swissRoll(n: number, opts: ToyOptions = {}): tf.Tensor2D {
  checkCount(n);
  const noise = opts.noise ?? 0.05;
  checkNonNegative('noise', noise);
  const rng = makeRng(opts.seed ?? 0);
  return points(n, rng, noise, (u) => {
    const t = 1.5 * Math.PI * (1 + 2 * u);
    return [(t * Math.cos(t)) / 5, (t * Math.sin(t)) / 5];
  });
}

export interface MixtureSpec {
  /** Component means [K][d]. */
  means: number[][];
  /** Isotropic standard deviation of each component [K] (or one for all). */
  stds: number[] | number;
  /** Mixture weights [K], positive; normalised here. Default uniform. */
  weights?: number[];
}

export interface GaussianMixture {
  readonly dim: number;
  readonly means: number[][];
  readonly stds: number[];
  readonly weights: number[];
  /** n seeded samples, float32 [n, d]. */
  sample(n: number, seed?: number): tf.Tensor2D;
  /**
   * log density of the mixture convolved with N(0, σ²I) (σ = 0: the mixture itself), float32 [N].
   * Each component N(μ_k, s_k²I) becomes N(μ_k, (s_k² + σ²)I).
   */
  logDensity(x: tf.Tensor2D, sigma?: number): tf.Tensor1D;
  /**
   * Score ∇ₓ log p_σ(x) of the mixture convolved with N(0, σ²I), float32 [N, d]:
   *   Σ_k r_k(x) (μ_k − x) / (s_k² + σ²),  r_k = softmax_k(log w_k + log N(x; μ_k, (s_k² + σ²)I)).
   * This is the target that denoising score matching at noise level σ learns.
   */
  scoreAt(x: tf.Tensor2D, sigma?: number): tf.Tensor2D;
}

/** The eight-Gaussians ring often used in diffusion tutorials: means on a circle of `radius`, equal weights. */
export function ringOfGaussians(k = 8, radius = 2, std = 0.2): MixtureSpec {
  checkCount(k);
  const means = Array.from({ length: k }, (_, i) => {
    const a = (2 * Math.PI * i) / k;
    return [radius * Math.cos(a), radius * Math.sin(a)];
  });
  return { means, stds: std };
}

export function gaussianMixture(spec: MixtureSpec): GaussianMixture {
  const K = spec.means.length;
  if (K === 0) throw new InvalidArgumentError('gaussianMixture: means is empty; expected at least one component');
  const dim = spec.means[0].length;
  if (dim === 0 || spec.means.some((m) => m.length !== dim || m.some((v) => !Number.isFinite(v)))) {
    throw new InvalidArgumentError(`gaussianMixture: every mean must be ${dim || '≥1'} finite numbers`);
  }
  const stds = typeof spec.stds === 'number' ? new Array<number>(K).fill(spec.stds) : spec.stds.slice();
  if (stds.length !== K || stds.some((s) => !(Number.isFinite(s) && s > 0))) {
    throw new InvalidArgumentError(`gaussianMixture: stds must be ${K} finite numbers > 0, got ${JSON.stringify(spec.stds)}`);
  }
  const raw = spec.weights ?? new Array<number>(K).fill(1);
  if (raw.length !== K || raw.some((w) => !(Number.isFinite(w) && w > 0))) {
    throw new InvalidArgumentError(`gaussianMixture: weights must be ${K} finite numbers > 0, got ${JSON.stringify(raw)}`);
  }
  const total = raw.reduce((a, b) => a + b, 0);
  const weights = raw.map((w) => w / total);
  const means = spec.means.map((m) => m.slice());

  const checkX = (x: tf.Tensor, what: string) => {
    if (x.rank !== 2 || x.shape[1] !== dim) {
      throw new ShapeMismatchError(`${what}: x must be [N, ${dim}], got [${x.shape.join(', ')}]`);
    }
  };
  const checkSigma = (sigma: number) => checkNonNegative('sigma', sigma);

  /** Per-point, per-component log(w_k N(x; μ_k, v_k I)) [N, K] and x − μ_k [N, K, d]. */
  const parts = (x: tf.Tensor2D, sigma: number) => {
    const mu = tf.tensor2d(means, [K, dim]);
    const v = tf.tensor1d(stds.map((s) => s * s + sigma * sigma)); // [K]
    const diff = tf.sub(tf.expandDims(x, 1), tf.expandDims(mu, 0)) as tf.Tensor3D; // [N, K, d]
    const sq = tf.sum(tf.square(diff), 2); // [N, K]
    const logNorm = tf.mul(-dim / 2, tf.log(tf.mul(2 * Math.PI, v))); // [K]
    const logits = tf.add(tf.add(tf.div(tf.mul(-0.5, sq), v), logNorm), tf.log(tf.tensor1d(weights)));
    return { logits: logits as tf.Tensor2D, diff, v };
  };

  return {
    dim,
    means,
    stds,
    weights,
    sample(n: number, seed = 0): tf.Tensor2D {
      checkCount(n);
      const rng = makeRng(seed);
      const out = new Float32Array(n * dim);
      for (let i = 0; i < n; i++) {
        let u = rng();
        let k = 0;
        while (k < K - 1 && u >= weights[k]) u -= weights[k++];
        for (let j = 0; j < dim; j++) out[i * dim + j] = means[k][j] + stds[k] * normal(rng);
      }
      return tf.tensor2d(out, [n, dim], 'float32');
    },
    logDensity(x: tf.Tensor2D, sigma = 0): tf.Tensor1D {
      checkX(x, 'logDensity');
      checkSigma(sigma);
      return tf.tidy(() => tf.logSumExp(parts(x, sigma).logits, 1) as tf.Tensor1D);
    },
    scoreAt(x: tf.Tensor2D, sigma = 0): tf.Tensor2D {
      checkX(x, 'scoreAt');
      checkSigma(sigma);
      return tf.tidy(() => {
        const { logits, diff, v } = parts(x, sigma);
        const r = tf.softmax(logits, 1); // [N, K] responsibilities
        // Σ_k r_k (μ_k − x) / v_k = −Σ_k (r_k / v_k) (x − μ_k)
        const coef = tf.expandDims(tf.div(r, v), 2); // [N, K, 1]
        return tf.neg(tf.sum(tf.mul(coef, diff), 1)) as tf.Tensor2D;
      });
    },
  };
}
