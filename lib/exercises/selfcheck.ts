/**
 * The notebooks' self-check cells: run an exercise's public cases against lib's reference and print one ✔/✘ line per case.
 *
 *   selfCheck(qSampleSpec, q_sample);          // in the cell after the exercise
 *
 * `selfCheck` returns nothing, so the cell shows only its report (tslab would echo a returned `true`);
 * `selfCheckPassed` prints the same and returns whether every case passed, for code that needs the verdict.
 * `runChecks` is the same without printing (tests assert that every `spec.wrong` answer fails at least one case);
 * the grader uses `runCase`'s pieces (`callIsolated`, `compareValues`) on hidden cases too.
 * Every tensor made here (cases, reference results, the learner's intermediates and results) is disposed.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors';
import { cloneArgs, describeValue, disposeValue, isTensor, tensorsIn } from './codec';
import { compareValues } from './compare';
import type { CheckCase, ExerciseSpec, Tolerance, Value } from './types';

/**
 * Seed of the public cases (what learners see). The grader adds hidden seeds and cases.
 * Not 0: tfjs treats a seed of 0 as "no seed" (random), and specs often derive tensor seeds as seed·k + offset.
 */
export const PUBLIC_SEED = 1;

export type CaseStatus = 'pass' | 'fail' | 'error' | 'not-attempted';

export interface CaseResult {
  /** The case's name, e.g. 't = 0 (first step)'. */
  name: string;
  status: CaseStatus;
  /** Why it failed / what it threw / the size of the error when it passed. */
  message: string;
  maxAbsError?: number;
}

/** The stub the learner notebooks carry throws "Exercise <id> is not implemented yet (TODO)". */
export function isNotImplemented(err: unknown): boolean {
  const msg = err instanceof Error ? err.message : String(err);
  return /not implemented/i.test(msg);
}

/** First line of an error, with its class name: 'TypeError: x.mul is not a function'. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const first = (err.message || '').split('\n')[0];
    return `${err.name || 'Error'}: ${first}`;
  }
  return `threw ${describeValue(err)}`;
}

// Not a discriminated union: tslab compiles lib without strictNullChecks, where `if (!out.ok) out.error` does not narrow.
export interface CallOutcome {
  ok: boolean;
  value?: unknown;
  error?: unknown;
}

/**
 * Call `fn` on tensor-cloned, deep-copied args inside an engine scope: intermediates the function forgets to dispose are
 * freed, the arguments it receives cannot be mutated or disposed under the caller, and what it returns is kept (caller
 * disposes it with disposeValue). A returned Promise is not awaited (its rejection is swallowed): it is reported as a
 * wrong type by compareValues.
 */
export function callIsolated(fn: (...args: Value[]) => unknown, args: Value[]): CallOutcome {
  const copies = cloneArgs(args).map(cloneTensorsIn);
  const copyTensors = tensorsIn(copies);
  const engine = tf.engine();
  engine.startScope();
  let value: unknown;
  try {
    value = fn(...copies);
  } catch (error) {
    engine.endScope();
    disposeValue(copyTensors);
    return { ok: false, error };
  }
  if (value !== null && typeof value === 'object' && typeof (value as { then?: unknown }).then === 'function') {
    (value as Promise<unknown>).then(undefined, () => undefined);
  }
  engine.endScope(tensorsIn(value));
  // Keep a copy only if the function returned it (identity-like answers); tensors are immutable so that is safe.
  const kept = new Set(tensorsIn(value));
  disposeValue(copyTensors.filter((t) => !kept.has(t)));
  return { ok: true, value };
}

function cloneTensorsIn(v: Value): Value {
  if (tensorsIn(v).length === 0) return v;
  if (Array.isArray(v)) return v.map(cloneTensorsIn);
  if (isTensor(v)) return tf.clone(v);
  return Object.fromEntries(Object.entries(v as Record<string, Value>).map(([k, x]) => [k, cloneTensorsIn(x)]));
}

/** Evaluate lib's reference on a case; its intermediates are freed, the result is the caller's. */
export function referenceValue(spec: ExerciseSpec, args: Value[]): Value {
  const out = callIsolated(spec.reference, args);
  if (!out.ok) {
    throw new InvalidArgumentError(`exercise ${spec.id}: the reference threw on this case (${describeError(out.error)})`);
  }
  return out.value as Value;
}

/** Check `fn` on one case against an already computed expected value (used by runChecks and, with hidden cases, tests). */
export function checkAgainst(fn: (...args: Value[]) => unknown, args: Value[], expected: Value, tol: Tolerance, name: string): CaseResult {
  const out = callIsolated(fn, args);
  if (!out.ok) {
    if (isNotImplemented(out.error)) return { name, status: 'not-attempted', message: 'not attempted yet' };
    return { name, status: 'error', message: `threw ${describeError(out.error)}` };
  }
  try {
    const c = compareValues(out.value, expected, tol);
    return { name, status: c.ok ? 'pass' : 'fail', message: c.message, maxAbsError: c.maxAbsError };
  } finally {
    disposeValue(out.value);
  }
}

export interface CheckOptions {
  /** Seed of the generated cases (default PUBLIC_SEED). */
  seed?: number;
  /** Use these cases instead of spec.cases(seed) (they are not disposed: the caller owns them). */
  cases?: CheckCase[];
}

/** Run `fn` on the spec's cases; no printing. Stops after the first "not implemented" throw (the rest would repeat it). */
export function runChecks(spec: ExerciseSpec, fn: (...args: Value[]) => unknown, opts: CheckOptions = {}): CaseResult[] {
  const cases = opts.cases ?? spec.cases(opts.seed ?? PUBLIC_SEED);
  const results: CaseResult[] = [];
  try {
    for (const c of cases) {
      const expected = referenceValue(spec, c.args);
      let r: CaseResult;
      try {
        r = checkAgainst(fn, c.args, expected, spec.tolerance, c.name);
      } finally {
        disposeValue(expected);
      }
      results.push(r);
      if (r.status === 'not-attempted') break;
    }
  } finally {
    if (!opts.cases) disposeValue(cases.map((c) => c.args));
  }
  return results;
}

export interface SelfCheckOptions extends CheckOptions {
  /** Where the lines go (default console.log). */
  log?: (line: string) => void;
}

/**
 * Print one line per case (✔ or ✘ with the reason), then the hint if anything failed; true when every case passed.
 */
export function selfCheckPassed(spec: ExerciseSpec, fn: (...args: any[]) => unknown, opts: SelfCheckOptions = {}): boolean {
  const log = opts.log ?? ((line: string) => console.log(line));
  const label = `${spec.functionName} (exercise ${spec.id})`;
  if (typeof fn !== 'function') {
    log(`✘ ${label}: ${spec.functionName} is ${describeValue(fn)}, not a function — run the exercise cell above first.`);
    return false;
  }
  const results = runChecks(spec, fn, opts);
  if (results.length > 0 && results[results.length - 1].status === 'not-attempted') {
    log(`✘ ${label}: not attempted yet — replace the TODO in the exercise cell with your code, run it, then this cell.`);
    return false;
  }
  for (const r of results) log(`${r.status === 'pass' ? '✔' : '✘'} ${r.name}: ${r.message}`);
  const failed = results.filter((r) => r.status !== 'pass').length;
  if (failed === 0) {
    log(`All ${results.length} checks of ${label} passed.`);
    return true;
  }
  log(`${failed} of ${results.length} checks of ${label} failed.`);
  log(`Hint: ${spec.hint}`);
  return false;
}

/** The self-check cell: prints selfCheckPassed's report and returns nothing, so the cell shows no stray value. */
export function selfCheck(spec: ExerciseSpec, fn: (...args: any[]) => unknown, opts: SelfCheckOptions = {}): void {
  selfCheckPassed(spec, fn, opts);
}
