/**
 * NaN / ±Infinity checks that stay on the device. Reading a value back stalls a GPU's pipeline (and on webgpu in Node
 * a synchronous read throws), so training and sampling keep finiteness as tensors and read it in batches:
 *   finiteFlag(...xs)   a bool scalar: every entry of every x is finite (no read)
 *   FiniteWatch         for a loop of steps: which step first went non-finite, counted on the device, read every k steps
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from './errors';

/** True (as a bool scalar tensor) when every entry is finite: x·0 sums to 0 exactly then, and to NaN otherwise. */
export function finiteFlag(...xs: tf.Tensor[]): tf.Scalar {
  // stack + sum, not tf.addN: webgpu's AddN fails for more than a handful of inputs
  return tf.tidy(() => tf.equal(tf.sum(tf.stack(xs.map((x) => tf.sum(tf.mul(x, 0))))), 0) as tf.Scalar);
}

/**
 * `flag` (a bool scalar) as a bool tensor shaped like `x`, the condition of a masked update (keep). tf.where would
 * broadcast a scalar condition with Tile, which wasm runs ~10× slower than the Select itself; a comparison broadcasts the
 * scalar natively.
 */
export function flagLike(flag: tf.Tensor, x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.less(tf.zerosLike(x), tf.cast(flag, 'float32')));
}

/**
 * `next` where `cond` is true, else `old` (all three of one shape): a masked update. The Select kernel directly —
 * tf.where would first clone each input (three Identity kernels: per-op overhead that a training step pays for every
 * parameter tensor).
 */
export function keep(cond: tf.Tensor, next: tf.Tensor, old: tf.Tensor): tf.Tensor {
  if (!tf.util.arraysEqual(cond.shape, next.shape) || !tf.util.arraysEqual(next.shape, old.shape)) return tf.where(cond, next, old);
  return tf.engine().runKernel('Select', { condition: cond, t: next, e: old }) as tf.Tensor;
}

/** Where a watched loop first went non-finite: `step` (0-based) and which of the two watched quantities did. */
export interface FirstNonFinite {
  step: number;
  /** 'first': the first tensor given to record() at that step was non-finite; 'second': only the second was. */
  which: 'first' | 'second';
}

/**
 * Deferred finiteness checks for a loop that records two quantities per step (e.g. the model output and the new x).
 * An int32 [2] tensor counts, for each of "the first quantity" and "both", the steps that were finite while every step
 * before them was; the count therefore equals the index of the first bad step once one happened. record() builds
 * tensors only; check() reads the two counts (one small read) and says whether, and where, it first went wrong.
 */
export class FiniteWatch {
  private counts: tf.Tensor1D;
  private recorded = 0;
  private readUpTo = 0;

  /** `every`: check() with due = true reads once `every` steps have been recorded since the last read. */
  constructor(readonly every: number) {
    if (!(Number.isInteger(every) && every > 0)) throw new InvalidArgumentError(`finite-check interval must be a positive integer, got ${every}`);
    this.counts = tf.tensor1d([0, 0], 'int32');
  }

  /** Record the next step's tensors (may be called inside tf.tidy: the new count tensor is kept). */
  record(first: tf.Tensor | tf.Tensor[], second: tf.Tensor): void {
    const i = this.recorded;
    const next = tf.tidy(() => {
      const a = finiteFlag(...(Array.isArray(first) ? first : [first]));
      const both = tf.logicalAnd(a, finiteFlag(second));
      const ok = tf.stack([a, both]);
      // a step counts only while all steps before it counted, i.e. while the count still equals the step index
      const clean = tf.equal(this.counts, tf.scalar(i, 'int32'));
      return tf.add(this.counts, tf.cast(tf.logicalAnd(clean, ok), 'int32')) as tf.Tensor1D;
    });
    this.counts.dispose();
    this.counts = tf.keep(next);
    this.recorded += 1;
  }

  /** Steps recorded since the last read. */
  get unread(): number {
    return this.recorded - this.readUpTo;
  }

  /** Whether `every` steps were recorded since the last read. */
  get due(): boolean {
    return this.unread >= this.every;
  }

  /** Reads the counts (awaited); undefined when every recorded step was finite. */
  async check(): Promise<FirstNonFinite | undefined> {
    const upTo = this.recorded;
    const [first, both] = Array.from(await this.counts.data());
    this.readUpTo = upTo;
    if (both >= upTo) return undefined;
    return { step: both, which: first === both ? 'first' : 'second' };
  }

  dispose(): void {
    this.counts.dispose();
  }
}
