/**
 * Moving a replica's variables (or their gradients) in and out of one flat Float32Array, in variable order.
 * One flat buffer per direction lets threads share weights and gradients through SharedArrayBuffers without copies
 * in the message channel.
 */
import * as tf from '@tensorflow/tfjs';
import { ShapeMismatchError } from '../errors';

export function totalSize(sizes: number[]): number {
  return sizes.reduce((a, b) => a + b, 0);
}

/** Write tensors (same order and sizes as `sizes`) into `out`, one after another. */
export function writeFlat(tensors: tf.Tensor[], out: Float32Array): void {
  let offset = 0;
  for (const t of tensors) {
    if (offset + t.size > out.length) {
      throw new ShapeMismatchError(`flat buffer of ${out.length} values is too small for the tensors (need > ${offset + t.size})`);
    }
    out.set(t.dataSync() as Float32Array, offset);
    offset += t.size;
  }
  if (offset !== out.length) {
    throw new ShapeMismatchError(`tensors hold ${offset} values, the flat buffer ${out.length}`);
  }
}

/** Assign every variable from its slice of `flat` (copied: the backend must not keep a view of shared memory). */
export function assignFromFlat(variables: tf.Variable[], flat: Float32Array): void {
  let offset = 0;
  for (const v of variables) {
    const slice = flat.slice(offset, offset + v.size);
    offset += v.size;
    tf.tidy(() => v.assign(tf.tensor(slice, v.shape, 'float32')));
  }
  if (offset !== flat.length) {
    throw new ShapeMismatchError(`variables hold ${offset} values, the flat buffer ${flat.length}`);
  }
}

/** Tensors shaped like `variables`, read from `flat` (the caller owns them). */
export function tensorsFromFlat(variables: tf.Variable[], flat: Float32Array): tf.Tensor[] {
  let offset = 0;
  return variables.map((v) => {
    const t = tf.tensor(flat.slice(offset, offset + v.size), v.shape, 'float32');
    offset += v.size;
    return t;
  });
}
