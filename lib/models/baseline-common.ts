/**
 * What the baselines (vae.ts, gan.ts) share: class labels as a one-hot input, the optimizer their training steps call,
 * and the gradients of a scalar with respect to a list of variables, in that list's order.
 *
 * The steps build tensors only and read nothing back (the caller awaits `.data()` of the loss terms, and checks them for
 * NaN there), so that one step can be queued on an asynchronous backend without a round trip.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../errors';

/**
 * The optimizer a step calls: lib/train's Adam has this method (it builds tensors only). Written as an interface so that
 * models never import lib/train (train imports models, not the other way round).
 */
export interface StepOptimizer {
  apply(grads: tf.Tensor[], lr: number): void;
}

/** A learning rate must be a positive finite number. */
export function checkLr(lr: number, what: string): void {
  if (!(typeof lr === 'number' && lr > 0 && Number.isFinite(lr))) throw new InvalidArgumentError(`${what} must be a positive finite number, got ${lr}`);
}

/**
 * value = f() and its gradients with respect to `vars`, in the order of `vars` (the order of the Adam built on them).
 * Throws (disposing everything) when a variable gets no gradient: every parameter must affect the loss.
 */
export function orderedGrads(f: () => tf.Scalar, vars: tf.Variable[], names: string[]): { value: tf.Scalar; grads: tf.Tensor[] } {
  const { value, grads } = tf.variableGrads(f, vars);
  const ordered = vars.map((v) => grads[v.name]);
  const missing = names.filter((_, i) => ordered[i] === undefined);
  if (missing.length > 0) {
    tf.dispose([value, ...Object.values(grads)]);
    throw new InvalidArgumentError(`no gradient reaches parameter(s) ${missing.join(', ')}: every parameter must affect the loss`);
  }
  return { value, grads: ordered };
}

/**
 * classes int32 [B] → one-hot float32 [B, numClasses + 1]; column numClasses is the null class ("no label", the course's
 * convention), which omitted classes mean. A one-hot vector concatenated to a dense layer's input is a learned
 * per-class bias of that layer (W·[h; e_y] = W_h·h + W_y[:, y]), the embedding lookup of lib/nn/embedding.ts folded in.
 * Label values are not read back (no sync): out-of-range labels give a zero row, like tf.oneHot.
 */
export function oneHotClasses(what: string, numClasses: number, batch: number, classes?: tf.Tensor1D): tf.Tensor2D | undefined {
  checkClasses(what, numClasses, batch, classes);
  if (numClasses === 0) return undefined;
  return tf.tidy(() => {
    const labels = classes ? tf.cast(classes, 'int32') : tf.fill([batch], numClasses, 'int32');
    return tf.cast(tf.oneHot(labels as tf.Tensor1D, numClasses + 1), 'float32') as tf.Tensor2D;
  });
}

/** Labels for a batch of `batch`: none for an unconditional model, else absent or int [batch]. */
export function checkClasses(what: string, numClasses: number, batch: number, classes?: tf.Tensor1D): void {
  if (numClasses === 0 && classes) throw new InvalidArgumentError(`${what}: classes given to an unconditional model (numClasses = 0)`);
  if (classes && (classes.rank !== 1 || classes.shape[0] !== batch)) {
    throw new ShapeMismatchError(`${what}: classes must be [${batch}], got [${classes.shape}]`);
  }
}

/** x must be a batch of images [B, size, size, channels]. */
export function checkImages(what: string, x: tf.Tensor, size: number, channels: number): void {
  if (x.rank !== 4 || x.shape[1] !== size || x.shape[2] !== size || x.shape[3] !== channels) {
    throw new ShapeMismatchError(`${what}: x must be [B, ${size}, ${size}, ${channels}], got [${x.shape}]`);
  }
}

/**
 * Checks for a step's inputs, made BEFORE its gradient tape starts: tfjs keeps the tensors an op saved for the backward
 * pass until that pass runs, so an error thrown inside tf.variableGrads' function leaks them (measured: 2 per op).
 */
export function checkStepInputs(what: string, x: tf.Tensor, size: number, channels: number, numClasses: number, classes?: tf.Tensor1D): void {
  checkImages(what, x, size, channels);
  checkClasses(what, numClasses, x.shape[0], classes);
}

/** A positive integer count (batch of samples …). */
export function checkCount(n: number, what: string): void {
  if (!(Number.isInteger(n) && n > 0)) throw new InvalidArgumentError(`${what} must be a positive integer, got ${n}`);
}
