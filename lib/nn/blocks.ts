/**
 * U-Net building blocks: ResBlock with an embedding bias (or scale and shift), self-attention, stride-2 downsampling, nearest ×2 upsampling.
 */
import * as tf from '@tensorflow/tfjs';
import { ShapeMismatchError } from '../errors';
import {
  conv2d, type Conv2dParams, createConv2d, createDense, createGroupNorm, dense, type DenseParams, dropout, groupNorm, groupNormSilu,
  type GroupNormParams, silu,
} from './layers';
import { ParamStore } from './params';

/**
 * How the embedding enters a ResBlock: 'bias' adds one vector per channel after conv1 (DDPM, Ho et al. 2020);
 * 'scale-shift' modulates the second GroupNorm's output, GN(h)·(1 + s) + b (the "adaptive GroupNorm" of Dhariwal &
 * Nichol 2021), so time and class can rescale features as well as move them.
 */
export type EmbeddingMode = 'bias' | 'scale-shift';
export const EMBEDDING_MODES: readonly EmbeddingMode[] = ['bias', 'scale-shift'];

export interface ResBlockParams {
  norm1: GroupNormParams; conv1: Conv2dParams; embProj: DenseParams;
  norm2: GroupNormParams; conv2: Conv2dParams; skip?: Conv2dParams;
  dropout: number;
  embedding: EmbeddingMode;
}

export function createResBlock(
  store: ParamStore, name: string, inCh: number, outCh: number, embDim: number, groups: number, dropoutRate = 0,
  embedding: EmbeddingMode = 'bias',
): ResBlockParams {
  return {
    norm1: createGroupNorm(store, `${name}.norm1`, inCh, groups),
    conv1: createConv2d(store, `${name}.conv1`, inCh, outCh),
    embProj: createDense(store, `${name}.emb`, embDim, embedding === 'scale-shift' ? 2 * outCh : outCh),
    norm2: createGroupNorm(store, `${name}.norm2`, outCh, groups),
    conv2: createConv2d(store, `${name}.conv2`, outCh, outCh),
    // 1×1 conv only where the channel count changes; otherwise the identity carries x
    skip: inCh !== outCh ? createConv2d(store, `${name}.skip`, inCh, outCh, 1) : undefined,
    dropout: dropoutRate,
    embedding,
  };
}

export interface ApplyOptions {
  /** Dropout is applied only when training. */
  training?: boolean;
  /** Seed for this call's dropout masks (vary it per step). */
  seed?: number;
}

/**
 * 'bias':        h = conv1(SiLU(GN(x))) + Dense(SiLU(emb)) broadcast over H×W; a = SiLU(GN(h));
 * 'scale-shift': h = conv1(SiLU(GN(x)));  [s, b] = Dense(SiLU(emb));  a = SiLU(GN(h)·(1 + s) + b);
 * then h = conv2(dropout(a)); out = skip(x) + h. The embedding (time, plus class when conditional) enters every block.
 */
export function resBlock(p: ResBlockParams, x: tf.Tensor4D, emb: tf.Tensor2D, opts: ApplyOptions = {}): tf.Tensor4D {
  return tf.tidy(() => {
    let h = conv2d(p.conv1, groupNormSilu(p.norm1, x));
    const e = dense(p.embProj, silu(emb));
    const perChannel = (v: tf.Tensor2D) => tf.reshape(v, [v.shape[0], 1, 1, v.shape[1]]);
    let a: tf.Tensor4D;
    if (p.embedding === 'scale-shift') {
      const [scale, shift] = tf.split(e, 2, 1) as tf.Tensor2D[];
      a = silu(tf.add(tf.mul(groupNorm(p.norm2, h), tf.add(perChannel(scale), 1)), perChannel(shift)) as tf.Tensor4D);
    } else {
      h = tf.add(h, perChannel(e));
      a = groupNormSilu(p.norm2, h);
    }
    if (opts.training && p.dropout > 0) a = dropout(a, p.dropout, opts.seed ?? 0);
    h = conv2d(p.conv2, a);
    const skip = p.skip ? conv2d(p.skip, x) : x;
    return tf.add(skip, h);
  });
}

export interface AttentionParams { norm: GroupNormParams; qkv: DenseParams; proj: DenseParams; channels: number }

export function createAttention(store: ParamStore, name: string, channels: number, groups: number): AttentionParams {
  return {
    norm: createGroupNorm(store, `${name}.norm`, channels, groups),
    qkv: createDense(store, `${name}.qkv`, channels, 3 * channels),
    proj: createDense(store, `${name}.proj`, channels, channels),
    channels,
  };
}

/**
 * Single-head self-attention over the H·W positions (used at low resolution, e.g. 7×7 = 49 tokens):
 * out = x + proj(softmax(q kᵀ / √C) v), with q, k, v linear maps of GN(x).
 */
export function attention(p: AttentionParams, x: tf.Tensor4D): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  if (c !== p.channels) throw new ShapeMismatchError(`attention: input has ${c} channels, expected ${p.channels}`);
  return tf.tidy(() => {
    const n = h * w;
    const flat = tf.reshape(groupNorm(p.norm, x), [b * n, c]) as tf.Tensor2D;
    const qkv = tf.reshape(dense(p.qkv, flat), [b, n, 3 * c]);
    const [q, k, v] = tf.split(qkv, 3, 2) as tf.Tensor3D[];
    const weights = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(c)));
    const mixed = tf.reshape(tf.matMul(weights, v), [b * n, c]) as tf.Tensor2D;
    return tf.add(x, tf.reshape(dense(p.proj, mixed), [b, h, w, c])) as tf.Tensor4D;
  });
}

/** Stride-2 3×3 conv: halves H and W (rounding up), keeps channels. */
export function createDownsample(store: ParamStore, name: string, channels: number): Conv2dParams {
  return createConv2d(store, `${name}.conv`, channels, channels, 3, 2);
}

export function downsample(p: Conv2dParams, x: tf.Tensor4D): tf.Tensor4D {
  return conv2d(p, x);
}

/**
 * Nearest-neighbour ×2 with concat + reshape only (each pixel copied right, then each row copied down): the gradient is
 * slices and sums, available on every backend, unlike ResizeNearestNeighborGrad.
 */
export function upsampleNearest2x(x: tf.Tensor4D): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  return tf.tidy(() => {
    const wide = tf.reshape(tf.concat([x, x], 3), [b, h, 2 * w, c]);
    return tf.reshape(tf.concat([wide, wide], 2), [b, 2 * h, 2 * w, c]) as tf.Tensor4D;
  });
}

/** Nearest ×2 followed by a 3×3 conv (smooths the blocky copy; keeps channels). */
export function createUpsample(store: ParamStore, name: string, channels: number): Conv2dParams {
  return createConv2d(store, `${name}.conv`, channels, channels, 3, 1);
}

export function upsample(p: Conv2dParams, x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => conv2d(p, upsampleNearest2x(x)));
}
