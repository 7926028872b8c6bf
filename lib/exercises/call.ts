/**
 * Call an exercise function (a learner's, lib's reference, a known-wrong answer) on a case's arguments so that it cannot
 * disturb the caller: it gets its own copies of the arguments (it may mutate or dispose them), the intermediates it
 * forgets to dispose are freed, and only what it returns is kept (the caller disposes it with disposeValue).
 *
 * One asynchronous form for everything (self-checks, the grader's reference side and its sandboxed runner, tests):
 * arguments may hold HostTensors (values read out with readValue), which become fresh tensors for each call (readable on
 * every backend), and a function that returns a Promise (an async answer, e.g. one that reads a value with
 * `await t.data()`) is awaited.
 */
import * as tf from '@tensorflow/tfjs';
import { describeValue, disposeValue, isHostTensor, isPlainObject, isTensor, isThenable, tensorsIn, toTensor } from './codec';
import type { Value } from './types';

// Not a discriminated union: tslab compiles lib without strictNullChecks, where `if (!out.ok) out.error` does not narrow.
export interface CallOutcome {
  ok: boolean;
  value?: unknown;
  error?: unknown;
}

/** A copy the function may mutate: arrays and plain objects copied, tensors cloned, HostTensors uploaded afresh. */
function freshCopy(v: unknown): unknown {
  if (isHostTensor(v)) return toTensor(v);
  if (isTensor(v)) return tf.clone(v);
  if (Array.isArray(v)) return v.map(freshCopy);
  if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, freshCopy(x)]));
  return v;
}

/** Dispose the argument copies except those the function returned (identity-like answers). */
function release(copies: tf.Tensor[], value: unknown): void {
  const kept = new Set(tensorsIn(value));
  disposeValue(copies.filter((t) => !kept.has(t)));
}

/**
 * The engine scope stays open across the await: nothing else runs tensor code meanwhile (a self-check cell, or the
 * sandboxed runner's one case at a time), so what the function creates and does not return is still freed.
 */
export async function callIsolated(fn: (...args: any[]) => unknown, args: unknown[]): Promise<CallOutcome> {
  const copies = args.map(freshCopy);
  const copyTensors = tensorsIn(copies);
  const engine = tf.engine();
  engine.startScope();
  let value: unknown;
  try {
    value = fn(...copies);
    if (isThenable(value)) value = await value;
  } catch (error) {
    engine.endScope();
    disposeValue(copyTensors);
    return { ok: false, error };
  }
  engine.endScope(tensorsIn(value));
  release(copyTensors, value);
  return { ok: true, value };
}

/** The stub the learner notebooks carry throws "Exercise <id> is not implemented yet (TODO)". */
export function isNotImplemented(err: unknown): boolean {
  const msg = err instanceof Error ? err.message : String(err);
  return /not implemented/i.test(msg);
}

/** First line of an error, with its class name: 'TypeError: x.mul is not a function'. */
export function describeError(err: unknown): string {
  if (err instanceof Error || (typeof err === 'object' && err !== null && typeof (err as Error).message === 'string')) {
    const e = err as Error;
    const first = (e.message || '').split('\n')[0];
    return `${e.name || 'Error'}: ${first}`;
  }
  return `threw ${describeValue(err)}`;
}
