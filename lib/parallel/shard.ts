/**
 * Splitting a batch into shards along axis 0, and one shard's loss + gradients — the same code on every thread.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../errors';
import type { Replica, WireTensor } from './types';

/** Shard sizes for `batch` examples over `parts` threads: as even as possible, larger shards first. */
export function shardSizes(batch: number, parts: number): number[] {
  if (!Number.isInteger(batch) || batch <= 0) throw new InvalidArgumentError(`batch must be a positive integer, got ${batch}`);
  if (!Number.isInteger(parts) || parts <= 0) throw new InvalidArgumentError(`parts must be a positive integer, got ${parts}`);
  const base = Math.floor(batch / parts);
  const extra = batch % parts;
  return Array.from({ length: parts }, (_, i) => base + (i < extra ? 1 : 0));
}

/** The common batch size of a set of named inputs (all must agree on axis 0). */
export function batchSizeOf(inputs: Record<string, tf.Tensor>): number {
  const names = Object.keys(inputs);
  if (names.length === 0) throw new InvalidArgumentError('a batch needs at least one input tensor');
  const b = inputs[names[0]].shape[0];
  for (const n of names) {
    const t = inputs[n];
    if (t.rank === 0) throw new ShapeMismatchError(`input '${n}' is a scalar; every input needs a batch axis`);
    if (t.shape[0] !== b) {
      throw new ShapeMismatchError(`input '${n}' has ${t.shape[0]} examples, input '${names[0]}' has ${b}; they must agree`);
    }
    if (t.dtype !== 'float32' && t.dtype !== 'int32') {
      throw new InvalidArgumentError(`input '${n}' has dtype ${t.dtype}; only float32 and int32 can be sharded`);
    }
  }
  if (b === undefined || b <= 0) throw new ShapeMismatchError('the batch is empty');
  return b;
}

/** Rows [start, start + size) of every input, as plain arrays for postMessage. */
export function sliceToWire(
  inputs: Record<string, tf.Tensor>, data: Record<string, Float32Array | Int32Array>, start: number, size: number,
): Record<string, WireTensor> {
  const out: Record<string, WireTensor> = {};
  for (const [name, t] of Object.entries(inputs)) {
    const row = t.size / t.shape[0];
    out[name] = {
      data: data[name].slice(start * row, (start + size) * row),
      shape: [size, ...t.shape.slice(1)],
      dtype: t.dtype as 'float32' | 'int32',
    };
  }
  return out;
}

export function wireToTensors(wire: Record<string, WireTensor>): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [name, w] of Object.entries(wire)) out[name] = tf.tensor(w.data, w.shape, w.dtype);
  return out;
}

/**
 * The shard's mean loss and the gradient of that loss for every replica variable, in variable order (zeros for a
 * variable the loss does not reach). The caller owns the returned tensors.
 *
 * `microBatch` (optional) differentiates the shard in chunks of at most that many examples and accumulates the
 * size-weighted gradients: the same result, but the peak working set — and the wasm heap, which never shrinks — is
 * that of one chunk. `seed` is the shard's ShardContext.seed; each chunk gets seed + its first row.
 */
export function shardGradients(
  replica: Replica, inputs: Record<string, tf.Tensor>, microBatch?: number, seed = 0,
): { loss: tf.Scalar; grads: tf.Tensor[] } {
  const n = batchSizeOf(inputs);
  if (microBatch !== undefined && !(Number.isInteger(microBatch) && microBatch > 0)) {
    throw new InvalidArgumentError(`microBatch must be a positive integer, got ${microBatch}`);
  }
  const chunk = Math.min(n, microBatch ?? n);
  if (chunk === n) return chunkGradients(replica, inputs, seed);
  let loss: tf.Scalar = tf.scalar(0);
  let grads: tf.Tensor[] = replica.variables.map((v) => tf.zerosLike(v));
  for (let start = 0; start < n; start += chunk) {
    const size = Math.min(chunk, n - start);
    const part: Record<string, tf.Tensor> = {};
    for (const [name, t] of Object.entries(inputs)) part[name] = tf.slice(t, start, size);
    const r = chunkGradients(replica, part, (seed + start) | 0);
    const w = size / n;
    const next = tf.tidy(() => ({ loss: tf.add(loss, tf.mul(r.loss, w)) as tf.Scalar, grads: grads.map((g, j) => tf.add(g, tf.mul(r.grads[j], w))) }));
    tf.dispose([loss, ...grads, r.loss, ...r.grads, ...Object.values(part)]);
    loss = next.loss;
    grads = next.grads;
  }
  return { loss, grads };
}

function chunkGradients(replica: Replica, inputs: Record<string, tf.Tensor>, seed: number): { loss: tf.Scalar; grads: tf.Tensor[] } {
  const { value, grads } = tf.variableGrads(() => replica.loss(inputs, { seed }), replica.variables);
  const ordered = replica.variables.map((v) => grads[v.name] ?? tf.zerosLike(v));
  return { loss: value, grads: ordered };
}
