/**
 * Exercises of notebook 07 · Sampling. References: lib/samplers/timesteps.ts (trailing spacing) and
 * lib/samplers/ddim.ts (DDIMScheduler.step with η = 0).
 */
import * as tf from '@tensorflow/tfjs';
import { DDIMScheduler } from '../samplers/ddim';
import { spacedTimesteps } from '../samplers/timesteps';
import { makeRng } from '../random';
import { caseImages, caseSchedules, scheduleFromAlphasCumprod } from './01-forward-process';
import type { CheckCase, ExerciseSpec, Value } from './types';

const asT = (v: Value) => v as tf.Tensor;
const nums = (v: Value) => v as number[];

// ------------------------------------------------------------------------------------------------ 07-trailing-timesteps

/** Whether some T − i·T/n (i = 0 … n−1) lies exactly halfway between integers (where rounding conventions differ). */
function hasTie(T: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (((2 * i * T) % (2 * n)) === n) return true;
  return false;
}

/** Two seeded (T, n) pairs without ties: T in 5 … 1500, n in 1 … min(T, 60). */
function randomSpacings(seed: number): [number, number][] {
  const rng = makeRng(seed * 104729 + 3);
  const out: [number, number][] = [];
  while (out.length < 2) {
    const T = 5 + Math.floor(rng() * 1496);
    const n = 1 + Math.floor(rng() * Math.min(T, 60));
    if (!hasTie(T, n)) out.push([T, n]);
  }
  return out;
}

export const trailingTimestepsSpec: ExerciseSpec = {
  id: '07-trailing-timesteps',
  notebook: '07-sampling',
  functionName: 'trailingTimesteps',
  title: 'Which n of the T steps a short sampler visits',
  // (T, n) chosen so that T − i·T/n never ends in exactly .5: rounding conventions then cannot matter
  cases(seed: number): CheckCase[] {
    return [
      { name: 'T = 1000, n = 10', args: [1000, 10] },
      { name: 'T = 1000, n = 3 (T/n not an integer)', args: [1000, 3] },
      { name: 'T = 1000, n = 1 (one step from pure noise)', args: [1000, 1] },
      { name: 'T = 20, n = 20 (every step)', args: [20, 20] },
      { name: 'T = 10, n = 3', args: [10, 3] },
      ...randomSpacings(seed).map(([T, n]) => ({ name: `T = ${T}, n = ${n}`, args: [T, n] as Value[] })),
    ];
  },
  reference: (T, n) => spacedTimesteps(T as number, n as number, 'trailing'),
  tolerance: { atol: 0, rtol: 0 },
  hint: 'Descending: t_i = round(T − i·T/n) − 1 for i = 0 … n−1. The first one is T − 1 (pure noise), and the list ends near T/n − 1, not at T.',
  wrong: {
    leading: (T, n) => spacedTimesteps(T as number, n as number, 'leading'),
    missingMinusOne: (T, n) => Array.from({ length: n as number }, (_, i) => Math.round((T as number) - (i * (T as number)) / (n as number))),
    ascending: (T, n) => spacedTimesteps(T as number, n as number, 'trailing').reverse(),
  },
};

// ------------------------------------------------------------------------------------------------ 07-ddim-step

/** lib's deterministic DDIM step from t to tPrev (−1: to the clean data, ᾱ = 1). */
function ddimStepRef(x: Value, eps: Value, t: Value, tPrev: Value, abar: Value): Value {
  const tt = t as number;
  const tp = tPrev as number;
  const scheduler = new DDIMScheduler(scheduleFromAlphasCumprod(nums(abar)), { eta: 0 }).setTimesteps(tp < 0 ? [tt] : [tt, tp]);
  const { prevSample, predX0 } = scheduler.step(asT(eps), tt, asT(x));
  predX0.dispose();
  return prevSample;
}

/** The DDIM update with caller-chosen ᾱ's and direction coefficient (the wrong answers). */
function ddimWith(x: Value, eps: Value, abT: number, abPrev: number, dir: number): Value {
  return tf.tidy(() => {
    const x0 = tf.div(tf.sub(asT(x), tf.mul(asT(eps), Math.sqrt(1 - abT))), Math.sqrt(abT));
    return tf.add(tf.mul(x0, Math.sqrt(abPrev)), tf.mul(asT(eps), dir));
  });
}

const abarAt = (a: number[], t: number) => (t < 0 ? 1 : a[t]);

export const ddimStepSpec: ExerciseSpec = {
  id: '07-ddim-step',
  notebook: '07-sampling',
  functionName: 'ddimStep',
  title: 'One deterministic DDIM step (η = 0)',
  cases(seed: number): CheckCase[] {
    const cases: CheckCase[] = [];
    caseSchedules().forEach(({ name, schedule }, k) => {
      const abar = Array.from(schedule.alphasCumprod);
      const T = schedule.T;
      const jumps: [number, number, string][] = [
        [T - 2, 10, 'a long jump'],
        [12, 11, 'one step'],
        [4, -1, 'the last step (to ᾱ = 1)'],
      ];
      jumps.forEach(([t, tPrev, what], j) => {
        const s = seed * 100 + 60 + k * 10 + j * 2;
        cases.push({ name: `${name}, t = ${t} → ${tPrev} (${what})`, args: [caseImages(3, s), caseImages(3, s + 1), t, tPrev, abar] });
      });
    });
    return cases;
  },
  reference: ddimStepRef,
  tolerance: { atol: 1e-4, rtol: 1e-4 },
  hint: 'x̂0 = (x − √(1 − ᾱ_t)·ε)/√ᾱ_t, then x_prev = √ᾱ_prev·x̂0 + √(1 − ᾱ_prev)·ε, with ᾱ_prev = alphasCumprod[tPrev], or 1 when tPrev = −1. Both coefficients are square roots.',
  wrong: {
    missingSqrt: (x, e, t, tp, a) => {
      const [abT, abP] = [abarAt(nums(a), t as number), abarAt(nums(a), tp as number)];
      return ddimWith(x, e, abT, abP, 1 - abP);
    },
    prevOffByOne: (x, e, t, tp, a) => {
      const [abT, abP] = [abarAt(nums(a), t as number), abarAt(nums(a), (tp as number) + 1)];
      return ddimWith(x, e, abT, abP, Math.sqrt(1 - abP));
    },
    noiseDirectionDropped: (x, e, t, tp, a) => ddimWith(x, e, abarAt(nums(a), t as number), abarAt(nums(a), tp as number), 0),
  },
};
