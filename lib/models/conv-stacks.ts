/**
 * The two convolutional halves that the baselines of issue 14 share (one implementation each):
 *
 *   encoder  image [B, S, S, C] → features [B, (S/2^L)²·w_L]: per level a 3×3 stride-2 conv (28 → 14 → 7), then
 *            GroupNorm + SiLU (the VAE's encoder) or LeakyReLU without normalisation (the GAN's discriminator), flattened.
 *   decoder  vector [B, n] → image [B, S, S, C] in (−1, 1): dense → reshape [S/2^L, S/2^L, w_L] → per level, deepest
 *            first: GroupNorm + SiLU → nearest ×2 → 3×3 conv (to the next shallower width) → GroupNorm + SiLU → 3×3 conv
 *            → tanh (the VAE's decoder mean, the GAN's generator).
 *
 * Why these parts: GroupNorm + SiLU is one fused native kernel (lib/nn/group-norm.ts), and GroupNorm, unlike batch
 * norm, gives each image the same output whatever else is in the batch (no running statistics to checkpoint, sampling
 * 1 or 64 images gives the same pictures). Nearest ×2 + conv is the U-Net's upsampler (lib/nn/blocks.ts): its gradient
 * is slices and sums on every backend, and it avoids the checkerboard artefacts of strided transposed convolutions
 * (Odena et al. 2016). Every op here has a gradient on the wasm backend (shared/notes/environment.md).
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../errors';
import { upsampleNearest2x } from '../nn/blocks';
import {
  conv2d, type Conv2dParams, createConv2d, createDense, createGroupNorm, dense, type DenseParams, groupNormSilu,
  type GroupNormParams,
} from '../nn/layers';
import type { ParamStore } from '../nn/params';
import { checkImages } from './baseline-common';
import { countUnder, type SummaryRow } from './types';

/** What follows each encoder conv: GroupNorm + SiLU, or LeakyReLU(slope) without normalisation. */
export type EncoderActivation = { kind: 'groupNormSilu'; groups: number } | { kind: 'leakyRelu'; slope: number };

export interface ConvEncoderParams {
  convs: Conv2dParams[];
  norms: (GroupNormParams | undefined)[];
  activation: EncoderActivation;
  imageSize: number;
  channels: number;
  /** Length of the flattened output: (imageSize / 2^levels)² · last width. */
  featureDim: number;
}

/** Shared checks: positive integer widths, imageSize divisible by 2^levels, groups dividing every width. */
export function checkConvStack(what: string, imageSize: number, channels: number, widths: number[], groups?: number): void {
  const bad = (msg: string) => { throw new InvalidArgumentError(`${what}: ${msg}`); };
  const posInt = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v > 0;
  if (!Array.isArray(widths) || widths.length < 1 || !widths.every(posInt)) bad(`widths must be a non-empty list of positive integers, got ${JSON.stringify(widths)}`);
  if (!posInt(imageSize)) bad(`imageSize must be a positive integer, got ${imageSize}`);
  if (!posInt(channels)) bad(`channels must be a positive integer, got ${channels}`);
  const div = 2 ** widths.length;
  if (imageSize % div !== 0) bad(`imageSize ${imageSize} must be divisible by 2^levels = ${div} (one halving per width)`);
  if (groups !== undefined) {
    if (!posInt(groups)) bad(`groups must be a positive integer, got ${groups}`);
    if (widths.some((w) => w % groups !== 0)) bad(`groups ${groups} must divide every width (${widths})`);
  }
}

export function createConvEncoder(
  store: ParamStore, name: string, imageSize: number, channels: number, widths: number[], activation: EncoderActivation,
): ConvEncoderParams {
  checkConvStack(name, imageSize, channels, widths, activation.kind === 'groupNormSilu' ? activation.groups : undefined);
  if (activation.kind === 'leakyRelu' && !(activation.slope >= 0 && activation.slope < 1)) {
    throw new InvalidArgumentError(`${name}: LeakyReLU slope must be in [0, 1), got ${activation.slope}`);
  }
  const convs: Conv2dParams[] = [];
  const norms: (GroupNormParams | undefined)[] = [];
  let ch = channels;
  widths.forEach((w, i) => {
    convs.push(createConv2d(store, `${name}.${i}.conv`, ch, w, 3, 2));
    norms.push(activation.kind === 'groupNormSilu' ? createGroupNorm(store, `${name}.${i}.norm`, w, activation.groups) : undefined);
    ch = w;
  });
  const side = imageSize / 2 ** widths.length;
  return { convs, norms, activation, imageSize, channels, featureDim: side * side * ch };
}

/** x [B, S, S, C] → [B, featureDim]. */
export function convEncoder(p: ConvEncoderParams, x: tf.Tensor): tf.Tensor2D {
  checkImages('encoder', x, p.imageSize, p.channels);
  return tf.tidy(() => {
    let h = x as tf.Tensor4D;
    p.convs.forEach((conv, i) => {
      h = conv2d(conv, h);
      const norm = p.norms[i];
      if (p.activation.kind === 'groupNormSilu') h = groupNormSilu(norm as GroupNormParams, h);
      else h = tf.leakyRelu(h, p.activation.slope);
    });
    return tf.reshape(h, [h.shape[0], p.featureDim]) as tf.Tensor2D;
  });
}

export interface ConvDecoderParams {
  input: DenseParams;
  /** Per level, deepest first: the norm before the upsampling and the conv after it. */
  ups: { norm: GroupNormParams; conv: Conv2dParams }[];
  normOut: GroupNormParams;
  convOut: Conv2dParams;
  /** Spatial side and channels of the first feature map (imageSize / 2^levels, last width). */
  side: number;
  width: number;
  inDim: number;
}

/** `widths` in encoder order (shallow → deep): the decoder starts at the last one and ends at the first. */
export function createConvDecoder(
  store: ParamStore, name: string, inDim: number, imageSize: number, channels: number, widths: number[], groups: number,
): ConvDecoderParams {
  checkConvStack(name, imageSize, channels, widths, groups);
  if (!(Number.isInteger(inDim) && inDim > 0)) throw new InvalidArgumentError(`${name}: input size must be a positive integer, got ${inDim}`);
  const side = imageSize / 2 ** widths.length;
  const width = widths[widths.length - 1];
  const input = createDense(store, `${name}.input`, inDim, side * side * width);
  const ups: ConvDecoderParams['ups'] = [];
  let ch = width;
  for (let i = widths.length - 1; i >= 0; i--) {
    const out = widths[Math.max(i - 1, 0)]; // the shallowest level keeps its own width up to the output conv
    ups.push({ norm: createGroupNorm(store, `${name}.up.${i}.norm`, ch, groups), conv: createConv2d(store, `${name}.up.${i}.conv`, ch, out) });
    ch = out;
  }
  return {
    input, ups, side, width, inDim,
    normOut: createGroupNorm(store, `${name}.normOut`, ch, groups),
    convOut: createConv2d(store, `${name}.convOut`, ch, channels),
  };
}

/** v [B, inDim] → image [B, S, S, C], tanh: every pixel in (−1, 1) like the data. */
export function convDecoder(p: ConvDecoderParams, v: tf.Tensor2D): tf.Tensor4D {
  if (v.rank !== 2 || v.shape[1] !== p.inDim) throw new ShapeMismatchError(`decoder: input must be [B, ${p.inDim}], got [${v.shape}]`);
  return tf.tidy(() => {
    let h = tf.reshape(dense(p.input, v), [v.shape[0], p.side, p.side, p.width]) as tf.Tensor4D;
    for (const up of p.ups) h = conv2d(up.conv, upsampleNearest2x(groupNormSilu(up.norm, h)));
    return tf.tanh(conv2d(p.convOut, groupNormSilu(p.normOut, h)));
  });
}

/** Summary rows of an encoder made under `name` (one per level), for a model's summary(). */
export function encoderRows(store: ParamStore, name: string, p: ConvEncoderParams): SummaryRow[] {
  let side = p.imageSize;
  return p.convs.map((c, i) => {
    side /= 2;
    return { name: `${name}.${i}`, outputShape: [side, side, c.outCh], params: countUnder(store, `${name}.${i}`) };
  });
}

/** Summary rows of a decoder made under `name`: its input map, each level (deepest first) and the output. */
export function decoderRows(store: ParamStore, name: string, p: ConvDecoderParams, channels: number): SummaryRow[] {
  const rows: SummaryRow[] = [{ name: `${name}.input`, outputShape: [p.side, p.side, p.width], params: countUnder(store, `${name}.input`) }];
  let side = p.side;
  const levels = p.ups.length;
  p.ups.forEach((up, j) => {
    side *= 2;
    const n = `${name}.up.${levels - 1 - j}`;
    rows.push({ name: n, outputShape: [side, side, up.conv.outCh], params: countUnder(store, n) });
  });
  rows.push({
    name: `${name}.out`, outputShape: [side, side, channels],
    params: countUnder(store, `${name}.normOut`) + countUnder(store, `${name}.convOut`),
  });
  return rows;
}
