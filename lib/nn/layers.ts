/**
 * Basic layers as (create, apply) pairs over explicit parameters: dense, conv2d (+bias), groupNorm, silu, dropout.
 * Images are NHWC.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../errors';
import { groupNormOp } from './group-norm';
import { fanInNormal, ones, ParamStore, zeros } from './params';

export interface DenseParams { w: tf.Variable; b: tf.Variable; inDim: number; outDim: number }

export function createDense(store: ParamStore, name: string, inDim: number, outDim: number): DenseParams {
  return {
    w: store.create(`${name}.w`, [inDim, outDim], fanInNormal(inDim)),
    b: store.create(`${name}.b`, [outDim], zeros),
    inDim,
    outDim,
  };
}

/** x [B, in] → [B, out]. */
export function dense(p: DenseParams, x: tf.Tensor2D): tf.Tensor2D {
  if (x.shape[1] !== p.inDim) throw new ShapeMismatchError(`dense: input has ${x.shape[1]} features, expected ${p.inDim}`);
  return tf.add(tf.matMul(x, p.w as tf.Tensor2D), p.b);
}

export interface Conv2dParams { w: tf.Variable; b: tf.Variable; kernel: number; inCh: number; outCh: number; stride: number }

export function createConv2d(
  store: ParamStore, name: string, inCh: number, outCh: number, kernel = 3, stride = 1,
): Conv2dParams {
  return {
    w: store.create(`${name}.w`, [kernel, kernel, inCh, outCh], fanInNormal(kernel * kernel * inCh)),
    b: store.create(`${name}.b`, [outCh], zeros),
    kernel,
    inCh,
    outCh,
    stride,
  };
}

/** 'same' padding: stride 1 keeps H×W, stride 2 gives ceil(H/2) (28 → 14 → 7). */
export function conv2d(p: Conv2dParams, x: tf.Tensor4D): tf.Tensor4D {
  if (x.shape[3] !== p.inCh) throw new ShapeMismatchError(`conv2d: input has ${x.shape[3]} channels, expected ${p.inCh}`);
  // fused: one kernel adds the bias inside the convolution (native kernels) instead of a separate Add
  return tf.fused.conv2d({ x, filter: p.w as tf.Tensor4D, strides: p.stride, pad: 'same', bias: p.b });
}

export interface GroupNormParams { gamma: tf.Variable; beta: tf.Variable; groups: number; channels: number }

export function createGroupNorm(store: ParamStore, name: string, channels: number, groups: number): GroupNormParams {
  if (!Number.isInteger(groups) || groups <= 0 || channels % groups !== 0) {
    throw new InvalidArgumentError(`groupNorm '${name}': ${channels} channels cannot be split into ${groups} groups`);
  }
  return {
    gamma: store.create(`${name}.gamma`, [channels], ones),
    beta: store.create(`${name}.beta`, [channels], zeros),
    groups,
    channels,
  };
}

/**
 * Group normalization (Wu & He 2018): each sample's channels are split into groups, normalized over (H, W, channels of
 * the group), then scaled and shifted per channel. Independent of batch size, unlike batch norm. (Formula: group-norm.ts.)
 */
export function groupNorm(p: GroupNormParams, x: tf.Tensor4D, eps = 1e-5): tf.Tensor4D {
  checkGroupNormInput(p, x);
  return groupNormOp(x, p.gamma, p.beta, p.groups, eps, false);
}

/** silu(groupNorm(p, x)), fused into one kernel where the backend has it (the pair every ResBlock applies). */
export function groupNormSilu(p: GroupNormParams, x: tf.Tensor4D, eps = 1e-5): tf.Tensor4D {
  checkGroupNormInput(p, x);
  return groupNormOp(x, p.gamma, p.beta, p.groups, eps, true);
}

function checkGroupNormInput(p: GroupNormParams, x: tf.Tensor4D): void {
  if (x.shape[3] !== p.channels) throw new ShapeMismatchError(`groupNorm: input has ${x.shape[3]} channels, expected ${p.channels}`);
}

/** SiLU / swish: x·σ(x). */
export function silu<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(x)) as T);
}

/** Inverted dropout with an explicit seed (reproducible training); identity when rate is 0. */
export function dropout<T extends tf.Tensor>(x: T, rate: number, seed: number): T {
  if (rate < 0 || rate >= 1) throw new InvalidArgumentError(`dropout rate must be in [0, 1), got ${rate}`);
  if (rate === 0) return x;
  return tf.tidy(() => {
    const keep = tf.cast(tf.greaterEqual(tf.randomUniform(x.shape, 0, 1, 'float32', seed), rate), 'float32');
    return tf.div(tf.mul(x, keep), 1 - rate) as T;
  });
}
