/**
 * Hidden edge cases, per exercise id, added to the graded cases (never shown to learners; the grader computes the
 * expected values with lib's reference). Each function gets the exercise's first hidden seed. Inputs must be Values.
 * Random inputs with other seeds come from points.json's hiddenSeeds (every spec's cases depend on the seed); these are
 * edges the public cases do not cover. This file is public with the course: an instructor who grades for credit keeps
 * a private copy (different seeds and edges) and passes --config (see docs/grading.md).
 */
import * as tf from '@tensorflow/tfjs';
import { NoiseSchedule } from '../../lib/schedule';
import type { CheckCase } from '../../lib/exercises/types';

const ho = () => NoiseSchedule.linear(1000);
const img = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);

export const hiddenCases: Record<string, (seed: number) => CheckCase[]> = {
  // A schedule of a different length than the public cases use, so that hard-coded T or indices are caught.
  '01-alpha-bar': () => [
    { name: 'T = 7, uneven betas up to 0.999', args: [[0.01, 0.2, 0.05, 0.5, 0.3, 0.9, 0.999]] },
    { name: 'linear 1e-4 … 0.02, T = 1000 (Ho et al.)', args: [Array.from(ho().betas)] },
  ],
  '01-forward-step': (seed) => [
    { name: 'one image [1, 3, 5, 2], Ho schedule, t = 999', args: [img([1, 3, 5, 2], seed), 999, img([1, 3, 5, 2], seed + 1), Array.from(ho().betas)] },
  ],
  '01-q-sample': (seed) => [
    { name: 'Ho schedule, t = 0 and 999 in one batch, [2, 3, 5, 1]', args: [img([2, 3, 5, 1], seed), tf.tensor1d([0, 999], 'int32'), img([2, 3, 5, 1], seed + 1), Array.from(ho().alphasCumprod)] },
  ],
  '02-posterior-variance': () => [{ name: 'T = 7, uneven betas up to 0.999', args: [[0.01, 0.2, 0.05, 0.5, 0.3, 0.9, 0.999]] }],
  '02-x0-from-eps': (seed) => [
    { name: 'Ho schedule, t = 500', args: [img([2, 4, 4, 1], seed), img([2, 4, 4, 1], seed + 1), 500, Array.from(ho().alphasCumprod)] },
  ],
  '03-gaussian-score': (seed) => [{ name: 'a far point, tiny std', args: [tf.tidy(() => tf.mul(img([3, 2], seed), 50)), [1, -1], 0.01, 0.05] }],
  '04-eps-loss': (seed) => [{ name: 'a batch of one', args: [img([1, 7], seed), img([1, 7], seed + 1)] }],
  '05-sinusoidal-embedding': () => [{ name: 't = 0 … 4, dim = 64', args: [tf.tensor1d([0, 1, 2, 3, 4], 'int32'), 64] }],
  '05-upsample-nearest': (seed) => [{ name: 'a 1×1 image, 3 channels', args: [img([2, 1, 1, 3], seed)] }],
  '06-clip-grad-norm': () => [
    { name: 'all-zero gradients (norm 0: unchanged, no division by 0)', args: [[tf.zeros([2, 2]), tf.zeros([3])], 1] },
    { name: 'norm exactly maxNorm (unchanged)', args: [[tf.tensor1d([3, 4])], 5] },
  ],
  '06-ema-update': (seed) => [{ name: 'maxDecay 0 (the average is the parameter)', args: [img([3], seed), img([3], seed + 1), 0, 50] }],
  '07-trailing-timesteps': () => [
    { name: 'T = 1, n = 1', args: [1, 1] },
    { name: 'T = 999, n = 7', args: [999, 7] },
  ],
  '07-ddim-step': (seed) => [
    { name: 'Ho schedule, t = 999 → 0', args: [img([2, 4, 4, 1], seed), img([2, 4, 4, 1], seed + 1), 999, 0, Array.from(ho().alphasCumprod)] },
  ],
  // A long jump from pure noise, and a tiny previous step (r ≈ 0.005: the correction term dominates) on another shape.
  '07-dpm-solver-step': (seed) => {
    const a = Array.from(ho().alphasCumprod);
    const c = Array.from(NoiseSchedule.cosine(1000).alphasCumprod);
    const x0 = (shape: number[], k: number) => tf.tidy(() => tf.tanh(img(shape, seed + k)));
    return [
      { name: 'cosine schedule, 999 → 500 → 1', args: [img([2, 4, 4, 1], seed), x0([2, 4, 4, 1], 1), x0([2, 4, 4, 1], 2), c[999], c[500], c[1]] },
      { name: 'one image [1, 5, 3, 2], Ho schedule, 501 → 500 → 40', args: [img([1, 5, 3, 2], seed + 3), x0([1, 5, 3, 2], 4), x0([1, 5, 3, 2], 5), a[501], a[500], a[40]] },
    ];
  },
  '08-class-embedding': (seed) => [{ name: 'only the null class', args: [img([11, 5], seed), tf.tensor1d([10, 10, 10], 'int32')] }],
  '08-cfg': (seed) => [{ name: 'negative w', args: [img([1, 4, 4, 1], seed), img([1, 4, 4, 1], seed + 1), -1] }],
  '10-reparameterize': (seed) => [
    { name: 'latent dimension 1, log σ² = 5 (σ ≈ 12)', args: [img([3, 1], seed), tf.fill([3, 1], 5), img([3, 1], seed + 1)] },
  ],
  '10-generator-loss': () => [
    { name: 'a single fake, logit −1000', args: [tf.tensor1d([-1000])] },
    { name: 'D fooled completely: logits +60 … +200', args: [tf.tensor1d([60, 100, 200])] },
  ],
};
