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

/** Write tensors' values (read back, awaited) into `out`, one after another in the given order. */
export async function writeFlat(tensors: tf.Tensor[], out: Float32Array): Promise<void> {
  const total = tensors.reduce((n, t) => n + t.size, 0);
  if (total !== out.length) {
    throw new ShapeMismatchError(`tensors hold ${total} values, the flat buffer ${out.length}`);
  }
  const values = await Promise.all(tensors.map((t) => t.data() as Promise<Float32Array>));
  let offset = 0;
  for (const v of values) {
    out.set(v, offset);
    offset += v.length;
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
