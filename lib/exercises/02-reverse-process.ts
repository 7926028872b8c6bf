/**
 * Exercises of notebook 02 · The reverse process. References: lib/forward.ts (posterior), lib/schedule.ts
 * (posteriorVariance), lib/param.ts (x0FromEpsilon).
 */
import * as tf from '@tensorflow/tfjs';
import { posterior } from '../forward';
import { x0FromEpsilon } from '../param';
import { NoiseSchedule } from '../schedule';
import { caseImages, caseSchedules, pickInteriorTimestep, randomBetas, scheduleFromAlphasCumprod } from './01-forward-process';
import type { CheckCase, ExerciseSpec, Value } from './types';

const asT = (v: Value) => v as tf.Tensor;
const nums = (v: Value) => v as number[];

/** Cases [a, b, t, alphasCumprod] over both schedules at a random t, t = 0 and t = T−1 (a, b: seeded images [3,4,4,1]). */
function imageCases(seed: number, salt: number): CheckCase[] {
  const cases: CheckCase[] = [];
  caseSchedules().forEach(({ name, schedule }, k) => {
    const T = schedule.T;
    const abar = Array.from(schedule.alphasCumprod);
    [pickInteriorTimestep(seed, T, k + salt), 0, T - 1].forEach((t, j) => {
      const s = seed * 100 + salt * 20 + k * 10 + j * 2;
      const label = t === 0 ? ' (first step: ᾱ_{t−1} = 1)' : t === T - 1 ? ' (last step)' : '';
      cases.push({ name: `${name}, t = ${t}${label}`, args: [caseImages(3, s), caseImages(3, s + 1), t, abar] });
    });
  });
  return cases;
}

// ------------------------------------------------------------------------------------------------ 02-posterior-mean

function posteriorMeanRef(x0: Value, xt: Value, t: Value, abar: Value): Value {
  const p = posterior(asT(x0), asT(xt), t as number, scheduleFromAlphasCumprod(nums(abar)));
  tf.dispose([p.variance, p.logVariance]);
  return p.mean;
}

/** The mean with ᾱ_{t−1} taken from a wrongly padded array (ᾱ_{−1} := ᾱ_0 instead of 1) — pitfall 2. */
function posteriorMeanPaddedWrong(x0: Value, xt: Value, t: Value, abar: Value): Value {
  const a = nums(abar);
  const tt = t as number;
  const abT = a[tt];
  const abPrev = tt === 0 ? a[0] : a[tt - 1];
  const beta = 1 - abT / abPrev;
  return tf.tidy(() => tf.add(
    tf.mul(asT(x0), (Math.sqrt(abPrev) * beta) / (1 - abT)),
    tf.mul(asT(xt), (Math.sqrt(1 - beta) * (1 - abPrev)) / (1 - abT)),
  ));
}

export const posteriorMeanSpec: ExerciseSpec = {
  id: '02-posterior-mean',
  notebook: '02-reverse-process',
  functionName: 'posteriorMean',
  title: 'The mean of q(x_{t−1} | x_t, x_0)',
  cases: (seed) => imageCases(seed, 1),
  reference: posteriorMeanRef,
  tolerance: { atol: 1e-5, rtol: 1e-4 },
  hint: 'μ̃ = √ᾱ_{t−1}·β_t/(1−ᾱ_t)·x0 + √α_t·(1−ᾱ_{t−1})/(1−ᾱ_t)·x_t, with β_t = 1 − ᾱ_t/ᾱ_{t−1}, α_t = 1 − β_t and ᾱ_{t−1} = 1 at t = 0.',
  wrong: {
    paddedOnTheWrongSide: posteriorMeanPaddedWrong,
    swappedCoefficients: (x0, xt, t, a) => posteriorMeanRef(xt, x0, t, a),
    offByOne: (x0, xt, t, a) => posteriorMeanRef(x0, xt, Math.min((t as number) + 1, nums(a).length - 1), a),
  },
};

// ------------------------------------------------------------------------------------------------ 02-posterior-variance

export const posteriorVarianceSpec: ExerciseSpec = {
  id: '02-posterior-variance',
  notebook: '02-reverse-process',
  functionName: 'posteriorVariance',
  title: 'β̃_t, the variance of q(x_{t−1} | x_t, x_0) — not β_t',
  cases: (seed) => {
    const random = randomBetas(seed + 101);
    return [
      ...caseSchedules().map(({ name, schedule }) => ({ name: `${name} schedule, T = ${schedule.T}`, args: [Array.from(schedule.betas)] as Value[] })),
      { name: `random betas, T = ${random.length}`, args: [random] },
      { name: 'linear 1e-4 … 0.02, T = 1000 (Ho et al.)', args: [Array.from(NoiseSchedule.linear(1000).betas)] },
    ];
  },
  reference: (betas) => Array.from(NoiseSchedule.fromBetas(nums(betas)).posteriorVariance),
  // float32 arithmetic loses ~3e-4 relative of 1 − ᾱ_{t−1} when ᾱ_{t−1} ≈ 1 − 1e-4 (Ho's first steps): ~1.3e-8 absolute
  // on β̃ ≈ 5e-5; every known mistake is off by ≥ 1e-5 absolute at some step
  tolerance: { atol: 1e-7, rtol: 1e-3 },
  hint: 'β̃_t = β_t·(1 − ᾱ_{t−1})/(1 − ᾱ_t), with ᾱ_{t−1} = 1 at t = 0 — so β̃_0 = 0: the last reverse step adds no noise.',
  wrong: {
    betaInstead: (betas) => nums(betas).slice(),
    shiftedAlphaBar: (betas) => {
      const s = NoiseSchedule.fromBetas(nums(betas));
      return nums(betas).map((b, t) => (b * (1 - s.alphasCumprod[t])) / (1 - (t + 1 < s.T ? s.alphasCumprod[t + 1] : s.alphasCumprod[t])));
    },
    standardDeviation: (betas) => Array.from(NoiseSchedule.fromBetas(nums(betas)).posteriorVariance, Math.sqrt),
  },
};

// ------------------------------------------------------------------------------------------------ 02-x0-from-eps

function x0FromEpsRef(xt: Value, eps: Value, t: Value, abar: Value): Value {
  return x0FromEpsilon(asT(xt), asT(eps), t as number, scheduleFromAlphasCumprod(nums(abar)));
}

export const x0FromEpsSpec: ExerciseSpec = {
  id: '02-x0-from-eps',
  notebook: '02-reverse-process',
  functionName: 'x0FromEps',
  title: 'From a noise prediction back to a clean-image prediction',
  cases: (seed) => imageCases(seed, 3),
  reference: x0FromEpsRef,
  tolerance: { atol: 1e-4, rtol: 1e-4 },
  hint: 'Solve x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε for x0: x0 = (x_t − √(1−ᾱ_t)·ε) / √ᾱ_t.',
  wrong: {
    wrongSign: (xt, eps, t, a) => tf.tidy(() => x0FromEpsRef(xt, tf.neg(asT(eps)), t, a) as tf.Tensor),
    missingSqrt: (xt, eps, t, a) => tf.tidy(() => {
      const ab = nums(a)[t as number];
      return tf.div(tf.sub(asT(xt), tf.mul(asT(eps), 1 - ab)), ab);
    }),
    offByOne: (xt, eps, t, a) => x0FromEpsRef(xt, eps, Math.min((t as number) + 1, nums(a).length - 1), a),
  },
};
