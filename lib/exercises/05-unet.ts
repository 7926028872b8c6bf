/**
 * Exercises of notebook 05 · The U-Net, piece by piece. References: lib/nn/embedding.ts (sinusoidalEmbedding),
 * lib/nn/layers.ts (groupNorm), lib/nn/blocks.ts (upsampleNearest2x).
 */
import * as tf from '@tensorflow/tfjs';
import { sinusoidalEmbedding } from '../nn/embedding';
import { groupNorm, type GroupNormParams } from '../nn/layers';
import { upsampleNearest2x } from '../nn/blocks';
import type { CheckCase, ExerciseSpec, Value } from './types';

const asT = (v: Value) => v as tf.Tensor;
const ints = (values: number[]) => tf.tensor1d(values, 'int32');

// ------------------------------------------------------------------------------------------------ 05-sinusoidal-embedding

function sinusoidalRef(t: Value, dim: Value): Value {
  return sinusoidalEmbedding(t as tf.Tensor1D, dim as number);
}

/** The embedding with frequencies 10000^(−i/h) evaluated by a caller-chosen rule (the wrong answers vary it). */
function sinusoidalWith(t: Value, dim: Value, freq: (i: number, half: number) => number, order: 'sin-cos' | 'cos-sin'): Value {
  const half = (dim as number) / 2;
  return tf.tidy(() => {
    const f = tf.tensor2d(Array.from({ length: half }, (_, i) => freq(i, half)), [1, half]);
    const args = tf.mul(tf.reshape(tf.cast(asT(t), 'float32'), [-1, 1]), f);
    return order === 'sin-cos' ? tf.concat([tf.sin(args), tf.cos(args)], 1) : tf.concat([tf.cos(args), tf.sin(args)], 1);
  });
}

export const sinusoidalEmbeddingSpec: ExerciseSpec = {
  id: '05-sinusoidal-embedding',
  notebook: '05-unet',
  functionName: 'sinusoidalEmbedding',
  title: 'The sinusoidal timestep embedding',
  cases(seed: number): CheckCase[] {
    const r = Math.abs(Math.floor(seed * 7919)) % 900;
    return [
      { name: 'a batch of random t, dim = 8', args: [ints([r, (r + 37) % 1000, (r + 501) % 1000, 3]), 8] },
      { name: 't = 0 (sin = 0, cos = 1)', args: [ints([0, 0]), 6] },
      { name: 'dim = 2 (one frequency, f_0 = 1)', args: [ints([1, 2, 999]), 2] },
      { name: 't = T−1 = 999, dim = 32', args: [ints([999, 998, r]), 32] },
    ];
  },
  reference: sinusoidalRef,
  // float32 arguments up to t = 999 radians carry ~1e-4 of rounding; wrong answers are off by O(1)
  tolerance: { atol: 5e-4, rtol: 1e-3 },
  hint: 'h = dim/2 frequencies f_i = 10000^(−i/h) for i = 0 … h−1 (so f_0 = 1); the row of t is [sin(t·f_0) … sin(t·f_{h−1}), cos(t·f_0) … cos(t·f_{h−1})]: all sines first, then all cosines.',
  wrong: {
    cosinesFirst: (t, d) => sinusoidalWith(t, d, (i, h) => Math.exp((-Math.log(10000) * i) / h), 'cos-sin'),
    exponentOverDim: (t, d) => sinusoidalWith(t, d, (i, h) => Math.exp((-Math.log(10000) * i) / (2 * h)), 'sin-cos'),
    papersT: (t, d) => tf.tidy(() => sinusoidalRef(tf.add(asT(t), 1), d) as tf.Tensor),
  },
};

// ------------------------------------------------------------------------------------------------ 05-group-norm

/** lib's layer applied to plain gamma/beta tensors (it only multiplies and adds them; no variables are created). */
function groupNormRef(x: Value, groups: Value, gamma: Value, beta: Value): Value {
  const channels = asT(x).shape[3];
  const p = { gamma: asT(gamma), beta: asT(beta), groups: groups as number, channels } as unknown as GroupNormParams;
  return groupNorm(p, x as tf.Tensor4D);
}

/**
 * Normalization done differently (the wrong answers): moments over `axes` of x reshaped to [B, H·W, G, C/G], divided
 * by √(variance + ε) ('std'), by variance + ε ('variance'), by √variance + ε ('epsOutside') or by √variance ('noEps').
 */
function normalizeOver(x: Value, groups: Value, gamma: Value, beta: Value, axes: number[], scaleBy: 'std' | 'variance' | 'epsOutside' | 'noEps' = 'std'): Value {
  const [b, h, w, c] = asT(x).shape;
  const g = groups as number;
  return tf.tidy(() => {
    const r = tf.reshape(asT(x), [b, h * w, g, c / g]);
    const { mean, variance } = tf.moments(r, axes, true);
    const scale = {
      std: () => tf.rsqrt(tf.add(variance, 1e-5)),
      variance: () => tf.reciprocal(tf.add(variance, 1e-5)),
      epsOutside: () => tf.reciprocal(tf.add(tf.sqrt(variance), 1e-5)),
      noEps: () => tf.rsqrt(variance),
    }[scaleBy]();
    const normed = tf.reshape(tf.mul(tf.sub(r, mean), scale), [b, h, w, c]);
    return tf.add(tf.mul(normed, asT(gamma)), asT(beta));
  });
}

/** x = offset + scale·N(0, 1), except that the channels of group `quietGroup` get `quietScale`. */
function gnCase(name: string, shape: [number, number, number, number], groups: number, seed: number, offset = 0, scale = 1, quiet?: { group: number; scale: number }): CheckCase {
  const c = shape[3];
  const per = c / groups;
  const channelScale = Array.from({ length: c }, (_, k) => (quiet && Math.floor(k / per) === quiet.group ? quiet.scale : scale));
  return {
    name,
    args: [
      tf.tidy(() => tf.add(tf.mul(tf.randomNormal(shape, 0, 1, 'float32', seed), tf.tensor1d(channelScale)), offset)),
      groups,
      tf.tidy(() => tf.add(tf.randomNormal([c], 0, 0.5, 'float32', seed + 1), 1)),
      tf.randomNormal([c], 0, 0.5, 'float32', seed + 2),
    ],
  };
}

export const groupNormSpec: ExerciseSpec = {
  id: '05-group-norm',
  notebook: '05-unet',
  functionName: 'groupNorm',
  title: 'Group normalization',
  cases(seed: number): CheckCase[] {
    const s = seed * 100;
    return [
      gnCase('B = 2, 8 channels in 4 groups', [2, 4, 4, 8], 4, s + 10),
      gnCase('values far from 0 (mean 5, std 3)', [2, 3, 3, 4], 2, s + 20, 5, 3),
      gnCase('1 group (= layer norm)', [2, 4, 4, 6], 1, s + 30),
      gnCase('one group per channel (= instance norm)', [3, 2, 2, 4], 4, s + 40, -2, 0.5),
      // variance ≈ 1e-6 ≪ ε = 1e-5: only here does it matter where ε goes (√(var + ε), not √var + ε)
      gnCase('a nearly constant group (variance ≪ ε)', [2, 3, 3, 6], 3, s + 50, 0, 1, { group: 1 + (Math.abs(seed) % 2), scale: 1e-3 }),
    ];
  },
  reference: groupNormRef,
  tolerance: { atol: 1e-4, rtol: 1e-3 },
  hint: 'Per example and per group: split the C channels into `groups` groups of C/groups, take the mean and variance over (H, W, the channels of the group), compute (x − mean)/√(variance + 1e-5), then multiply by gamma and add beta per channel. The batch axis is never averaged over.',
  wrong: {
    overTheBatchToo: (x, g, gm, bt) => normalizeOver(x, g, gm, bt, [0, 1, 3]),
    ignoresGroups: (x, g, gm, bt) => normalizeOver(x, 1, gm, bt, [1, 2, 3]),
    dividesByVariance: (x, g, gm, bt) => normalizeOver(x, g, gm, bt, [1, 3], 'variance'),
    epsOutsideSqrt: (x, g, gm, bt) => normalizeOver(x, g, gm, bt, [1, 3], 'epsOutside'),
    noEpsilon: (x, g, gm, bt) => normalizeOver(x, g, gm, bt, [1, 3], 'noEps'),
  },
};

// ------------------------------------------------------------------------------------------------ 05-upsample-nearest

export const upsampleNearestSpec: ExerciseSpec = {
  id: '05-upsample-nearest',
  notebook: '05-unet',
  functionName: 'upsampleNearest2x',
  title: 'Nearest-neighbour upsampling ×2',
  cases(seed: number): CheckCase[] {
    return [
      { name: '[1, 2, 2, 1]', args: [tf.randomNormal([1, 2, 2, 1], 0, 1, 'float32', seed * 10 + 1)] },
      { name: '[2, 3, 3, 2] (odd size, 2 channels)', args: [tf.randomNormal([2, 3, 3, 2], 0, 1, 'float32', seed * 10 + 2)] },
      { name: '[1, 7, 7, 4] (the U-Net\'s bottom)', args: [tf.randomNormal([1, 7, 7, 4], 0, 1, 'float32', seed * 10 + 3)] },
    ];
  },
  reference: (x) => upsampleNearest2x(x as tf.Tensor4D),
  tolerance: { atol: 1e-6, rtol: 0 },
  hint: 'Output pixel (2i + a, 2j + b) for a, b ∈ {0, 1} copies input pixel (i, j): each pixel becomes a 2×2 block. Tiling the whole image twice is not the same thing.',
  wrong: {
    tiledImage: (x) => tf.tile(asT(x), [1, 2, 2, 1]),
    bilinear: (x) => {
      const [, h, w] = asT(x).shape;
      return tf.image.resizeBilinear(x as tf.Tensor4D, [2 * h, 2 * w]);
    },
  },
};
