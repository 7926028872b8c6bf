/**
 * Small dense linear algebra in float64 JS, for the Fréchet distance (features are ~128-D, so O(d³) is milliseconds).
 * Matrices are row-major Float64Array of n×n.
 */
import { InvalidArgumentError, NonFiniteError, ShapeMismatchError } from '../errors';

export interface SymmetricEigen {
  /** Eigenvalues, unsorted. */
  values: Float64Array;
  /** Row-major n×n; column k is the unit eigenvector of values[k]. */
  vectors: Float64Array;
}

function checkSquare(a: ArrayLike<number>, n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${what}: size must be a positive integer, got ${n}`);
  if (a.length !== n * n) throw new ShapeMismatchError(`${what}: expected ${n}×${n} = ${n * n} values, got ${a.length}`);
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) throw new NonFiniteError(`${what}: entry ${i} is ${a[i]}`);
  }
}

/**
 * Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations: each rotation zeroes one off-diagonal pair,
 * and sweeps repeat until the off-diagonal mass is negligible. Slower than tridiagonal QR but simple and accurate to
 * rounding for the symmetric positive semi-definite matrices met here. Only the upper triangle's symmetry is assumed.
 */
export function symmetricEigen(a: ArrayLike<number>, n: number, maxSweeps = 60): SymmetricEigen {
  checkSquare(a, n, 'symmetricEigen');
  const m = Float64Array.from(a);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let total = 0;
  for (let i = 0; i < n * n; i++) total += m[i] * m[i];
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += m[p * n + q] * m[p * n + q];
    if (off <= 1e-30 * total || off === 0) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q];
        if (apq === 0) continue;
        // Rotation angle that zeroes m[p][q]: t = tan(angle) is the smaller root of t² + 2θt − 1 = 0.
        const theta = (m[q * n + q] - m[p * n + p]) / (2 * apq);
        const t = Math.abs(theta) > 1e150 ? 1 / (2 * theta) : Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          // columns p, q of m and of v: M ← M J
          const mkp = m[k * n + p];
          const mkq = m[k * n + q];
          m[k * n + p] = c * mkp - s * mkq;
          m[k * n + q] = s * mkp + c * mkq;
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
        for (let k = 0; k < n; k++) {
          // rows p, q: M ← Jᵀ M
          const mpk = m[p * n + k];
          const mqk = m[q * n + k];
          m[p * n + k] = c * mpk - s * mqk;
          m[q * n + k] = s * mpk + c * mqk;
        }
      }
    }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = m[i * n + i];
  return { values, vectors: v };
}

/** A·B for row-major n×n matrices. */
export function matMul(a: ArrayLike<number>, b: ArrayLike<number>, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k];
      if (aik === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] += aik * b[k * n + j];
    }
  }
  return out;
}

/** (A + Aᵀ)/2: removes the rounding asymmetry of products such as R Σ R. */
export function symmetrize(a: ArrayLike<number>, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out[i * n + j] = 0.5 * (a[i * n + j] + a[j * n + i]);
  return out;
}

/**
 * The symmetric PSD square root V diag(√λ) Vᵀ. Eigenvalues that rounding pushed slightly below zero are taken as 0
 * (a covariance estimated from fewer samples than dimensions is singular, so such values are expected).
 */
export function sqrtPsd(a: ArrayLike<number>, n: number): Float64Array {
  const { values, vectors } = symmetricEigen(a, n);
  const out = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const r = Math.sqrt(Math.max(values[k], 0));
    if (r === 0) continue;
    for (let i = 0; i < n; i++) {
      const vik = vectors[i * n + k] * r;
      if (vik === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] += vik * vectors[j * n + k];
    }
  }
  return out;
}

/**
 * tr √(A B) for symmetric PSD A, B. A B is not symmetric, but it is similar to √A B √A, which is symmetric PSD and
 * has the same eigenvalues; so the trace is Σ √λ of √A B √A.
 */
export function traceSqrtProduct(a: ArrayLike<number>, b: ArrayLike<number>, n: number): number {
  checkSquare(b, n, 'traceSqrtProduct');
  const r = sqrtPsd(a, n);
  const m = symmetrize(matMul(matMul(r, b, n), r, n), n);
  const { values } = symmetricEigen(m, n);
  let sum = 0;
  for (const l of values) sum += Math.sqrt(Math.max(l, 0));
  return sum;
}
