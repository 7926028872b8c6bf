/**
 * Compare what a learner's function returned with the reference's Value under an explicit Tolerance, and say in one short
 * sentence what differs: which part (result[1].mean), which element ([0,3,2,0]), expected vs got.
 *
 * Rules (the same for the notebook self-checks and the grader):
 * - numbers and numeric tensors match elementwise when |got − expected| ≤ atol + rtol·|expected|;
 *   NaN matches only NaN, ±Infinity only itself; a NaN/Infinity where a finite number was expected is reported as such.
 * - tensor shapes must be equal (no broadcasting). dtypes: a float32 result must be float32 (int32 would mean truncated
 *   arithmetic); int32/bool results may come back as any numeric dtype with the same values; strings must be strings.
 * - arrays must have the same length; objects must have every expected key (extra keys are ignored);
 *   booleans, strings and null must be equal.
 * Works on HostTensors (values already read: `await readValue(x)` in notebooks, any backend); a raw tfjs tensor is read
 * with dataSync, which only the cpu/wasm backends allow for computed tensors (the grader, tests). Creates no tensors.
 */
import { describeValue, isHostTensor, isTensor, isThenable, UnsupportedValue } from './codec';
import type { Tolerance, Value } from './types';

export interface Comparison {
  ok: boolean;
  /** One line: why it failed, or a short summary of the error when it passed. */
  message: string;
  /** Largest |got − expected| over all numeric elements compared (0 when none). */
  maxAbsError: number;
  /** Largest |got − expected| / |expected| over elements with expected ≠ 0 (0 when none). */
  maxRelError: number;
  /** Numeric elements compared. */
  elements: number;
}

/** Compact number formatting for messages. */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Number.isInteger(n) && Math.abs(n) < 1e9) return String(n);
  const a = Math.abs(n);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return n.toExponential(3);
  return String(Number(n.toPrecision(5)));
}

function formatShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

function multiIndex(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length).fill(0);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = flat % shape[d];
    flat = Math.floor(flat / shape[d]);
  }
  return idx;
}

interface Stats {
  maxAbs: number;
  maxRel: number;
  elements: number;
}

class Mismatch extends Error {}

function fail(message: string): never {
  throw new Mismatch(message);
}

function tolText(tol: Tolerance): string {
  return `${formatNumber(tol.atol)} + ${formatNumber(tol.rtol)}·|expected|`;
}

/** Elementwise comparison of two equally sized numeric blocks; `shape` is used only to name elements. */
function compareNumbers(
  got: ArrayLike<number>,
  expected: ArrayLike<number>,
  shape: readonly number[],
  tol: Tolerance,
  path: string,
  stats: Stats,
): void {
  const at = (i: number) => (shape.length === 0 ? path : `${path}${formatShape(multiIndex(i, shape))}`);
  let nonFinite = 0;
  let firstNonFinite = -1;
  let outside = 0;
  let worst = -1;
  let worstRatio = -1;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i];
    const g = got[i];
    if (Number.isNaN(e)) {
      if (!Number.isNaN(g)) fail(`${at(i)}: expected NaN, got ${formatNumber(g)}`);
      continue;
    }
    if (!Number.isFinite(e)) {
      if (g !== e) fail(`${at(i)}: expected ${e}, got ${formatNumber(g)}`);
      continue;
    }
    if (!Number.isFinite(g)) {
      nonFinite++;
      if (firstNonFinite < 0) firstNonFinite = i;
      continue;
    }
    const diff = Math.abs(g - e);
    stats.elements++;
    stats.maxAbs = Math.max(stats.maxAbs, diff);
    if (e !== 0) stats.maxRel = Math.max(stats.maxRel, diff / Math.abs(e));
    const allowed = tol.atol + tol.rtol * Math.abs(e);
    if (diff > allowed) {
      outside++;
      const ratio = allowed > 0 ? diff / allowed : diff;
      if (ratio > worstRatio) {
        worstRatio = ratio;
        worst = i;
      }
    }
  }
  const n = expected.length;
  if (nonFinite > 0) {
    const g = got[firstNonFinite];
    const where = n > 1 ? ` (${nonFinite} of ${n} elements are NaN/Infinity)` : '';
    fail(`${at(firstNonFinite)}: got ${Number.isNaN(g) ? 'NaN' : g}, expected ${formatNumber(expected[firstNonFinite])}${where}`);
  }
  if (outside > 0) {
    const e = expected[worst];
    const g = got[worst];
    const count = n > 1 ? `${outside} of ${n} elements outside tolerance; worst ` : '';
    fail(
      `${count}${at(worst)}: expected ${formatNumber(e)}, got ${formatNumber(g)} ` +
        `(|diff| ${formatNumber(Math.abs(g - e))} > tolerance ${formatNumber(tol.atol + tol.rtol * Math.abs(e))} = ${tolText(tol)})`,
    );
  }
}

const NUMERIC = ['float32', 'int32', 'bool'];

type AnyTensor = { shape: number[]; dtype: string };

function isAnyTensor(x: unknown): x is AnyTensor {
  return isTensor(x) || isHostTensor(x);
}

function readTensor(t: AnyTensor, path: string, who: string): ArrayLike<number | string> {
  if (isHostTensor(t)) return t.values;
  try {
    return (t as unknown as { dataSync(): ArrayLike<number | string> }).dataSync();
  } catch (e) {
    return fail(`${path}: ${who} tensor cannot be read (${(e as Error).message}; was it disposed?)`);
  }
}

function compareTensor(got: unknown, exp: AnyTensor, tol: Tolerance, path: string, stats: Stats): void {
  if (!isAnyTensor(got)) {
    const hint = Array.isArray(got) || typeof got === 'number' ? ' (wrap it with tf.tensor(...))' : '';
    fail(`${path}: expected a ${exp.dtype} tensor of shape ${formatShape(exp.shape)}, got ${describeValue(got)}${hint}`);
  }
  const shapeOk = got.shape.length === exp.shape.length && got.shape.every((s, i) => s === exp.shape[i]);
  if (!shapeOk) {
    const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
    const sameSize = size(got.shape) === size(exp.shape);
    fail(
      `${path}: shape: expected ${formatShape(exp.shape)}, got ${formatShape(got.shape)}` +
        (sameSize ? ' (same number of elements: a reshape/squeeze/expandDims is missing or extra?)' : ''),
    );
  }
  if (exp.dtype === 'string' || got.dtype === 'string') {
    if (got.dtype !== exp.dtype) fail(`${path}: dtype: expected ${exp.dtype}, got ${got.dtype}`);
    const g = readTensor(got, path, 'the returned');
    const e = readTensor(exp, path, 'the expected');
    for (let i = 0; i < e.length; i++) {
      if (g[i] !== e[i]) fail(`${path}${formatShape(multiIndex(i, exp.shape))}: expected ${JSON.stringify(e[i])}, got ${JSON.stringify(g[i])}`);
    }
    return;
  }
  if (!NUMERIC.includes(got.dtype)) fail(`${path}: dtype: expected ${exp.dtype}, got ${got.dtype}`);
  if (exp.dtype === 'float32' && got.dtype !== 'float32') {
    fail(`${path}: dtype: expected float32, got ${got.dtype} (integer arithmetic truncates; compute in float32)`);
  }
  compareNumbers(
    readTensor(got, path, 'the returned') as ArrayLike<number>,
    readTensor(exp, path, 'the expected') as ArrayLike<number>,
    exp.shape,
    tol,
    path,
    stats,
  );
}

function isNumberArray(x: unknown): x is number[] {
  return Array.isArray(x) && x.every((v) => typeof v === 'number');
}

function compareAt(got: unknown, expected: unknown, tol: Tolerance, path: string, stats: Stats): void {
  if (got instanceof UnsupportedValue) fail(`${path}: expected ${describeValue(expected)}, got ${got.description}`);
  if (got === undefined) fail(`${path}: got undefined (did the function forget to return?)`);
  if (isThenable(got)) fail(`${path}: got a Promise that was not awaited`);
  if (isAnyTensor(expected)) return compareTensor(got, expected, tol, path, stats);
  if (typeof expected === 'number') {
    if (typeof got !== 'number') {
      const hint = isAnyTensor(got) ? ' (read a scalar tensor: (await t.data())[0], or t.dataSync()[0] on the cpu backend)' : '';
      fail(`${path}: expected a number, got ${describeValue(got)}${hint}`);
    }
    return compareNumbers([got], [expected], [], tol, path, stats);
  }
  if (expected === null || typeof expected === 'boolean' || typeof expected === 'string') {
    if (got !== expected) fail(`${path}: expected ${describeValue(expected)}, got ${describeValue(got)}`);
    return;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(got)) {
      const hint = isAnyTensor(got) ? ' (convert with await t.array(), or t.arraySync() on the cpu backend)' : '';
      fail(`${path}: expected an array of length ${expected.length}, got ${describeValue(got)}${hint}`);
    }
    if (got.length !== expected.length) fail(`${path}: expected an array of length ${expected.length}, got length ${got.length}`);
    // A flat number[] is compared as one block so that the message names the worst element, not the first.
    if (isNumberArray(expected) && isNumberArray(got)) return compareNumbers(got, expected, [expected.length], tol, path, stats);
    expected.forEach((e, i) => compareAt(got[i], e, tol, `${path}[${i}]`, stats));
    return;
  }
  // plain object
  if (typeof got !== 'object' || got === null || Array.isArray(got) || isAnyTensor(got)) {
    fail(`${path}: expected ${describeValue(expected)}, got ${describeValue(got)}`);
  }
  const g = got as Record<string, unknown>;
  const exp = expected as Record<string, unknown>;
  for (const [k, e] of Object.entries(exp)) {
    if (!(k in g)) fail(`${path}: missing key '${k}' (expected keys {${Object.keys(exp).join(', ')}})`);
    compareAt(g[k], e, tol, `${path}.${k}`, stats);
  }
}

/**
 * Compare `got` (anything a learner's function returned) with the reference's `expected` Value, either possibly read
 * out already (HostTensors from readValue). Never throws for a wrong `got`; the reason is in `message`.
 */
export function compareValues(got: unknown, expected: Value | unknown, tol: Tolerance, path = 'result'): Comparison {
  const stats: Stats = { maxAbs: 0, maxRel: 0, elements: 0 };
  try {
    compareAt(got, expected, tol, path, stats);
  } catch (e) {
    if (!(e instanceof Mismatch)) throw e;
    return { ok: false, message: e.message, maxAbsError: stats.maxAbs, maxRelError: stats.maxRel, elements: stats.elements };
  }
  const message = stats.elements === 0 ? 'equal' : stats.maxAbs === 0 ? 'exact' : `max abs error ${formatNumber(stats.maxAbs)}`;
  return { ok: true, message, maxAbsError: stats.maxAbs, maxRelError: stats.maxRel, elements: stats.elements };
}
