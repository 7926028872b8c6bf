// Small helpers for test/math: leak checks and sample statistics.
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';

/** Runs f once (burn-in), then again, and asserts the second run left tf.memory().numTensors unchanged. */
export function expectNoLeak(f: () => unknown): void {
  f();
  const before = tf.memory().numTensors;
  f();
  expect(tf.memory().numTensors, 'tensors leaked').to.equal(before);
}

/** Runs f, returns its tensor's values as numbers, disposes the tensor. */
export function values(f: () => tf.Tensor): number[] {
  const t = f();
  const v = Array.from(t.dataSync());
  t.dispose();
  return v;
}

export function meanStd(xs: ArrayLike<number>): { mean: number; std: number } {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  const mean = s / xs.length;
  let v = 0;
  for (let i = 0; i < xs.length; i++) v += (xs[i] - mean) ** 2;
  return { mean, std: Math.sqrt(v / (xs.length - 1)) };
}

/** |got − want| ≤ atol + rtol·|want| elementwise. */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol = 0, what = ''): void {
  expect(got.length, `${what} length`).to.equal(want.length);
  for (let i = 0; i < want.length; i++) {
    const tol = atol + rtol * Math.abs(want[i]);
    if (!(Math.abs(got[i] - want[i]) <= tol)) throw new Error(`${what}[${i}]: got ${got[i]}, want ${want[i]} (tol ${tol})`);
  }
}

/**
 * Awaits `f()` and asserts that it rejects with an instance of `type` whose message matches `re` (chai 4 has no
 * promise assertions without a plugin). A synchronous throw counts too.
 */
export async function expectRejects(f: () => Promise<unknown>, type: new (...args: never[]) => Error, re?: RegExp): Promise<Error> {
  let err: unknown;
  try {
    await f();
  } catch (e) {
    err = e;
  }
  expect(err, `expected a ${type.name}`).to.be.instanceOf(type);
  if (re) expect((err as Error).message).to.match(re);
  return err as Error;
}

/** The error that `f` throws or rejects with (any type); fails the test when it does neither. */
export async function failure(f: () => unknown): Promise<Error> {
  try {
    await f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a failure');
}
