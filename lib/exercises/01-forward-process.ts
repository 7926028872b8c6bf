/**
 * Exercises of notebook 01 · The forward process. References are lib's own functions (lib/forward.ts, lib/schedule.ts).
 * Arguments cross the grader's process boundary, so a schedule travels as a number[] (betas or ᾱ), never as an object.
 * Also exports small case helpers that the later notebooks' specs reuse.
 */
import * as tf from '@tensorflow/tfjs';
import { addNoise, forwardStep } from '../forward';
import { makeRng } from '../random';
import { NoiseSchedule, posteriorCoefficients } from '../schedule';
import type { CheckCase, ExerciseSpec, Value } from './types';

/** The schedules the cases use: short (T = 20) so every step matters, one linear and one cosine (last β clipped). */
export function caseSchedules(): { name: string; schedule: NoiseSchedule }[] {
  return [
    { name: 'linear', schedule: NoiseSchedule.linear(20, 1e-3, 0.3) },
    { name: 'cosine', schedule: NoiseSchedule.cosine(20) },
  ];
}

/** β_t = 1 − ᾱ_t / ᾱ_{t−1} (with ᾱ_{−1} = 1), taken from lib's posteriorCoefficients: the schedule that has these ᾱ. */
export function scheduleFromAlphasCumprod(alphasCumprod: number[]): NoiseSchedule {
  return NoiseSchedule.fromBetas(alphasCumprod.map((a, i) => posteriorCoefficients(a, i === 0 ? 1 : alphasCumprod[i - 1]).beta));
}

/**
 * A seeded schedule nobody has seen: T in 8 … 27 and betas drawn uniformly in [1e-3, 0.4] (each hidden seed gives its
 * own, so a hard-coded T or table is caught).
 */
export function randomBetas(seed: number): number[] {
  const rng = makeRng(seed * 7919 + 17);
  const T = 8 + Math.floor(rng() * 20);
  return Array.from({ length: T }, () => 1e-3 + rng() * (0.4 - 1e-3));
}

/** Deterministic small integers for case timesteps. */
export function pickTimesteps(seed: number, n: number, T: number, salt = 0): number[] {
  const r = Math.abs(Math.floor(seed * 7919 + salt * 104729));
  return Array.from({ length: n }, (_, i) => (r + i * 7 + 3) % T);
}

/** One seeded step in 1 … T−2, for case lists that already test t = 0 and t = T−1 (so no case is listed twice). */
export function pickInteriorTimestep(seed: number, T: number, salt = 0): number {
  return 1 + pickTimesteps(seed, 1, Math.max(1, T - 2), salt)[0];
}

/** A seeded batch of small "images" [b, 4, 4, 1]. */
export function caseImages(b: number, seed: number): tf.Tensor4D {
  return tf.randomNormal([b, 4, 4, 1], 0, 1, 'float32', seed) as tf.Tensor4D;
}

const clampT = (t: number, T: number) => Math.max(0, Math.min(T - 1, t));
const asT = (v: Value) => v as tf.Tensor;
const nums = (v: Value) => v as number[];

// ------------------------------------------------------------------------------------------------ 01-forward-step

function forwardStepRef(xPrev: Value, t: Value, noise: Value, betas: Value): Value {
  return forwardStep(asT(xPrev), t as number, asT(noise), NoiseSchedule.fromBetas(nums(betas)));
}

export const forwardStepSpec: ExerciseSpec = {
  id: '01-forward-step',
  notebook: '01-forward-process',
  functionName: 'forwardStep',
  title: 'One step of the forward process',
  cases(seed: number): CheckCase[] {
    const cases: CheckCase[] = [];
    caseSchedules().forEach(({ name, schedule }, k) => {
      const betas = Array.from(schedule.betas);
      const T = schedule.T;
      const ts = [pickInteriorTimestep(seed, T, k), 0, T - 1];
      ts.forEach((t, j) => {
        const s = seed * 100 + k * 10 + j * 2;
        cases.push({ name: `${name}, t = ${t}${t === 0 ? ' (first step)' : t === T - 1 ? ' (last step)' : ''}`, args: [caseImages(3, s), t, caseImages(3, s + 1), betas] });
      });
    });
    return cases;
  },
  reference: forwardStepRef,
  tolerance: { atol: 1e-5, rtol: 1e-4 },
  hint: 'x_t = √(1 − β_t)·x_{t−1} + √β_t·ε with β_t = betas[t] (code index t, no shift); both coefficients are square roots.',
  wrong: {
    offByOne: (x, t, e, b) => forwardStepRef(x, clampT((t as number) + 1, nums(b).length), e, b),
    missingSqrt: (x, t, e, b) => tf.tidy(() => {
      const beta = nums(b)[t as number];
      return tf.add(tf.mul(asT(x), 1 - beta), tf.mul(asT(e), beta));
    }),
    swapped: (x, t, e, b) => forwardStepRef(e, t, x, b),
  },
};

// ------------------------------------------------------------------------------------------------ 01-alpha-bar

export const alphaBarSpec: ExerciseSpec = {
  id: '01-alpha-bar',
  notebook: '01-forward-process',
  functionName: 'alphaBar',
  title: 'ᾱ_t: how much of the signal is left after t steps',
  cases(seed: number): CheckCase[] {
    const random = randomBetas(seed);
    return [
      ...caseSchedules().map(({ name, schedule }) => ({ name: `${name} schedule, T = ${schedule.T}`, args: [Array.from(schedule.betas)] as Value[] })),
      { name: `random betas, T = ${random.length}`, args: [random] },
      { name: 'a single step (T = 1)', args: [[0.5]] },
    ];
  },
  reference: (betas) => Array.from(NoiseSchedule.fromBetas(nums(betas)).alphasCumprod),
  // float32 arithmetic (tf.cumprod of 1 − β) is off by up to ~1e-6 relative after 1000 steps; every known mistake by
  // at least β_t relative (≥ 1e-3 in these cases)
  tolerance: { atol: 1e-8, rtol: 1e-4 },
  hint: 'ᾱ_t = (1 − β_0)(1 − β_1)…(1 − β_t): a running product of α_s = 1 − β_s that INCLUDES step t (so ᾱ_0 = 1 − β_0).',
  wrong: {
    shiftedByOne: (betas) => Array.from(NoiseSchedule.fromBetas(nums(betas)).alphasCumprodPrev),
    productOfBetas: (betas) => { let p = 1; return nums(betas).map((b) => (p *= b)); },
    oneMinusSum: (betas) => { let s = 0; return nums(betas).map((b) => 1 - (s += b)); },
  },
};

// ------------------------------------------------------------------------------------------------ 01-q-sample

function qSampleRef(x0: Value, t: Value, noise: Value, abar: Value): Value {
  return addNoise(asT(x0), asT(noise), t as tf.Tensor1D, scheduleFromAlphasCumprod(nums(abar)));
}

export const qSampleSpec: ExerciseSpec = {
  id: '01-q-sample',
  notebook: '01-forward-process',
  functionName: 'qSample',
  title: 'Jump straight to step t: the closed form q(x_t | x_0)',
  cases(seed: number): CheckCase[] {
    const cases: CheckCase[] = [];
    caseSchedules().forEach(({ name, schedule }, k) => {
      const abar = Array.from(schedule.alphasCumprod);
      const T = schedule.T;
      const sets: [string, number[]][] = [
        ['a different random t per example', pickTimesteps(seed, 4, T, k + 5)],
        ['t = 0 for all', [0, 0, 0, 0]],
        ['t = T−1 for all', [T - 1, T - 1, T - 1, T - 1]],
      ];
      sets.forEach(([what, ts], j) => {
        const s = seed * 100 + 50 + k * 10 + j * 2;
        cases.push({ name: `${name}, ${what}`, args: [caseImages(4, s), tf.tensor1d(ts, 'int32'), caseImages(4, s + 1), abar] });
      });
    });
    return cases;
  },
  reference: qSampleRef,
  tolerance: { atol: 1e-5, rtol: 1e-4 },
  hint: 'x_t = √ᾱ_t·x0 + √(1 − ᾱ_t)·ε, with ᾱ_t = alphasCumprod[t[i]] for example i, reshaped to [B, 1, 1, 1] so it broadcasts over the image.',
  wrong: {
    offByOne: (x0, t, e, a) => tf.tidy(() => qSampleRef(x0, tf.minimum(tf.add(asT(t), 1), nums(a).length - 1) as tf.Tensor1D, e, a) as tf.Tensor),
    missingSqrt: (x0, t, e, a) => tf.tidy(() => {
      const ab = tf.tensor(Array.from(asT(t).dataSync(), (i) => nums(a)[i]), [asT(t).shape[0], 1, 1, 1]);
      return tf.add(tf.mul(ab, asT(x0)), tf.mul(tf.sub(1, ab), asT(e)));
    }),
    swapped: (x0, t, e, a) => qSampleRef(e, t, x0, a),
  },
};
