/**
 * Conditioning signals: the sinusoidal timestep embedding (Vaswani et al.; as in DDPM) followed by a small MLP, and a
 * learned class embedding whose last row is the null class used for classifier-free guidance.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../errors';
import { createDense, dense, type DenseParams, silu } from './layers';
import { fanInNormal, ParamStore } from './params';

/**
 * t int32 [B] → [B, dim]: [sin(t·f_0) … sin(t·f_{h−1}), cos(t·f_0) … cos(t·f_{h−1})], f_i = 10000^(−i/h), h = dim/2.
 * Low i vary fast with t, high i slowly, so nearby timesteps get nearby but distinct codes.
 */
export function sinusoidalEmbedding(t: tf.Tensor1D, dim: number, maxPeriod = 10000): tf.Tensor2D {
  if (!Number.isInteger(dim) || dim < 2 || dim % 2 !== 0) {
    throw new InvalidArgumentError(`sinusoidalEmbedding: dim must be an even integer ≥ 2, got ${dim}`);
  }
  if (t.rank !== 1) throw new ShapeMismatchError(`sinusoidalEmbedding: t must be [B], got [${t.shape}]`);
  const half = dim / 2;
  const freqs = Float32Array.from({ length: half }, (_, i) => Math.exp((-Math.log(maxPeriod) * i) / half));
  return tf.tidy(() => {
    const args = tf.mul(tf.reshape(tf.cast(t, 'float32'), [-1, 1]), tf.tensor2d(freqs, [1, half]));
    return tf.concat([tf.sin(args), tf.cos(args)], 1) as tf.Tensor2D;
  });
}

export interface TimeEmbeddingParams { sinDim: number; fc1: DenseParams; fc2: DenseParams }

export function createTimeEmbedding(store: ParamStore, name: string, sinDim: number, embDim: number): TimeEmbeddingParams {
  return {
    sinDim,
    fc1: createDense(store, `${name}.fc1`, sinDim, embDim),
    fc2: createDense(store, `${name}.fc2`, embDim, embDim),
  };
}

/** t [B] → sinusoid → dense → SiLU → dense: [B, embDim]. */
export function timeEmbedding(p: TimeEmbeddingParams, t: tf.Tensor1D): tf.Tensor2D {
  return tf.tidy(() => dense(p.fc2, silu(dense(p.fc1, sinusoidalEmbedding(t, p.sinDim)))));
}

export interface ClassEmbeddingParams { table: tf.Variable; numClasses: number; embDim: number }

/** numClasses + 1 rows: row numClasses is the null class ("no label") for classifier-free guidance. */
export function createClassEmbedding(store: ParamStore, name: string, numClasses: number, embDim: number): ClassEmbeddingParams {
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new InvalidArgumentError(`class embedding: numClasses must be a positive integer, got ${numClasses}`);
  }
  return { table: store.create(`${name}.table`, [numClasses + 1, embDim], fanInNormal(1)), numClasses, embDim };
}

/**
 * classes int32 [B] in 0 … numClasses (numClasses = null) → [B, embDim]. A one-hot matmul rather than tf.gather: its
 * gradient is a matmul, which every backend has (gather's gradient needs UnsortedSegmentSum, missing on wasm).
 */
export function classEmbedding(p: ClassEmbeddingParams, classes: tf.Tensor1D): tf.Tensor2D {
  if (classes.rank !== 1) throw new ShapeMismatchError(`class embedding: classes must be [B], got [${classes.shape}]`);
  return tf.tidy(() => {
    const oneHot = tf.oneHot(tf.cast(classes, 'int32'), p.numClasses + 1);
    return tf.matMul(tf.cast(oneHot, 'float32'), p.table as tf.Tensor2D);
  });
}
