/**
 * Exercises of notebook 07 · Sampling. References: lib/samplers/timesteps.ts (trailing spacing),
 * lib/samplers/ddim.ts (DDIMScheduler.step with η = 0) and lib/samplers/dpm-solver.ts (DPMSolverMultistepScheduler's
 * second-order step).
 */
import * as tf from '@tensorflow/tfjs';
import { DDIMScheduler } from '../samplers/ddim';
import { DPMSolverMultistepScheduler } from '../samplers/dpm-solver';
import { spacedTimesteps } from '../samplers/timesteps';
import { makeRng } from '../random';
import { NoiseSchedule } from '../schedule';
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

// ------------------------------------------------------------------------------------------------ 07-dpm-solver-step

/**
 * lib's DPM-Solver++(2M) step from s to t, with x̂0 at u (the step before) and at s given: DPMSolverMultistepScheduler
 * on the 3-step schedule (ᾱ_t, ᾱ_s, ᾱ_u) with x0-prediction, visiting u → s → t. The step from u only records x̂0_u;
 * the step from s is second order (it does not end at ᾱ = 1).
 */
function dpmSolverStepRef(x: Value, x0: Value, x0Before: Value, abarBefore: Value, abarNow: Value, abarNext: Value): Value {
  const schedule = scheduleFromAlphasCumprod([abarNext as number, abarNow as number, abarBefore as number]);
  const scheduler = new DPMSolverMultistepScheduler(schedule, { predictionType: 'x0', solverOrder: 2 }).setTimesteps([2, 1, 0]);
  try {
    const first = scheduler.step(asT(x0Before), 2, asT(x));
    tf.dispose([first.prevSample, first.predX0]);
    const { prevSample, predX0 } = scheduler.step(asT(x0), 1, asT(x));
    predX0.dispose();
    return prevSample;
  } finally {
    scheduler.reset();
  }
}

/** The same update with every ingredient exposed, for the known-wrong answers (float64 coefficients). */
function dpmWith(
  x: Value,
  x0: Value,
  x0Before: Value,
  abar: [number, number, number],
  mistake: { lambdaSign?: number; rInverted?: boolean; alphaFrom?: 'now' | 'next'; correction?: 'none' | 'half' | 'full' } = {},
): Value {
  const [abU, abS, abT] = abar;
  const sign = mistake.lambdaSign ?? 1;
  const lambda = (a: number) => sign * 0.5 * Math.log(a / (1 - a));
  const h = lambda(abT) - lambda(abS);
  const hBefore = lambda(abS) - lambda(abU);
  const r = mistake.rInverted ? h / hBefore : hBefore / h;
  const k = mistake.correction === 'none' ? 0 : mistake.correction === 'full' ? 1 / r : 1 / (2 * r);
  const cx = Math.sqrt(1 - abT) / Math.sqrt(1 - abS);
  const cd = -Math.sqrt(mistake.alphaFrom === 'now' ? abS : abT) * Math.expm1(-h);
  return tf.tidy(() => {
    const d = tf.sub(tf.mul(asT(x0), 1 + k), tf.mul(asT(x0Before), k));
    return tf.add(tf.mul(asT(x), cx), tf.mul(d, cd));
  });
}

/** ᾱ from a log-SNR λ: ᾱ = sigmoid(2λ) (λ = log(α/σ) = ½·log(ᾱ/(1 − ᾱ))). */
const abarFromLambda = (l: number) => 1 / (1 + Math.exp(-2 * l));

/**
 * Two seeded (ᾱ_u, ᾱ_s, ᾱ_t): λ_u < λ_s < λ_t in [−5, 3], each step at least 0.05 in λ (r anywhere in ≈ [0.006, 160]).
 * λ ≤ 3 keeps 1 − ᾱ ≥ 2.5e-3: closer to ᾱ = 1, ᾱ rounded to float32 alone moves σ by more than the tolerance allows.
 */
function randomAbarTriples(seed: number): [number, number, number][] {
  const rng = makeRng(seed * 7907 + 11);
  const out: [number, number, number][] = [];
  while (out.length < 2) {
    const l = [0, 1, 2].map(() => -5 + 8 * rng()).sort((a, b) => a - b);
    if (l[1] - l[0] >= 0.05 && l[2] - l[1] >= 0.05) out.push([abarFromLambda(l[0]), abarFromLambda(l[1]), abarFromLambda(l[2])]);
  }
  return out;
}

export const dpmSolverStepSpec: ExerciseSpec = {
  id: '07-dpm-solver-step',
  notebook: '07-sampling',
  functionName: 'dpmSolverStep',
  title: 'One second-order DPM-Solver++(2M) step',
  cases(seed: number): CheckCase[] {
    const cos = NoiseSchedule.cosine(1000).alphasCumprod;
    const lin = NoiseSchedule.linear(1000, 1e-4, 0.02).alphasCumprod;
    const triples: [string, [number, number, number]][] = [
      ['cosine T = 1000, 10 trailing steps: 999 → 899 → 799 (the second step of a run)', [cos[999], cos[899], cos[799]]],
      ['cosine T = 1000, 10 trailing steps: 299 → 199 → 99', [cos[299], cos[199], cos[99]]],
      ['linear T = 1000, consecutive steps 13 → 12 → 11', [lin[13], lin[12], lin[11]]],
      ['linear T = 1000, uneven steps 600 → 500 → 100 (r far from 1)', [lin[600], lin[500], lin[100]]],
      ...randomAbarTriples(seed).map((a, i): [string, [number, number, number]] => [`random ᾱ ${i + 1}: ${a.map((v) => v.toPrecision(4)).join(' → ')}`, a]),
    ];
    return triples.map(([name, abar], k) => {
      const s = seed * 100 + 80 + k * 3;
      return { name, args: [caseImages(3, s), tf.tidy(() => tf.tanh(caseImages(3, s + 1))), tf.tidy(() => tf.tanh(caseImages(3, s + 2))), ...abar] };
    });
  },
  reference: dpmSolverStepRef,
  tolerance: { atol: 1e-4, rtol: 1e-4 },
  hint:
    'α = √ᾱ, σ = √(1 − ᾱ), λ = log(α/σ) at u, s and t; h = λ_t − λ_s (> 0: λ grows as the noise shrinks) and ' +
    'r = (λ_s − λ_u)/h. D = (1 + 1/(2r))·x0 − 1/(2r)·x0Before, and x_t = (σ_t/σ_s)·x − α_t·(e^{−h} − 1)·D — α of the ' +
    'step\'s target t, not of s.',
  wrong: {
    firstOrder: (x, x0, x0b, u, s, t) => dpmWith(x, x0, x0b, [u, s, t] as [number, number, number], { correction: 'none' }),
    rInverted: (x, x0, x0b, u, s, t) => dpmWith(x, x0, x0b, [u, s, t] as [number, number, number], { rInverted: true }),
    alphaOfNow: (x, x0, x0b, u, s, t) => dpmWith(x, x0, x0b, [u, s, t] as [number, number, number], { alphaFrom: 'now' }),
    lambdaSign: (x, x0, x0b, u, s, t) => dpmWith(x, x0, x0b, [u, s, t] as [number, number, number], { lambdaSign: -1 }),
    correctionWithoutHalf: (x, x0, x0b, u, s, t) => dpmWith(x, x0, x0b, [u, s, t] as [number, number, number], { correction: 'full' }),
  },
};
