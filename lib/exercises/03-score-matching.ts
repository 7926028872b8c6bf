/**
 * Exercises of notebook 03 · Score matching. References: lib/data/toy2d.ts (exact score of a noised Gaussian
 * mixture), lib/losses.ts (dsmLoss), lib/param.ts (scoreFromEpsilon).
 */
import * as tf from '@tensorflow/tfjs';
import { gaussianMixture } from '../data/toy2d';
import { dsmLoss } from '../losses';
import { scoreFromEpsilon } from '../param';
import { caseImages, caseSchedules, pickInteriorTimestep, scheduleFromAlphasCumprod } from './01-forward-process';
import type { CheckCase, ExerciseSpec, Value } from './types';

const asT = (v: Value) => v as tf.Tensor;
const nums = (v: Value) => v as number[];
const points = (n: number, seed: number, scale = 2) => tf.tidy(() => tf.mul(tf.randomNormal([n, 2], 0, 1, 'float32', seed), scale) as tf.Tensor2D);

// ------------------------------------------------------------------------------------------------ 03-gaussian-score

function gaussianScoreRef(x: Value, mean: Value, std: Value, sigma: Value): Value {
  return gaussianMixture({ means: [nums(mean)], stds: std as number }).scoreAt(x as tf.Tensor2D, sigma as number);
}

export const gaussianScoreSpec: ExerciseSpec = {
  id: '03-gaussian-score',
  notebook: '03-score-matching',
  functionName: 'gaussianScore',
  title: 'The score of a Gaussian blurred by noise of level σ',
  cases(seed: number): CheckCase[] {
    return [
      { name: 'σ = 0 (the Gaussian itself)', args: [points(6, seed * 10 + 1), [0.5, -1], 0.3, 0] },
      { name: 'σ = 0.5', args: [points(6, seed * 10 + 2), [2, 0], 0.2, 0.5] },
      { name: 'σ = 2 (large noise)', args: [points(6, seed * 10 + 3), [-1, 1], 1, 2] },
    ];
  },
  reference: gaussianScoreRef,
  tolerance: { atol: 1e-5, rtol: 1e-4 },
  hint: 'Blurring N(μ, s²I) with N(0, σ²I) gives N(μ, (s² + σ²)I), whose score is (μ − x)/(s² + σ²): it points TOWARDS the mean.',
  wrong: {
    wrongSign: (x, m, s, g) => tf.tidy(() => tf.neg(asT(gaussianScoreRef(x, m, s, g)))),
    noiseIgnored: (x, m, s) => gaussianScoreRef(x, m, s, 0),
    stdNotSquared: (x, m, s, g) => tf.tidy(() => tf.div(tf.sub(tf.tensor2d([nums(m)]), asT(x)), (s as number) + (g as number))),
  },
};

// ------------------------------------------------------------------------------------------------ 03-dsm-loss

function dsmLossRef(scoreAtNoisy: Value, noise: Value, sigma: Value): Value {
  const s = asT(scoreAtNoisy);
  // lib's dsmLoss draws x̃ = x0 + σ·noise and calls the model on it; a model that returns the given scores makes the
  // loss a function of (scores, noise, σ) only, which is what the learner's function receives.
  return tf.tidy(() => dsmLoss(() => s, tf.zerosLike(s), sigma as number, { noise: asT(noise) }));
}

export const dsmLossSpec: ExerciseSpec = {
  id: '03-dsm-loss',
  notebook: '03-score-matching',
  functionName: 'dsmLoss',
  title: 'The denoising score matching loss',
  cases(seed: number): CheckCase[] {
    return [0.1, 0.5, 2].map((sigma, i) => ({
      name: `σ = ${sigma}`,
      args: [points(8, seed * 10 + 2 * i, 3), tf.randomNormal([8, 2], 0, 1, 'float32', seed * 10 + 2 * i + 1), sigma],
    }));
  },
  reference: dsmLossRef,
  tolerance: { atol: 1e-5, rtol: 1e-4 },
  hint: 'The target is the score of q(x̃ | x0) = N(x0, σ²I) at x̃ = x0 + σ·ε, which is −ε/σ; return the mean over the batch and the coordinates of (score + ε/σ)².',
  wrong: {
    wrongSign: (s, e, g) => tf.tidy(() => dsmLossRef(s, tf.neg(asT(e)), g) as tf.Tensor),
    missingDivision: (s, e) => tf.tidy(() => tf.mean(tf.square(tf.add(asT(s), asT(e))))),
    dividedBySigmaSquared: (s, e, g) => tf.tidy(() => dsmLossRef(s, tf.div(asT(e), g as number), g) as tf.Tensor),
  },
};

// ------------------------------------------------------------------------------------------------ 03-score-from-eps

function scoreFromEpsRef(eps: Value, t: Value, abar: Value): Value {
  return scoreFromEpsilon(asT(eps), t as number, scheduleFromAlphasCumprod(nums(abar)));
}

export const scoreFromEpsSpec: ExerciseSpec = {
  id: '03-score-from-eps',
  notebook: '03-score-matching',
  functionName: 'scoreFromEps',
  title: 'score = −ε/σ: a noise predictor is a score model',
  cases(seed: number): CheckCase[] {
    const cases: CheckCase[] = [];
    caseSchedules().forEach(({ name, schedule }, k) => {
      const abar = Array.from(schedule.alphasCumprod);
      [pickInteriorTimestep(seed, schedule.T, k + 9), 0, schedule.T - 1].forEach((t, j) => {
        cases.push({ name: `${name}, t = ${t}`, args: [caseImages(2, seed * 100 + 70 + k * 10 + j), t, abar] });
      });
    });
    return cases;
  },
  reference: scoreFromEpsRef,
  tolerance: { atol: 1e-4, rtol: 1e-4 },
  hint: 'In x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε the noise level is σ_t = √(1−ᾱ_t), and the score of q(x_t | x0) is −ε/σ_t.',
  wrong: {
    wrongSign: (e, t, a) => tf.tidy(() => tf.neg(asT(scoreFromEpsRef(e, t, a)))),
    missingSqrt: (e, t, a) => tf.tidy(() => tf.div(tf.neg(asT(e)), 1 - nums(a)[t as number])),
    signalInstead: (e, t, a) => tf.tidy(() => tf.div(tf.neg(asT(e)), Math.sqrt(nums(a)[t as number]))),
  },
};
