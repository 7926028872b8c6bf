/**
 * Classifier-free guidance (Ho & Salimans 2022): one model call on a doubled batch [x; x] with classes [c; null],
 * then out = out_u + w·(out_c − out_u). w = 1 is the conditional prediction, w = 0 the unconditional one, w > 1 guides.
 * (Ho & Salimans' (1+w')·ε_c − w'·ε_u is the same with w = 1 + w'.) Being affine, it applies to ε, x0 or v outputs alike.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../errors';
import type { Denoiser, GuidanceOptions } from './types';

/** The default null label: numClasses for the 10 digit classes (CONTRIBUTING). */
export const DEFAULT_NULL_CLASS = 10;

/** out_u + w·(out_c − out_u). */
export function applyGuidance(cond: tf.Tensor, uncond: tf.Tensor, weight: number): tf.Tensor {
  return tf.tidy(() => tf.add(uncond, tf.mul(tf.sub(cond, uncond), weight)));
}

/** Class labels [B] as an int32 tensor (a given tensor is returned as is; arrays are checked to be integers). */
export function classTensor(classes: number[] | tf.Tensor1D, batch: number): tf.Tensor1D {
  const n = Array.isArray(classes) ? classes.length : classes.rank === 1 ? classes.shape[0] : -1;
  if (n !== batch) throw new ShapeMismatchError(`classes: expected one label per example (${batch}), got ${n < 0 ? `shape [${(classes as tf.Tensor).shape}]` : n}`);
  if (!Array.isArray(classes)) return classes;
  classes.forEach((c) => {
    if (!Number.isInteger(c) || c < 0) throw new InvalidArgumentError(`class labels must be non-negative integers, got ${c}`);
  });
  return tf.tensor1d(classes, 'int32');
}

/** The null label of `g` (default DEFAULT_NULL_CLASS), after checking `g`'s weight and null label. */
export function checkGuidance(g: GuidanceOptions): number {
  if (!Number.isFinite(g.weight)) throw new InvalidArgumentError(`guidance weight must be a finite number, got ${g.weight}`);
  const nullClass = g.nullClass ?? DEFAULT_NULL_CLASS;
  if (!Number.isInteger(nullClass) || nullClass < 0) throw new InvalidArgumentError(`nullClass must be a non-negative integer, got ${nullClass}`);
  return nullClass;
}

/** The doubled batch of one guided model call: [x; x], [t; t], [classes; null]. */
export function guidanceInputs(x: tf.Tensor, t: tf.Tensor1D, g: GuidanceOptions, nullClass: number): { x: tf.Tensor; t: tf.Tensor1D; classes: tf.Tensor1D } {
  return tf.tidy(() => {
    const b = x.shape[0];
    const c = classTensor(g.classes, b);
    return { x: tf.concat([x, x]), t: tf.concat([t, t]), classes: tf.concat([c, tf.fill([b], nullClass, 'int32')]) as tf.Tensor1D };
  });
}

/** The guided output from the model's output on the doubled batch of `b` examples. */
export function guidedOutput(out: tf.Tensor, b: number, weight: number): tf.Tensor {
  if (out.shape[0] !== 2 * b) throw new ShapeMismatchError(`model output for the doubled batch must have ${2 * b} rows, got [${out.shape}]`);
  return tf.tidy(() => {
    const [cond, uncond] = tf.split(out, 2, 0);
    return applyGuidance(cond, uncond, weight);
  });
}

/** A Denoiser that ignores its `classes` argument and returns the guided output for `g.classes`. */
export function guidedDenoiser(model: Denoiser, g: GuidanceOptions): Denoiser {
  const nullClass = checkGuidance(g);
  return (x, t) =>
    tf.tidy(() => {
      const d = guidanceInputs(x, t, g, nullClass);
      return guidedOutput(model(d.x, d.t, d.classes), x.shape[0], g.weight);
    });
}
