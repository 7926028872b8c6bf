import { expect } from 'chai';
import { InvalidArgumentError, NonFiniteError, ShapeMismatchError } from '../../lib/errors';
import { makeRng, normal, Rng } from '../../lib/random';
import { matMul, sqrtPsd, symmetricEigen, traceSqrtProduct } from '../../lib/eval/linalg';
import {
  balancedSubset,
  classCounts,
  conditionalAccuracy,
  featureFid,
  fidWithFloor,
  frechetDistance,
  gaussianFit,
  GaussianFit,
  splitHalves,
  stratifiedHalves,
  withinClassSpread,
} from '../../lib/eval/metrics';

// ---- independent helpers (test side only) ----
function randomOrthogonal(n: number, rng: Rng): Float64Array {
  // Gram–Schmidt on a Gaussian matrix (columns).
  const q = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const col = Array.from({ length: n }, () => normal(rng));
    for (let j = 0; j < k; j++) {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += col[i] * q[i * n + j];
      for (let i = 0; i < n; i++) col[i] -= dot * q[i * n + j];
    }
    const norm = Math.hypot(...col);
    for (let i = 0; i < n; i++) q[i * n + k] = col[i] / norm;
  }
  return q;
}
function fromEigen(q: Float64Array, values: number[]): Float64Array {
  const n = values.length;
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) out[i * n + j] += q[i * n + k] * values[k] * q[j * n + k];
  return out;
}
function randomSpd(n: number, rng: Rng): Float64Array {
  const a = Float64Array.from({ length: n * n }, () => normal(rng));
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      for (let k = 0; k < n; k++) out[i * n + j] += a[i * n + k] * a[j * n + k];
      if (i === j) out[i * n + j] += 0.5;
    }
  return out;
}
function fit(mean: number[], cov: Float64Array): GaussianFit {
  return { dim: mean.length, count: 1000, mean: Float64Array.from(mean), cov };
}
function diag(values: number[]): Float64Array {
  const n = values.length;
  const out = new Float64Array(n * n);
  values.forEach((v, i) => (out[i * n + i] = v));
  return out;
}
function inverse(a: Float64Array, n: number): Float64Array {
  // Gauss–Jordan with partial pivoting.
  const m = Array.from({ length: n }, (_, i) => [...Array.from(a.slice(i * n, i * n + n)), ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    [m[c], m[p]] = [m[p], m[c]];
    const pv = m[c][c];
    for (let j = 0; j < 2 * n; j++) m[c][j] /= pv;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r][c];
      for (let j = 0; j < 2 * n; j++) m[r][j] -= f * m[c][j];
    }
  }
  return Float64Array.from(m.flatMap((row) => row.slice(n)));
}
/** tr √M for a matrix with positive real spectrum, by the Denman–Beavers iteration (no eigen-decomposition). */
function traceSqrtDenmanBeavers(mat: Float64Array, n: number): number {
  let y = Float64Array.from(mat);
  let z = diag(new Array(n).fill(1));
  for (let it = 0; it < 60; it++) {
    const yi = inverse(y, n);
    const zi = inverse(z, n);
    y = y.map((v, i) => 0.5 * (v + zi[i]));
    z = z.map((v, i) => 0.5 * (v + yi[i]));
  }
  let tr = 0;
  for (let i = 0; i < n; i++) tr += y[i * n + i];
  return tr;
}
function gaussianRows(count: number, mean: number[], scale: number[], rng: Rng): Float32Array {
  const d = mean.length;
  const out = new Float32Array(count * d);
  for (let r = 0; r < count; r++) for (let j = 0; j < d; j++) out[r * d + j] = mean[j] + scale[j] * normal(rng);
  return out;
}

describe('eval/linalg', () => {
  it('symmetricEigen reconstructs A with orthonormal eigenvectors', () => {
    const n = 12;
    const a = randomSpd(n, makeRng(1));
    const { values, vectors } = symmetricEigen(a, n);
    const back = fromEigen(vectors, Array.from(values));
    for (let i = 0; i < n * n; i++) expect(back[i]).to.be.closeTo(a[i], 1e-10 * 50);
    const vtv = matMul(Float64Array.from({ length: n * n }, (_, k) => vectors[(k % n) * n + Math.floor(k / n)]), vectors, n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) expect(vtv[i * n + j]).to.be.closeTo(i === j ? 1 : 0, 1e-12);
  });

  it('symmetricEigen finds known eigenvalues of Q diag(λ) Qᵀ', () => {
    const lambdas = [5, 3, 1, 0.25, 0, 0];
    const a = fromEigen(randomOrthogonal(6, makeRng(2)), lambdas);
    const got = Array.from(symmetricEigen(a, 6).values).sort((x, y) => y - x);
    got.forEach((v, i) => expect(v).to.be.closeTo(lambdas[i], 1e-12));
  });

  it('sqrtPsd squares back to A, also for a singular A', () => {
    const n = 7;
    const a = fromEigen(randomOrthogonal(n, makeRng(3)), [4, 2, 1, 0.5, 0, 0, 0]);
    const r = sqrtPsd(a, n);
    const rr = matMul(r, r, n);
    for (let i = 0; i < n * n; i++) expect(rr[i]).to.be.closeTo(a[i], 1e-12);
  });

  it('traceSqrtProduct matches the 2×2 closed form tr√M = √(tr M + 2√det M) for non-commuting A, B', () => {
    const a = Float64Array.from([2, 0.7, 0.7, 1]);
    const b = Float64Array.from([0.5, -0.3, -0.3, 3]);
    const m = matMul(a, b, 2);
    const expected = Math.sqrt(m[0] + m[3] + 2 * Math.sqrt(m[0] * m[3] - m[1] * m[2]));
    expect(traceSqrtProduct(a, b, 2)).to.be.closeTo(expected, 1e-13);
  });

  it('traceSqrtProduct matches the Denman–Beavers iteration on random 6×6 SPD pairs', () => {
    const rng = makeRng(4);
    for (let trial = 0; trial < 3; trial++) {
      const a = randomSpd(6, rng);
      const b = randomSpd(6, rng);
      const expected = traceSqrtDenmanBeavers(matMul(a, b, 6), 6);
      expect(traceSqrtProduct(a, b, 6)).to.be.closeTo(expected, 1e-9 * expected);
    }
  });

  it('rejects wrong sizes and non-finite entries with named errors', () => {
    expect(() => symmetricEigen([1, 2, 3], 2)).to.throw(ShapeMismatchError, /2×2/);
    expect(() => symmetricEigen([1, NaN, NaN, 1], 2)).to.throw(NonFiniteError);
    expect(() => symmetricEigen([], 0)).to.throw(InvalidArgumentError);
  });
});

describe('eval/metrics: Fréchet distance', () => {
  it('1-D: (μ₁ − μ₂)² + (σ₁ − σ₂)²', () => {
    const d = frechetDistance(fit([1.5], diag([4])), fit([-0.5], diag([0.25])));
    expect(d).to.be.closeTo(2 * 2 + (2 - 0.5) ** 2, 1e-12);
  });

  it('diagonal covariances: ‖Δμ‖² + Σ(√aᵢ − √bᵢ)²', () => {
    const a = [1, 4, 9, 0.01];
    const b = [2, 1, 9, 0];
    const expected = 1 + 4 + a.reduce((s, ai, i) => s + (Math.sqrt(ai) - Math.sqrt(b[i])) ** 2, 0);
    expect(frechetDistance(fit([1, 2, 0, 0], diag(a)), fit([0, 0, 0, 0], diag(b)))).to.be.closeTo(expected, 1e-12);
  });

  it('commuting covariances (shared random eigenbasis) reduce to the diagonal formula', () => {
    const q = randomOrthogonal(8, makeRng(5));
    const a = [3, 2, 1, 0.5, 0.2, 0.1, 0.05, 0];
    const b = [1, 1, 2, 0.1, 0.2, 0.3, 0, 0.4];
    const expected = a.reduce((s, ai, i) => s + (Math.sqrt(ai) - Math.sqrt(b[i])) ** 2, 0);
    const zero = new Array(8).fill(0);
    // Zero eigenvalues: rounding of ~1e-16 in Σ₁Σ₂ becomes ~1e-8 after the square root (√ is steep at 0), for any method.
    expect(frechetDistance(fit(zero, fromEigen(q, a)), fit(zero, fromEigen(q, b)))).to.be.closeTo(expected, 1e-7);
  });

  it('is symmetric, zero for identical sets, and positive for different ones', () => {
    const rng = makeRng(6);
    const x = gaussianRows(300, [0, 1, 2, 3, 4], [1, 2, 0.5, 1, 3], rng);
    const y = gaussianRows(300, [0.5, 1, 2, 3, 4], [1, 1, 0.5, 1, 3], rng);
    expect(featureFid(x, x, 5)).to.be.below(1e-9);
    expect(featureFid(x, y, 5)).to.be.closeTo(featureFid(y, x, 5), 1e-9);
    expect(featureFid(x, y, 5)).to.be.above(0.5);
  });

  it('stays finite when there are fewer samples than dimensions (singular covariances)', () => {
    const rng = makeRng(7);
    const d = 20;
    const zeros = new Array(d).fill(0);
    const ones = new Array(d).fill(1);
    const x = gaussianRows(8, zeros, ones, rng);
    const y = gaussianRows(8, zeros, ones, rng);
    const v = featureFid(x, y, d);
    expect(Number.isFinite(v)).to.equal(true);
    expect(featureFid(x, x, d)).to.be.below(1e-9);
  });

  it('gaussianFit: mean and unbiased covariance by hand', () => {
    const g = gaussianFit([1, 2, 3, 4, 5, 0], 2);
    expect(Array.from(g.mean)).to.deep.equal([3, 2]);
    // deviations (-2,0) (0,2) (2,-2): Σxx = 8/2, Σxy = -4/2, Σyy = 8/2
    expect(Array.from(g.cov)).to.deep.equal([4, -2, -2, 4]);
    expect(g.count).to.equal(3);
  });

  it('gaussianFit rejects ragged rows, a single row and NaN features', () => {
    expect(() => gaussianFit([1, 2, 3], 2)).to.throw(ShapeMismatchError);
    expect(() => gaussianFit([1, 2], 2)).to.throw(InvalidArgumentError, /at least 2/);
    expect(() => gaussianFit([1, NaN, 3, 4], 2)).to.throw(NonFiniteError, /row 0/);
    expect(() => frechetDistance(fit([0], diag([1])), fit([0, 0], diag([1, 1])))).to.throw(ShapeMismatchError);
  });
});

describe('eval/metrics: accuracy and floor bookkeeping', () => {
  it('conditionalAccuracy counts per class, overall and the confusion matrix', () => {
    const intended = [0, 0, 0, 1, 1, 2];
    const predicted = [0, 1, 0, 1, 1, 0];
    const r = conditionalAccuracy(predicted, intended, 3);
    expect(r.correct).to.equal(4);
    expect(r.overall).to.be.closeTo(4 / 6, 1e-15);
    expect(r.perClass.map((c) => [c.correct, c.total])).to.deep.equal([[2, 3], [2, 2], [0, 1]]);
    expect(r.perClass[0].accuracy).to.be.closeTo(2 / 3, 1e-15);
    expect(r.confusion).to.deep.equal([[2, 1, 0], [0, 2, 0], [1, 0, 0]]);
    expect(Number.isNaN(conditionalAccuracy([0], [0], 3).perClass[2].accuracy)).to.equal(true);
  });

  it('conditionalAccuracy rejects mismatched lengths and labels out of range', () => {
    expect(() => conditionalAccuracy([0, 1], [0], 10)).to.throw(ShapeMismatchError);
    expect(() => conditionalAccuracy([10], [0], 10)).to.throw(InvalidArgumentError, /predicted/);
    expect(() => conditionalAccuracy([0], [-1], 10)).to.throw(InvalidArgumentError, /intended/);
    expect(() => conditionalAccuracy([], [], 10)).to.throw(InvalidArgumentError);
  });

  it('splitHalves is a seeded disjoint cover; balancedSubset takes perClass of each class', () => {
    const [a, b] = splitHalves(11, 3);
    expect(a.length).to.equal(5);
    expect(b.length).to.equal(6);
    expect([...a, ...b].sort((x, y) => x - y)).to.deep.equal(Array.from({ length: 11 }, (_, i) => i));
    expect(splitHalves(11, 3)).to.deep.equal([a, b]);
    expect(splitHalves(11, 4)).to.not.deep.equal([a, b]);
    const labels = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0];
    const pick = balancedSubset(labels, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 2, 0, 3);
    expect(pick.map((i) => labels[i]).sort()).to.deep.equal([0, 0, 1, 1, 2, 2]);
    expect(() => balancedSubset([5], [0], 1, 0, 3)).to.throw(InvalidArgumentError);
  });

  it('stratifiedHalves splits each class in two; classCounts counts', () => {
    const labels = [0, 0, 0, 0, 1, 1, 2, 2, 2];
    const [a, b] = stratifiedHalves(labels, 0, 3);
    expect(classCounts(a.map((i) => labels[i]), 3)).to.deep.equal([2, 1, 1]);
    expect(classCounts(b.map((i) => labels[i]), 3)).to.deep.equal([2, 1, 2]);
    expect([...a, ...b].sort((x, y) => x - y)).to.deep.equal(labels.map((_, i) => i));
    expect(() => classCounts([3], 3)).to.throw(InvalidArgumentError);
    expect(() => stratifiedHalves([0, 1, 5, 0, 1], 0, 3)).to.throw(InvalidArgumentError);
    expect(() => stratifiedHalves([0, 1], 0, 3)).to.throw(InvalidArgumentError, /too few/);
  });

  it('fidWithFloor: real-like samples sit near the floor, shifted samples far above it', () => {
    const rng = makeRng(8);
    const d = 4;
    const n = 400;
    const labels = Array.from({ length: n }, (_, i) => i % 10);
    const real = gaussianRows(n, [0, 0, 0, 0], [1, 1, 1, 1], rng);
    const sampleLabels = Array.from({ length: 100 }, (_, i) => i % 10);
    const good = gaussianRows(100, [0, 0, 0, 0], [1, 1, 1, 1], rng);
    const bad = gaussianRows(100, [2, 0, 0, 0], [1, 1, 1, 3], rng);
    const r1 = fidWithFloor(good, sampleLabels, real, labels, d, { seed: 1 });
    const r2 = fidWithFloor(bad, sampleLabels, real, labels, d, { seed: 1 });
    expect(r1.referenceCount).to.equal(200);
    expect(r1.floorCount).to.equal(100);
    expect(r1.sampleCount).to.equal(100);
    expect(r2.floor).to.equal(r1.floor);
    expect(r1.fid).to.be.below(0.5);
    expect(r1.floor).to.be.below(0.5);
    // closed form for the bad set: 2² + (√9 − 1)² = 8
    expect(r2.fid).to.be.within(6, 10);
    expect(() => fidWithFloor(good, [0], real, labels, d)).to.throw(ShapeMismatchError);
  });

  it('fidWithFloor: the floor copies the samples\' class counts', () => {
    const rng = makeRng(9);
    const labels = Array.from({ length: 200 }, (_, i) => i % 10);
    const real = gaussianRows(200, [0, 0], [1, 1], rng);
    const sampleLabels = [0, 0, 0, 1, 1, 2, 3, 3, 3, 3];
    const r = fidWithFloor(gaussianRows(10, [0, 0], [1, 1], rng), sampleLabels, real, labels, 2, { seed: 2 });
    expect(r.floorCount).to.equal(10);
  });
});

describe('eval/metrics: within-class spread', () => {
  /** Independent route: tr Σ = ½ · mean over ordered pairs i ≠ j of ‖x_i − x_j‖² (unbiased covariance). */
  function halfMeanPairDistance(rows: number[][]): number {
    let sum = 0;
    for (const a of rows) for (const b of rows) sum += a.reduce((s, v, j) => s + (v - b[j]) ** 2, 0);
    return sum / (2 * rows.length * (rows.length - 1));
  }

  it('by hand: class 0 {(0,0),(2,0)} → 2, class 1 {(1,1),(1,3),(1,5)} → 4, mean 3 (rows interleaved)', () => {
    const features = [1, 1, 0, 0, 1, 3, 2, 0, 1, 5];
    expect(withinClassSpread(features, 2, [1, 0, 1, 0, 1])).to.be.closeTo(3, 1e-12);
    expect(withinClassSpread(new Float32Array(features), 2, new Int32Array([1, 0, 1, 0, 1]))).to.be.closeTo(3, 1e-12);
  });

  it('equals half the mean squared pairwise distance per class, averaged over the classes present', () => {
    const rng = makeRng(21);
    const dim = 5;
    const labels = Array.from({ length: 60 }, () => Math.floor(rng() * 3) + 4); // classes 4, 5, 6 of 10
    const rows = labels.map((c) => Array.from({ length: dim }, (_, j) => c * (j + 1) + (1 + j) * normal(rng)));
    const expected = [4, 5, 6].map((c) => halfMeanPairDistance(rows.filter((_, i) => labels[i] === c))).reduce((a, b) => a + b) / 3;
    expect(withinClassSpread(rows.flat(), dim, labels)).to.be.closeTo(expected, 1e-9 * expected);
  });

  it('ignores where each class sits (no cancellation at an offset of 1e6) and is near dim·s² for N(μ_c, s²·I) rows', () => {
    const rng = makeRng(22);
    const dim = 4;
    const labels = Array.from({ length: 2000 }, (_, i) => i % 10);
    const noise = labels.map(() => Array.from({ length: dim }, () => 0.5 * normal(rng)));
    const near = withinClassSpread(noise.flat(), dim, labels);
    const far = withinClassSpread(noise.flatMap((r, i) => r.map((v) => v + 1e6 * (labels[i] + 1))), dim, labels);
    expect(far).to.be.closeTo(near, 1e-6 * near);
    expect(near).to.be.closeTo(dim * 0.25, 0.1); // sd of the estimate ≈ 0.25·√(2·4/200)/√10 ≈ 0.016
  });

  it('rejects ragged rows, a class with one row, NaN features, labels out of range and no rows', () => {
    expect(() => withinClassSpread([1, 2, 3], 2, [0, 0])).to.throw(ShapeMismatchError, /3 feature values/);
    expect(() => withinClassSpread([1, 2, 3, 4, 5, 6], 2, [0, 0, 1])).to.throw(InvalidArgumentError, /class 1 has 1 row/);
    expect(() => withinClassSpread([1, NaN, 3, 4], 2, [0, 0])).to.throw(NonFiniteError, /row 0/);
    expect(() => withinClassSpread([1, 2, 3, 4], 2, [0, 10])).to.throw(InvalidArgumentError, /0…9/);
    expect(() => withinClassSpread([1, 2, 3, 4], 0, [0, 0])).to.throw(InvalidArgumentError, /dim/);
    expect(() => withinClassSpread([], 2, [])).to.throw(InvalidArgumentError, /no rows/);
  });
});
