/**
 * Sample-quality metrics, all in float64 JS on arrays the classifier produced:
 *  - conditional accuracy: how often a sample generated for class c is classified as c;
 *  - classifier-feature FID: the Fréchet (2-Wasserstein) distance between Gaussian fits of two feature sets,
 *      FID = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr √(Σ₁Σ₂);
 *  - the real-vs-real floor: the same distance between two disjoint sets of real digits, the best a model can hope for
 *    at that sample size (FID estimated from few samples is biased upwards, so compare only at equal sizes);
 *  - within-class spread: tr Σ_c of each class's features, averaged over the classes (diversity within a class).
 */
import { InvalidArgumentError, NonFiniteError, ShapeMismatchError } from '../errors';
import { makeRng, shuffle } from '../random';
import { traceSqrtProduct } from './linalg';

export interface ClassAccuracy {
  correct: number;
  total: number;
  /** correct / total, or NaN when the class had no samples. */
  accuracy: number;
}

export interface ConditionalAccuracy {
  overall: number;
  correct: number;
  total: number;
  perClass: ClassAccuracy[];
  /** confusion[intended][predicted] counts. */
  confusion: number[][];
}

/** Fraction of samples classified as the class they were generated for, per class and overall. */
export function conditionalAccuracy(
  predicted: ArrayLike<number>,
  intended: ArrayLike<number>,
  numClasses = 10,
): ConditionalAccuracy {
  if (predicted.length !== intended.length) {
    throw new ShapeMismatchError(`conditionalAccuracy: ${predicted.length} predictions but ${intended.length} intended labels`);
  }
  if (predicted.length === 0) throw new InvalidArgumentError('conditionalAccuracy: no samples given');
  const confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < predicted.length; i++) {
    const p = predicted[i];
    const c = intended[i];
    for (const [what, v] of [['predicted', p], ['intended', c]] as const) {
      if (!Number.isInteger(v) || v < 0 || v >= numClasses) {
        throw new InvalidArgumentError(`conditionalAccuracy: ${what} label at ${i} is ${v}, expected an integer in 0…${numClasses - 1}`);
      }
    }
    confusion[c][p]++;
  }
  let correct = 0;
  const perClass = confusion.map((row, c) => {
    const total = row.reduce((a, b) => a + b, 0);
    correct += row[c];
    return { correct: row[c], total, accuracy: total > 0 ? row[c] / total : NaN };
  });
  return { overall: correct / predicted.length, correct, total: predicted.length, perClass, confusion };
}

export interface GaussianFit {
  dim: number;
  count: number;
  mean: Float64Array;
  /** Row-major dim×dim, unbiased (divides by count − 1). */
  cov: Float64Array;
}

/** Mean and covariance of `count` feature rows stored row-major in `features` ([count, dim]). */
export function gaussianFit(features: ArrayLike<number>, dim: number): GaussianFit {
  if (!Number.isInteger(dim) || dim < 1) throw new InvalidArgumentError(`gaussianFit: dim must be a positive integer, got ${dim}`);
  if (features.length % dim !== 0) {
    throw new ShapeMismatchError(`gaussianFit: ${features.length} values is not a whole number of ${dim}-dimensional rows`);
  }
  const count = features.length / dim;
  if (count < 2) throw new InvalidArgumentError(`gaussianFit: need at least 2 feature rows for a covariance, got ${count}`);
  const mean = new Float64Array(dim);
  for (let i = 0; i < features.length; i++) {
    const v = features[i];
    if (!Number.isFinite(v)) throw new NonFiniteError(`gaussianFit: feature value ${i} (row ${Math.floor(i / dim)}) is ${v}`);
    mean[i % dim] += v;
  }
  for (let j = 0; j < dim; j++) mean[j] /= count;
  const cov = new Float64Array(dim * dim);
  const centred = new Float64Array(dim);
  for (let r = 0; r < count; r++) {
    for (let j = 0; j < dim; j++) centred[j] = features[r * dim + j] - mean[j];
    for (let i = 0; i < dim; i++) {
      const ci = centred[i];
      if (ci === 0) continue;
      for (let j = i; j < dim; j++) cov[i * dim + j] += ci * centred[j];
    }
  }
  for (let i = 0; i < dim; i++) {
    for (let j = i; j < dim; j++) {
      const v = cov[i * dim + j] / (count - 1);
      cov[i * dim + j] = v;
      cov[j * dim + i] = v;
    }
  }
  return { dim, count, mean, cov };
}

/** Fréchet distance between two Gaussians N(μ₁, Σ₁), N(μ₂, Σ₂). */
export function frechetDistance(a: GaussianFit, b: GaussianFit): number {
  if (a.dim !== b.dim) throw new ShapeMismatchError(`frechetDistance: dimensions differ (${a.dim} vs ${b.dim})`);
  const n = a.dim;
  let meanTerm = 0;
  let traces = 0;
  for (let i = 0; i < n; i++) {
    const d = a.mean[i] - b.mean[i];
    meanTerm += d * d;
    traces += a.cov[i * n + i] + b.cov[i * n + i];
  }
  const value = meanTerm + traces - 2 * traceSqrtProduct(a.cov, b.cov, n);
  // A squared distance: a negative value can only be rounding (identical sets give ≈ −1e-12).
  return Math.max(0, value);
}

/** FID between two feature sets (row-major [n, dim] each). */
export function featureFid(a: ArrayLike<number>, b: ArrayLike<number>, dim: number): number {
  return frechetDistance(gaussianFit(a, dim), gaussianFit(b, dim));
}

/**
 * Diversity within classes: the trace of the (unbiased) covariance of each class's feature rows, tr Σ_c = Σ_j Var(f_j),
 * averaged over the classes that occur. Rows are row-major [n, dim] in `features`, labelled by `labels`.
 * Equals half the mean squared distance between two different rows of a class, so it shrinks as samples of a class
 * collapse onto one shape (what strong guidance does); compare it only between sets with the same class counts.
 */
export function withinClassSpread(features: ArrayLike<number>, dim: number, labels: ArrayLike<number>, numClasses = 10): number {
  if (!Number.isInteger(dim) || dim < 1) throw new InvalidArgumentError(`withinClassSpread: dim must be a positive integer, got ${dim}`);
  if (features.length !== labels.length * dim) {
    throw new ShapeMismatchError(`withinClassSpread: ${features.length} feature values is not ${labels.length} labelled rows of ${dim}`);
  }
  const counts = classCounts(labels, numClasses); // validates the labels
  const sums = new Float64Array(numClasses * dim);
  for (let i = 0; i < features.length; i++) {
    const v = features[i];
    if (!Number.isFinite(v)) throw new NonFiniteError(`withinClassSpread: feature value ${i} (row ${Math.floor(i / dim)}) is ${v}`);
    sums[labels[Math.floor(i / dim)] * dim + (i % dim)] += v;
  }
  // Second pass on centred values: Σ(x − μ)² does not cancel the way Σx² − nμ² does for features far from 0.
  const squares = new Float64Array(numClasses);
  for (let r = 0; r < labels.length; r++) {
    const c = labels[r];
    for (let j = 0; j < dim; j++) {
      const d = features[r * dim + j] - sums[c * dim + j] / counts[c];
      squares[c] += d * d;
    }
  }
  let total = 0;
  let present = 0;
  for (let c = 0; c < numClasses; c++) {
    if (counts[c] === 0) continue;
    if (counts[c] < 2) throw new InvalidArgumentError(`withinClassSpread: class ${c} has 1 row; a covariance needs at least 2 per class`);
    total += squares[c] / (counts[c] - 1);
    present++;
  }
  if (present === 0) throw new InvalidArgumentError('withinClassSpread: no rows given');
  return total / present;
}

/** Rows `indices` of a row-major [n, dim] array, as a new array. */
export function selectRows(features: ArrayLike<number>, dim: number, indices: ArrayLike<number>): Float32Array {
  const n = features.length / dim;
  const out = new Float32Array(indices.length * dim);
  for (let k = 0; k < indices.length; k++) {
    const r = indices[k];
    if (!Number.isInteger(r) || r < 0 || r >= n) throw new InvalidArgumentError(`selectRows: row index ${r} outside 0…${n - 1}`);
    for (let j = 0; j < dim; j++) out[k * dim + j] = features[r * dim + j];
  }
  return out;
}

/** A seeded split of 0…n−1 into two disjoint halves of sizes ⌊n/2⌋ and ⌈n/2⌉. */
export function splitHalves(n: number, seed: number): [number[], number[]] {
  if (!Number.isInteger(n) || n < 4) throw new InvalidArgumentError(`splitHalves: need at least 4 items, got ${n}`);
  const idx = shuffle(Array.from({ length: n }, (_, i) => i), makeRng(seed));
  const half = Math.floor(n / 2);
  return [idx.slice(0, half).sort((x, y) => x - y), idx.slice(half).sort((x, y) => x - y)];
}

/**
 * Up to `perClass` indices of each class among `indices` (seeded choice), so that a real comparison set has the same
 * class balance as the samples it stands beside. `perClass` is one count for every class or a count per class;
 * a class with fewer items contributes all it has.
 */
export function balancedSubset(
  labels: ArrayLike<number>,
  indices: readonly number[],
  perClass: number | ArrayLike<number>,
  seed: number,
  numClasses = 10,
): number[] {
  const counts = typeof perClass === 'number' ? new Array<number>(numClasses).fill(perClass) : Array.from(perClass);
  if (counts.length !== numClasses || counts.some((c) => !Number.isInteger(c) || c < 0)) {
    throw new InvalidArgumentError(`balancedSubset: perClass must be a count ≥ 0 or ${numClasses} of them, got ${JSON.stringify(perClass)}`);
  }
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (const i of indices) {
    const c = labels[i];
    if (!Number.isInteger(c) || c < 0 || c >= numClasses) {
      throw new InvalidArgumentError(`balancedSubset: label of item ${i} is ${c}, expected an integer in 0…${numClasses - 1}`);
    }
    byClass[c].push(i);
  }
  const rng = makeRng(seed);
  return byClass.flatMap((members, c) => shuffle(members, rng).slice(0, counts[c])).sort((x, y) => x - y);
}

/** How many of `labels` fall in each class. */
export function classCounts(labels: ArrayLike<number>, numClasses = 10): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    if (!Number.isInteger(c) || c < 0 || c >= numClasses) {
      throw new InvalidArgumentError(`classCounts: label ${i} is ${c}, expected an integer in 0…${numClasses - 1}`);
    }
    counts[c]++;
  }
  return counts;
}

/** A seeded split of the items of each class into two halves (the first gets ⌊n/2⌋ of each class). */
export function stratifiedHalves(labels: ArrayLike<number>, seed: number, numClasses = 10): [number[], number[]] {
  classCounts(labels, numClasses); // validates the labels
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]].push(i);
  const rng = makeRng(seed);
  const a: number[] = [];
  const b: number[] = [];
  for (const members of byClass) {
    shuffle(members, rng);
    const half = Math.floor(members.length / 2);
    a.push(...members.slice(0, half));
    b.push(...members.slice(half));
  }
  if (a.length < 2 || b.length < 2) throw new InvalidArgumentError(`stratifiedHalves: ${labels.length} items are too few to split`);
  return [a.sort((x, y) => x - y), b.sort((x, y) => x - y)];
}

export interface FidReport {
  /** FID(samples, reference). */
  fid: number;
  /** FID(real comparison set with the samples' class counts, reference): the floor. */
  floor: number;
  referenceCount: number;
  sampleCount: number;
  floorCount: number;
}

/** The reference half's Gaussian fit and the floor's comparison draw, as fidWithFloor makes them (seeded). */
function referenceAndComparison(
  realFeatures: ArrayLike<number>,
  realLabels: ArrayLike<number>,
  dim: number,
  sampleLabels: ArrayLike<number>,
  seed: number,
  numClasses: number,
): { reference: GaussianFit; comparison: GaussianFit } {
  const nReal = realFeatures.length / dim;
  if (realLabels.length !== nReal) throw new ShapeMismatchError(`fidWithFloor: ${nReal} real feature rows but ${realLabels.length} labels`);
  const [refIdx, otherIdx] = stratifiedHalves(realLabels, seed, numClasses);
  const reference = gaussianFit(selectRows(realFeatures, dim, refIdx), dim);
  const floorIdx = balancedSubset(realLabels, otherIdx, classCounts(sampleLabels, numClasses), seed + 1, numClasses);
  return { reference, comparison: gaussianFit(selectRows(realFeatures, dim, floorIdx), dim) };
}

/**
 * The real-vs-real floor that fidWithFloor reports for samples with these labels (same seed, same real images), without
 * any samples: it depends only on the samples' class counts. A sweep of many sample sets with the same labels needs it once.
 */
export function realFloor(
  realFeatures: ArrayLike<number>,
  realLabels: ArrayLike<number>,
  dim: number,
  sampleLabels: ArrayLike<number>,
  options: { seed?: number; numClasses?: number } = {},
): number {
  const { reference, comparison } = referenceAndComparison(realFeatures, realLabels, dim, sampleLabels, options.seed ?? 0, options.numClasses ?? 10);
  return frechetDistance(comparison, reference);
}

/**
 * Feature-FID of samples against held-out real images, with its floor measured the same way.
 * The real images are split (seeded, per class) into a reference half and a comparison half. The samples, and a draw
 * from the comparison half with the samples' class counts, are each compared with the reference half: the two numbers
 * share reference, sample size and class balance, and differ only by how real the samples look.
 */
export function fidWithFloor(
  sampleFeatures: ArrayLike<number>,
  sampleLabels: ArrayLike<number>,
  realFeatures: ArrayLike<number>,
  realLabels: ArrayLike<number>,
  dim: number,
  options: { seed?: number; numClasses?: number } = {},
): FidReport {
  const nSamples = sampleFeatures.length / dim;
  if (sampleLabels.length !== nSamples) throw new ShapeMismatchError(`fidWithFloor: ${nSamples} sample feature rows but ${sampleLabels.length} labels`);
  const { reference, comparison } = referenceAndComparison(realFeatures, realLabels, dim, sampleLabels, options.seed ?? 0, options.numClasses ?? 10);
  const samples = gaussianFit(sampleFeatures, dim);
  return {
    fid: frechetDistance(samples, reference),
    floor: frechetDistance(comparison, reference),
    referenceCount: reference.count,
    sampleCount: samples.count,
    floorCount: comparison.count,
  };
}
