/**
 * Mode coverage: how the classifier's predicted classes of UNCONDITIONAL samples spread over the classes, against the
 * uniform distribution (a data set with balanced classes; for MNIST the training classes hold 9.0–11.2 % each, so
 * compare with the same figures of real images, realCoverage in lib/compare). With p the predicted-class frequencies
 * and K classes:
 *   entropy          H(p) = −Σ p_k ln p_k (nats; 0·ln 0 = 0), at most ln K (uniform)
 *   effective classes  e^H: K for uniform, 1 when every sample is one class (a perplexity)
 *   KL from uniform  KL(p ‖ U) = Σ p_k ln(K p_k) = ln K − H(p)
 *   total variation  TV(p, U) = ½ Σ |p_k − 1/K|: the share of samples that would have to change class to be uniform
 *   rare classes     the classes with p_k < ½ · 1/K (less than half their share)
 * A model that collapses onto a few modes scores low H and high TV even if each sample looks real (which FID would
 * only partly show); the reverse is not true: a uniform histogram says nothing about the diversity WITHIN a class.
 */
import { InvalidArgumentError } from '../errors';
import { classCounts } from './metrics';

export interface ModeCoverage {
  counts: number[];
  /** counts / total. */
  freqs: number[];
  total: number;
  entropy: number;
  /** H / ln K: 1 for uniform, 0 for a single class. */
  entropyRatio: number;
  effectiveClasses: number;
  klFromUniform: number;
  tvFromUniform: number;
  /** Classes with frequency < ½ / K. */
  rareClasses: number[];
}

/** H(p) in nats of a probability vector (entries ≥ 0 summing to 1 within 1e-9). */
export function entropy(p: readonly number[]): number {
  checkDistribution(p);
  return -p.reduce((s, v) => (v > 0 ? s + v * Math.log(v) : s), 0);
}

/** ½ Σ |p_k − 1/K|. */
export function tvFromUniform(p: readonly number[]): number {
  checkDistribution(p);
  return 0.5 * p.reduce((s, v) => s + Math.abs(v - 1 / p.length), 0);
}

/** KL(p ‖ U) = ln K − H(p), in nats. */
export function klFromUniform(p: readonly number[]): number {
  return Math.log(p.length) - entropy(p);
}

function checkDistribution(p: readonly number[]): void {
  if (p.length < 2) throw new InvalidArgumentError(`a distribution over ≥ 2 classes is needed, got ${p.length} entries`);
  if (p.some((v) => !(v >= 0 && Number.isFinite(v)))) throw new InvalidArgumentError(`probabilities must be finite and ≥ 0, got [${p.join(', ')}]`);
  const s = p.reduce((a, b) => a + b, 0);
  if (Math.abs(s - 1) > 1e-9) throw new InvalidArgumentError(`probabilities must sum to 1, got ${s}`);
}

/** The class histogram of `predictions` (ints in 0…K−1) and its distances from uniform. */
export function modeCoverage(predictions: ArrayLike<number>, numClasses = 10): ModeCoverage {
  if (predictions.length === 0) throw new InvalidArgumentError('modeCoverage: no predictions given');
  const counts = classCounts(predictions, numClasses);
  const total = predictions.length;
  const freqs = counts.map((c) => c / total);
  const h = entropy(freqs);
  return {
    counts, freqs, total, entropy: h, entropyRatio: h / Math.log(numClasses), effectiveClasses: Math.exp(h),
    klFromUniform: Math.log(numClasses) - h, tvFromUniform: tvFromUniform(freqs),
    rareClasses: freqs.flatMap((f, k) => (f < 0.5 / numClasses ? [k] : [])),
  };
}
