// Few-step solvers: DPM-Solver++(2M) (lib/samplers/dpm-solver.ts), Euler and Heun on Karras σ (lib/samplers/karras.ts).
// Independent numbers: test/math/golden/fewstep.py (pure-Python float64) and the exact model of a Gaussian data set.
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, NonFiniteError } from '../../lib/errors';
import type { PredictionType } from '../../lib/param';
import {
  DDIMScheduler,
  DPMSolverMultistepScheduler,
  EulerKarrasScheduler,
  HeunKarrasScheduler,
  ddimSample,
  disposeResult,
  dpmSolverSample,
  eulerKarrasSample,
  heunKarrasSample,
  karrasSigmas,
  sigmaToTimestep,
  spacedTimesteps,
  timestepToSigma,
  type Denoiser,
  type KarrasSampleOptions,
  type Progress,
  type SampleResult,
  type Scheduler,
} from '../../lib/samplers';
import { DEFAULT_SIGMA_MAX, scheduleSigmas } from '../../lib/samplers/karras';
import { runSampler } from '../../lib/samplers/loop';
import { NoiseSchedule } from '../../lib/schedule';
import { expectClose, expectNoLeak, meanStd, values } from './helpers';

type Sampler = 'ddim' | 'dpm++2m' | 'euler' | 'heun';
const SAMPLERS: Sampler[] = ['ddim', 'dpm++2m', 'euler', 'heun'];

/** Runs one of the four samplers (the options go through unchanged); bad options reject. */
/** The schedule's own largest level σ(T−1): the golden values and the flow tests below start there (not at the default). */
function top(s: NoiseSchedule): { sigmaMax: number } {
  return { sigmaMax: scheduleSigmas(s)[s.T - 1] };
}

async function sample(which: Sampler, model: Denoiser, shape: number[], s: NoiseSchedule, opts: KarrasSampleOptions): Promise<SampleResult> {
  if (which === 'euler' || which === 'heun') opts = { ...top(s), ...opts };
  switch (which) {
    case 'ddim':
      return ddimSample(model, shape, s, opts as never); // sync today, async after the merge
    case 'dpm++2m':
      return dpmSolverSample(model, shape, s, opts as never);
    case 'euler':
      return eulerKarrasSample(model, shape, s, opts);
    case 'heun':
      return heunKarrasSample(model, shape, s, opts);
  }
}

/** The sample's values; disposes the whole result. */
function take(r: SampleResult): number[] {
  const v = Array.from(r.sample.dataSync());
  disposeResult(r);
  return v;
}
const column = (v: number[], d: number, j: number) => v.filter((_, i) => i % d === j);

/** Expects the promise to reject with `cls` (and a message matching `re`). */
async function rejects(p: Promise<unknown>, cls: new (...a: never[]) => Error, re?: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(cls);
    if (re) expect((e as Error).message).to.match(re);
    return;
  }
  throw new Error(`expected a ${cls.name}`);
}

// Data ~ N(μ, diag(s²)) in 2-D. At a level ᾱ, with v = ᾱs² + 1 − ᾱ (Gaussian conditioning):
//   ε̂ = √(1−ᾱ)(x − √ᾱμ)/v,   x̂0 = μ + √ᾱ·s²(x − √ᾱμ)/v,   v̂ = √ᾱ·ε̂ − √(1−ᾱ)·x̂0.
// A fractional timestep t means σ(t) log-linear between σ(⌊t⌋) and σ(⌈t⌉), σ(k) = √((1−ᾱ_k)/ᾱ_k), ᾱ = 1/(1+σ²)
// (the convention of diffusers' Karras samplers), written out here independently of lib.
const mu = [0.5, -1];
const sd = [0.3, 0.6];
function alphaBarAt(s: NoiseSchedule, t: number): number {
  const k = Math.floor(t);
  if (k === t) return s.alphasCumprod[k];
  const lsig = (i: number) => 0.5 * Math.log((1 - s.alphasCumprod[i]) / s.alphasCumprod[i]);
  const l = lsig(k) + (t - k) * (lsig(k + 1) - lsig(k));
  return 1 / (1 + Math.exp(2 * l));
}
function gaussModel(s: NoiseSchedule, pred: PredictionType = 'epsilon', seen?: number[][]): Denoiser {
  return (x, t) =>
    tf.tidy(() => {
      const ts = Array.from(t.dataSync());
      seen?.push(ts);
      const a = tf.tensor2d(ts.map((q) => alphaBarAt(s, q)), [ts.length, 1]);
      const sa = tf.sqrt(a);
      const s1a = tf.sqrt(tf.sub(1, a));
      const dev = tf.sub(x, tf.mul(sa, tf.tensor2d([mu])));
      const v = tf.add(tf.mul(a, tf.tensor2d([sd.map((q) => q * q)])), tf.sub(1, a));
      const eps = tf.div(tf.mul(s1a, dev), v);
      const x0 = tf.add(tf.tensor2d([mu]), tf.div(tf.mul(tf.mul(sa, tf.tensor2d([sd.map((q) => q * q)])), dev), v));
      if (pred === 'epsilon') return eps;
      if (pred === 'x0') return x0;
      return tf.sub(tf.mul(sa, eps), tf.mul(s1a, x0));
    });
}

/** n×2 noise with each column's mean exactly 0 and std exactly 1 (float64 before the cast). */
function standardNoise(n: number, seed: number): tf.Tensor2D {
  const z = Array.from(tf.tidy(() => tf.randomNormal([n, 2], 0, 1, 'float32', seed)).dataSync());
  for (let j = 0; j < 2; j++) {
    const st = meanStd(column(z, 2, j));
    for (let i = j; i < z.length; i += 2) z[i] = (z[i] - st.mean) / st.std;
  }
  return tf.tensor2d(z, [n, 2]);
}

describe('math/samplers-fewstep', () => {
  const lin = NoiseSchedule.linear();
  const cos = NoiseSchedule.cosine();

  describe('Karras σ levels (eq. 5) and their model timesteps', () => {
    it('equals k-diffusion’s get_sigmas_karras(10, 0.002, 80, ρ = 7) (fewstep.py) and eq. 5 written out', () => {
      const golden = [
        80.0, 42.41518931851267, 21.10867673619376, 9.723201355260132, 4.066123602953759, 1.501741979068008, 0.46997905799774714,
        0.1166385635251784, 0.020435334553438746, 0.002000000000000003, 0,
      ];
      expectClose(karrasSigmas(10, 0.002, 80), golden, 0, 1e-13, 'sigmas');
      expect(karrasSigmas(1, 0.002, 80)).to.deep.equal([80, 0]); // ramp = linspace(0, 1, 1) = [0]
      for (const [n, lo, hi, rho] of [[7, 0.01, 157, 7], [25, 0.03, 14.6, 3], [2, 0.5, 2, 1]] as const) {
        const got = karrasSigmas(n, lo, hi, rho);
        expect(got.length).to.equal(n + 1);
        for (let i = 0; i < n; i++) {
          const want = (hi ** (1 / rho) + (i / (n - 1)) * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho;
          expect(got[i]).to.be.closeTo(want, 1e-12 * want);
          if (i > 0) expect(got[i]).to.be.lessThan(got[i - 1]);
        }
        expect([got[0], got[n - 1], got[n]]).to.deep.equal([hi, lo, 0]); // end points exact
      }
      expect(karrasSigmas(2, 1, 9, 1)).to.deep.equal([9, 1, 0]);
      expect(karrasSigmas(3, 1, 9, 1)).to.deep.equal([9, 5, 1, 0]); // ρ = 1: evenly spaced in σ
    });

    it('on the linear schedule: σ from σ(0) to σ(T−1), model timesteps by log-σ interpolation (diffusers’ _sigma_to_t, fewstep.py)', () => {
      const e = new EulerKarrasScheduler(lin, top(lin)).setTimesteps(10);
      const sig = [
        157.40728081040749, 85.71052238784978, 44.04740487579081, 21.105410301025287, 9.274611951115675, 3.6525679190903184,
        1.2463257094660058, 0.34969256737211796, 0.07392619255462649, 0.010000500037502566, 0,
      ];
      expectClose(e.sigmas, sig, 0, 1e-12, 'sigmas');
      // diffusers gives 998.9999999999999 for the first (its σ_0 misses σ(T−1) by an ulp); lib sets the end points exactly
      const ts = [
        998.9999999999999, 936.9218887360332, 863.8290442433714, 775.13315450661, 662.6368630544349, 510.70346211984446,
        300.98479150007955, 102.16137423640686, 18.308004650406552, 0.0,
      ];
      expectClose(e.timesteps, ts, 1e-9, 0, 'timesteps');
      expect([e.timesteps[0], e.timesteps[9]]).to.deep.equal([999, 0]);
      expect(e.sigmaMin).to.be.closeTo(0.010000500037502575, 1e-14); // √(1/ᾱ − 1) here, √((1−ᾱ)/ᾱ) there
      expect(e.sigmaMax).to.be.closeTo(157.40728081040757, 1e-11);
    });

    it('defaults σ_max to min(80, σ(T−1)) (EDM’s σ_max): 80 on the linear and cosine schedules, σ(T−1) where that is lower', () => {
      expect(DEFAULT_SIGMA_MAX).to.equal(80);
      expect(new EulerKarrasScheduler(lin).sigmaMax).to.equal(80);
      const cos = NoiseSchedule.cosine(1000);
      expect(scheduleSigmas(cos)[999]).to.be.greaterThan(1e4); // the clipped last β: why the schedule's own top is a poor start
      expect(new HeunKarrasScheduler(cos).sigmaMax).to.equal(80);
      const short = NoiseSchedule.linear(20);
      const shortTop = scheduleSigmas(short)[19];
      expect(shortTop).to.be.lessThan(80);
      expect(new EulerKarrasScheduler(short).sigmaMax).to.equal(shortTop);
    });

    it('sigmaToTimestep and timestepToSigma invert each other, are exact at integers and reject levels off the table', () => {
      for (const t of [0, 1, 17, 500, 998, 999]) {
        expect(sigmaToTimestep(lin, lin.sqrtRecipm1AlphasCumprod[t])).to.equal(t);
        expect(timestepToSigma(lin, t)).to.equal(lin.sqrtRecipm1AlphasCumprod[t]);
      }
      for (const t of [0.25, 17.5, 512.123, 998.9]) {
        expect(sigmaToTimestep(lin, timestepToSigma(lin, t))).to.be.closeTo(t, 1e-9);
        // against the test's own interpolation (ᾱ = 1/(1+σ²))
        expect(1 / (1 + timestepToSigma(lin, t) ** 2)).to.be.closeTo(alphaBarAt(lin, t), 1e-14);
      }
      expect(() => sigmaToTimestep(lin, 0.005)).to.throw(InvalidArgumentError, /\[σ\(0\), σ\(T−1\)\]/);
      expect(() => sigmaToTimestep(lin, 200)).to.throw(InvalidArgumentError);
      expect(() => timestepToSigma(lin, 999.5)).to.throw(InvalidArgumentError);
      expect(() => karrasSigmas(0, 0.1, 1)).to.throw(InvalidArgumentError, /positive integer/);
      expect(() => karrasSigmas(2.5, 0.1, 1)).to.throw(InvalidArgumentError);
      expect(() => karrasSigmas(5, 1, 0.1)).to.throw(InvalidArgumentError, /sigmaMin < sigmaMax/);
      expect(() => karrasSigmas(5, 0, 1)).to.throw(InvalidArgumentError);
      expect(() => karrasSigmas(5, 0.1, 1, 0)).to.throw(InvalidArgumentError, /rho/);
    });
  });

  describe('single steps against hand calculations (fewstep.py)', () => {
    const one = (v: number) => tf.tensor2d([[v]]);
    const run = (f: () => { prevSample: tf.Tensor; predX0: tf.Tensor }) =>
      values(() =>
        tf.tidy(() => {
          const r = f();
          return tf.concat([r.prevSample, r.predX0], 1);
        }),
      );

    it('Euler and Heun (Algorithm 1) on 5 Karras levels, step σ_1 → σ_2, x0-model: predictor, correction, no correction at the end', () => {
      const h = new HeunKarrasScheduler(lin, { predictionType: 'x0', ...top(lin) }).setTimesteps(5);
      const [t1, t2] = [h.timesteps[1], h.timesteps[2]];
      expect(t1).to.be.closeTo(843.355429825579, 1e-9);
      expect(t2).to.be.closeTo(592.9947056124696, 1e-9);
      expect(h.correctionTimestep(t1)).to.equal(t2);
      expect(h.correctionTimestep(h.timesteps[4])).to.equal(undefined); // the step to σ = 0 is Euler
      const [pred, x0] = run(() => h.step(one(0.2), t1, one(0.3)));
      expect(pred).to.be.closeTo(0.32392297361293554, 1e-6);
      expect(x0).to.be.closeTo(0.2, 1e-7);
      const [heun, x0h] = run(() => tf.tidy(() => h.correct(one(0.25), t1, one(0.3), h.step(one(0.2), t1, one(0.3)))));
      expect(heun).to.be.closeTo(0.34579002934002756, 1e-6);
      expect(x0h).to.be.closeTo(0.2, 1e-7);
      expect((new EulerKarrasScheduler(lin) as Scheduler).correctionTimestep).to.equal(undefined); // Euler: one call per step
      expectNoLeak(() => tf.tidy(() => void h.correct(one(0.25), t1, one(0.3), h.step(one(0.2), t1, one(0.3)))));
    });

    it('Euler with an ε-model is DDIM at the Karras levels; its last step (σ(0) → 0) returns x̂0 (= golden.py’s DDIM last step)', () => {
      const e = new EulerKarrasScheduler(lin, { predictionType: 'epsilon', ...top(lin) }).setTimesteps(5);
      const [prev, x0] = run(() => e.step(one(-0.7), e.timesteps[1], one(0.3)));
      expect(prev).to.be.closeTo(5.466904235394336, 5e-5); // x̂0 = 36.9: float32 keeps 7 digits
      expect(x0).to.be.closeTo(36.91301491483098, 5e-5);
      expect(run(() => e.step(one(-0.7), 0, one(0.3)))[0]).to.be.closeTo(0.30701535115134554, 1e-6);
    });

    it('DPM-Solver++(2M): first step first order (= DDIM), second step with r = h_{i−1}/h_i, last step x̂0', () => {
      const d = new DPMSolverMultistepScheduler(lin, { predictionType: 'epsilon' }).setTimesteps([700, 500, 300]);
      const [p1, m1] = run(() => d.step(one(-0.7), 700, one(0.3)));
      expect(m1).to.be.closeTo(12.03729709948193, 2e-5);
      expect(p1).to.be.closeTo(2.6852292748062707, 5e-6);
      const ddim = new DDIMScheduler(lin).setTimesteps([700, 500, 300]);
      expect(run(() => ddim.step(one(-0.7), 700, one(0.3)))[0]).to.be.closeTo(p1, 1e-5);
      expect(d.isSecondOrder(500)).to.equal(true);
      expect(d.isSecondOrder(300)).to.equal(false);
      const [p2, m0] = run(() => d.step(one(0.2), 500, one(0.45)));
      expect(m0).to.be.closeTo(0.9247693897387884, 1e-6);
      expect(p2).to.be.closeTo(-1.0856795485740671, 2e-5);
      const [p3] = run(() => d.step(one(0.5), 300, one(-0.1)));
      expect(p3).to.be.closeTo(-0.7793915211027276, 1e-6);
      // solverOrder 1 takes the first-order step instead
      const d1 = new DPMSolverMultistepScheduler(lin, { solverOrder: 1 }).setTimesteps([700, 500, 300]);
      run(() => d1.step(one(-0.7), 700, one(0.3)));
      expect(run(() => d1.step(one(0.2), 500, one(0.45)))[0]).to.be.closeTo(0.7361711439525849, 1e-5);
    });

    it('DPM-Solver++ keeps one x̂0 between steps, frees it after the last step and on setTimesteps/reset, and insists on order', () => {
      const start = tf.memory().numTensors;
      const d = new DPMSolverMultistepScheduler(lin).setTimesteps([700, 500, 300, 100]);
      const drop = (r: { prevSample: tf.Tensor; predX0: tf.Tensor }) => tf.dispose([r.prevSample, r.predX0]);
      const x = one(0.3);
      const e = one(-0.7);
      const base = tf.memory().numTensors;
      drop(d.step(e, 700, x));
      expect(tf.memory().numTensors).to.equal(base + 1); // the remembered x̂0
      drop(d.step(e, 500, x));
      expect(tf.memory().numTensors).to.equal(base + 1);
      drop(d.step(e, 300, x));
      expect(tf.memory().numTensors).to.equal(base + 1);
      drop(d.step(e, 100, x));
      expect(tf.memory().numTensors).to.equal(base); // the last step needs no history
      drop(d.step(e, 700, x));
      expect(() => d.step(e, 300, x)).to.throw(InvalidArgumentError, /must follow the step from t = 500, not from t = 700/);
      d.setTimesteps(10);
      expect(tf.memory().numTensors).to.equal(base);
      drop(d.step(e, 999, x));
      d.reset();
      expect(tf.memory().numTensors).to.equal(base);
      expect(() => d.step(e, 899, x)).to.throw(InvalidArgumentError, /must follow the step from t = 999/);
      expect(() => d.step(e, 7, x)).to.throw(InvalidArgumentError, /not among/);
      tf.dispose([x, e]);
      expect(tf.memory().numTensors).to.equal(start);
    });
  });

  describe('exact model of a Gaussian data set', () => {
    /**
     * The error of a sampler's sample mean/std (standardised noise: mean 0, std 1 exactly), as the largest of |Δmean|,
     * |Δstd| over both dimensions: `err` against the exact probability-flow map of that noise, `errVsData` against μ, s.
     * The flow keeps the z-score: x0 = μ + s·(x_T − √ᾱ_T·μ)/√(ᾱ_T·s² + 1 − ᾱ_T), ᾱ_T at the start level (t = T−1, or
     * 1/(1 + σ_max²) for a Karras sampler given sigmaMax). Every sampler is affine in x for this model, so the numbers
     * carry no sampling noise.
     */
    async function errors(s: NoiseSchedule, which: Sampler, steps: number, init: tf.Tensor2D, extra: Partial<KarrasSampleOptions> = {}) {
      const r = await sample(which, gaussModel(s), init.shape, s, { predictionType: 'epsilon', steps, initialNoise: init, ...extra });
      const v = take(r);
      const aT = extra.sigmaMax ? 1 / (1 + extra.sigmaMax ** 2) : s.alphasCumprod[s.T - 1];
      let err = 0;
      let errVsData = 0;
      for (let j = 0; j < 2; j++) {
        const st = meanStd(column(v, 2, j));
        const scale = Math.sqrt(aT * sd[j] ** 2 + 1 - aT);
        err = Math.max(err, Math.abs(st.mean - (mu[j] - (sd[j] * Math.sqrt(aT) * mu[j]) / scale)), Math.abs(st.std - sd[j] / scale));
        errVsData = Math.max(errVsData, Math.abs(st.mean - mu[j]), Math.abs(st.std - sd[j]));
      }
      return { err, errVsData };
    }
    /** max_j of |μ*_j − μ_j|, |s*_j − s_j|: how far the exact flow from N(0, I) at t = T−1 lands from the data (≈ s·√ᾱ_T·μ). */
    function flowFloor(s: NoiseSchedule): number {
      const aT = s.alphasCumprod[s.T - 1];
      return Math.max(...[0, 1].map((j) => {
        const scale = Math.sqrt(aT * sd[j] ** 2 + 1 - aT);
        return Math.max(Math.abs((sd[j] * Math.sqrt(aT) * mu[j]) / scale), Math.abs(sd[j] / scale - sd[j]));
      }));
    }
    const STEPS = [5, 10, 20, 40, 80];
    const table = new Map<string, number[]>();
    const errAt = (row: string, steps: number) => table.get(row)![STEPS.indexOf(steps)];

    before(async () => {
      const init = standardNoise(500, 11);
      for (const [name, s] of [['linear', lin], ['cosine', cos]] as const) {
        const rows: [string, Sampler, Partial<KarrasSampleOptions>][] = [
          ...SAMPLERS.map((w): [string, Sampler, Partial<KarrasSampleOptions>] => [w, w, {}]),
          ['euler σmax=80', 'euler', { sigmaMax: 80 }],
          ['heun σmax=80', 'heun', { sigmaMax: 80 }],
        ];
        for (const [label, which, extra] of rows) {
          const errs: number[] = [];
          for (const n of STEPS) errs.push((await errors(s, which, n, init, extra)).err);
          table.set(`${name} ${label}`, errs);
        }
      }
      init.dispose();
      if (process.env.FEWSTEP_TABLE) {
        console.log(`      max(|Δmean|, |Δstd|) against the exact flow, steps ${STEPS.join(' / ')}`);
        for (const [k, errs] of table) console.log(`      ${k.padEnd(22)} ${errs.map((e) => e.toExponential(2)).join('  ')}`);
      }
    });

    it('the error shrinks with the steps: DDIM and Euler as 1/N, DPM-Solver++(2M) and Heun as 1/N² (measured order)', () => {
      for (const [k, errs] of table) {
        for (let i = 1; i < errs.length; i++) expect(errs[i], `${k} at ${STEPS[i]} steps`).to.be.lessThan(errs[i - 1]);
        // observed order between 20 and 80 steps: log2(e(20)/e(80))/2
        const order = Math.log2(errAt(k, 20) / errAt(k, 80)) / 2;
        if (/dpm|heun/.test(k)) expect(order, k).to.be.greaterThan(1.8);
        else expect(order, k).to.be.within(0.85, 1.15);
      }
    });

    it('DPM-Solver++(2M) beats DDIM at 10 and 20 steps (same calls); Heun beats it at equal steps from 20, at equal calls from 20 (linear)', () => {
      for (const name of ['linear', 'cosine']) {
        expect(errAt(`${name} dpm++2m`, 10), name).to.be.lessThan(0.85 * errAt(`${name} ddim`, 10));
        expect(errAt(`${name} dpm++2m`, 20), name).to.be.lessThan(0.6 * errAt(`${name} ddim`, 20));
        expect(errAt(`${name} heun σmax=80`, 20), name).to.be.lessThan(0.6 * errAt(`${name} ddim`, 20)); // same steps
        expect(errAt(`${name} heun σmax=80`, 40), name).to.be.lessThan(0.5 * errAt(`${name} ddim`, 80)); // 79 vs 80 calls
      }
      expect(errAt('linear heun', 20)).to.be.lessThan(0.5 * errAt('linear ddim', 20));
      expect(errAt('linear heun', 20)).to.be.lessThan(errAt('linear ddim', 40)); // 39 vs 40 calls
      expect(errAt('linear heun σmax=80', 10)).to.be.lessThan(errAt('linear ddim', 10));
      // ρ = 7 over σ(0) … σ(T−1) = 0.0064 … 20291 (cosine: the clipped last β) spends most levels far above the data:
      // Heun then needs ~80 steps to catch DDIM; σ_max = 80 (EDM's) fixes it
      expect(errAt('cosine heun', 10)).to.be.greaterThan(5 * errAt('cosine heun σmax=80', 10));
    });

    it('samples match μ and s within a tolerance that shrinks with the steps (c·(10/N)^p above the flow’s own offset)', async () => {
      const init = standardNoise(500, 12);
      const floor = flowFloor(lin); // 3.8e-3: s·√ᾱ_T·μ for s = 0.6, μ = −1
      expect(floor).to.be.within(3e-3, 4e-3);
      for (const which of SAMPLERS) {
        const p = which === 'dpm++2m' || which === 'heun' ? 2 : 1;
        const c = 1.5 * errAt(`linear ${which}`, 10); // the 10-step error, with room
        for (const n of [10, 40, 160]) {
          const { err, errVsData } = await errors(lin, which, n, init);
          const tol = c * (10 / n) ** p;
          expect(err, `${which} ${n} steps vs the flow`).to.be.at.most(tol);
          expect(errVsData, `${which} ${n} steps vs μ, s`).to.be.at.most(floor + tol);
        }
      }
      init.dispose();
    });

    it('x0- and v-models give the ε-model’s samples', async () => {
      const init = standardNoise(64, 13);
      for (const which of ['dpm++2m', 'euler', 'heun'] as Sampler[]) {
        const ref = take(await sample(which, gaussModel(lin, 'epsilon'), [64, 2], lin, { predictionType: 'epsilon', steps: 10, initialNoise: init }));
        for (const p of ['x0', 'v'] as PredictionType[]) {
          const got = take(await sample(which, gaussModel(lin, p), [64, 2], lin, { predictionType: p, steps: 10, initialNoise: init }));
          got.forEach((g, i) => expect(g, `${which} ${p}[${i}]`).to.be.closeTo(ref[i], 2e-3));
        }
      }
      init.dispose();
    });

    it('step counts 1, 2, 7 (does not divide T) and T', async () => {
      const m = gaussModel(lin);
      const init = standardNoise(32, 14);
      const base = { predictionType: 'epsilon' as const, initialNoise: init };
      // 1 step: every sampler returns x̂0 at x_T (DPM++ and DDIM at t = 999, Euler/Heun at σ_max, the same level)
      const ddim1 = take(await ddimSample(m, [32, 2], lin, { ...base, steps: 1 }));
      for (const which of ['dpm++2m', 'euler', 'heun'] as Sampler[]) {
        const r = await sample(which, m, [32, 2], lin, { ...base, steps: 1 });
        expect(r.modelCalls, which).to.equal(1);
        expectClose(take(r), ddim1, 1e-4, 1e-4, `${which} 1 step`);
      }
      // 2 steps of DPM-Solver++: first order, then the last step to x̂0: DDIM's 2 steps
      expectClose(take(await dpmSolverSample(m, [32, 2], lin, { ...base, steps: 2 })), take(await ddimSample(m, [32, 2], lin, { ...base, steps: 2 })), 1e-4, 1e-4, '2 steps');
      const seven = await dpmSolverSample(m, [32, 2], lin, { ...base, steps: 7 });
      expect(seven.timesteps).to.deep.equal(spacedTimesteps(1000, 7));
      disposeResult(seven);
      const h7 = await heunKarrasSample(m, [32, 2], lin, { ...base, steps: 7 , ...top(lin) });
      expect([h7.timesteps.length, h7.modelCalls]).to.deep.equal([7, 13]);
      disposeResult(h7);
      // all T steps: on the exact flow
      for (const which of SAMPLERS) {
        const r = await sample(which, m, [32, 2], lin, { ...base, steps: 1000 });
        expect(r.timesteps.length).to.equal(1000);
        for (let i = 1; i < 1000; i++) if (!(r.timesteps[i] < r.timesteps[i - 1])) throw new Error(`${which}: timesteps not descending at ${i}`);
        disposeResult(r);
        const { err } = await errors(lin, which, 1000, init);
        if (process.env.FEWSTEP_TABLE) console.log(`      ${which} 1000 steps: ${err.toExponential(2)}`);
        expect(err, which).to.be.at.most(which === 'dpm++2m' || which === 'heun' ? 3e-4 : 3e-3); // float32 rounding over 1000 steps ≈ 1e-4
      }
      init.dispose();
    });
  });

  describe('through the sampling loop', () => {
    const smooth: Denoiser = (x) => tf.mul(x, 0.1);

    it('counts model calls: N for DPM-Solver++ and Euler, 2N − 1 for Heun; progress reports calls; fractional t as float32', async () => {
      for (const which of ['dpm++2m', 'euler', 'heun'] as Sampler[]) {
        const seen: { t: number[]; dtype: string }[] = [];
        const model: Denoiser = (x, t) => {
          seen.push({ t: Array.from(t.dataSync()), dtype: t.dtype });
          return tf.mul(x, 0.1);
        };
        const prog: Progress[] = [];
        const r = await sample(which, model, [3, 2], lin, { predictionType: 'epsilon', seed: 1, steps: 10, onStep: (p) => prog.push(p) });
        const calls = which === 'heun' ? 19 : 10;
        expect(r.modelCalls, which).to.equal(calls);
        expect(seen.length, which).to.equal(calls);
        expect(prog.map((p) => p.step)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        expect(prog.every((p) => p.total === 10 && p.totalCalls === calls)).to.equal(true);
        expect(prog.map((p) => p.calls)).to.deep.equal(which === 'heun' ? [2, 4, 6, 8, 10, 12, 14, 16, 18, 19] : [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        if (which !== 'dpm++2m') {
          // Karras levels: integer timesteps at the ends (int32), fractional in between (float32)
          expect(seen[0]).to.deep.equal({ t: [999, 999, 999], dtype: 'int32' });
          expect(seen[1].dtype).to.equal('float32');
          expect(seen[seen.length - 1]).to.deep.equal({ t: [0, 0, 0], dtype: 'int32' });
          if (which === 'heun') {
            // each second call is at the next level's timestep
            expect(seen[1].t[0]).to.be.closeTo(r.timesteps[1], 1e-4);
            expect(seen[2].t[0]).to.be.closeTo(r.timesteps[1], 1e-4);
          }
        } else {
          expect(seen.every((c) => c.dtype === 'int32')).to.equal(true);
        }
        disposeResult(r);
      }
    });

    it('classifier-free guidance: w = 1 is plain conditional, w = 0 the null class (each Heun call on the doubled batch)', async () => {
      const batches: number[] = [];
      const model: Denoiser = (x, t, c) => {
        batches.push(x.shape[0]);
        return tf.tidy(() => tf.mul(tf.tanh(x), tf.reshape(tf.div(tf.add(tf.cast(c!, 'float32'), 1), 11), [-1, 1])));
      };
      for (const which of ['dpm++2m', 'euler', 'heun'] as Sampler[]) {
        const opts = { seed: 5, steps: 6, predictionType: 'epsilon' as const };
        const plain = take(await sample(which, model, [2, 2], lin, { ...opts, classes: [3, 4] }));
        batches.length = 0;
        const w1 = take(await sample(which, model, [2, 2], lin, { ...opts, guidance: { weight: 1, classes: [3, 4] } }));
        expect(batches, which).to.deep.equal(new Array(which === 'heun' ? 11 : 6).fill(4));
        w1.forEach((v, i) => expect(v, `${which} w=1`).to.be.closeTo(plain[i], 1e-5 * (1 + Math.abs(v))));
        const nul = take(await sample(which, model, [2, 2], lin, { ...opts, classes: [10, 10] }));
        const w0 = take(await sample(which, model, [2, 2], lin, { ...opts, guidance: { weight: 0, classes: [3, 4] } }));
        w0.forEach((v, i) => expect(v, `${which} w=0`).to.be.closeTo(nul[i], 1e-5 * (1 + Math.abs(v))));
        const w3 = take(await sample(which, model, [2, 2], lin, { ...opts, guidance: { weight: 3, classes: [3, 4] } }));
        expect(Math.max(...w3.map((v, i) => Math.abs(v - plain[i])))).to.be.greaterThan(1e-3); // guidance acts
      }
    });

    it('is reproducible from a seed and reports it; trajectories (Heun) share the final sample', async () => {
      for (const which of ['dpm++2m', 'euler', 'heun'] as Sampler[]) {
        const a = take(await sample(which, smooth, [2, 3], lin, { predictionType: 'epsilon', seed: 42, steps: 5 }));
        expect(take(await sample(which, smooth, [2, 3], lin, { predictionType: 'epsilon', seed: 42, steps: 5 }))).to.deep.equal(a);
        expect(take(await sample(which, smooth, [2, 3], lin, { predictionType: 'epsilon', seed: 43, steps: 5 }))).to.not.deep.equal(a);
        const r = await sample(which, smooth, [2, 3], lin, { predictionType: 'epsilon', steps: 5 });
        expect(take(await sample(which, smooth, [2, 3], lin, { predictionType: 'epsilon', steps: 5, seed: r.seed }))).to.deep.equal(take(r));
      }
      const start = tf.memory().numTensors;
      const r = await heunKarrasSample(smooth, [2, 2], lin, { predictionType: 'epsilon', seed: 1, steps: 20, returnTrajectory: true , ...top(lin) });
      expect(r.trajectory.map((p) => p.step)).to.deep.equal([0, 2, 4, 7, 9, 11, 13, 16, 18, 20]);
      expect(r.trajectory[0].t).to.equal(999);
      expect(r.trajectory[9]).to.include({ t: -1, x: r.sample });
      expect(r.trajectory[1].t).to.equal(r.timesteps[2]);
      disposeResult(r);
      expect(tf.memory().numTensors).to.equal(start);
    });

    it('keeps the tensor count flat over long runs (DPM-Solver++ 1000 steps, Heun 300 steps = 599 calls) and leaks nothing', async () => {
      const start = tf.memory().numTensors;
      const counts: number[] = [];
      const r = await dpmSolverSample(smooth, [2, 4, 4, 1], lin, { predictionType: 'epsilon', seed: 1, steps: 1000, onStep: () => counts.push(tf.memory().numTensors) });
      expect(counts.length).to.equal(1000);
      // x and the remembered x̂0; the last step drops the x̂0
      expect(new Set(counts.slice(0, 999)).size, 'tensor count changed during sampling').to.equal(1);
      expect(counts[999]).to.equal(counts[0] - 1);
      disposeResult(r);
      expect(tf.memory().numTensors).to.equal(start);
      const hc: number[] = [];
      const h = await heunKarrasSample(smooth, [2, 4, 4, 1], lin, { predictionType: 'epsilon', seed: 1, steps: 300, onStep: () => hc.push(tf.memory().numTensors) , ...top(lin) });
      expect(h.modelCalls).to.equal(599);
      expect(new Set(hc).size, 'tensor count changed during sampling').to.equal(1);
      disposeResult(h);
      expect(tf.memory().numTensors).to.equal(start);
    });

    it('stops on NaN in either Heun evaluation or mid-run in DPM-Solver++ with NonFiniteError, leaking nothing (history freed)', async () => {
      const start = tf.memory().numTensors;
      const bad: Denoiser = (x, t) => (t.dataSync()[0] < 600 ? tf.fill(x.shape, NaN) : tf.mul(x, 0.1));
      await rejects(dpmSolverSample(bad, [2, 2], lin, { predictionType: 'epsilon', seed: 1, steps: 10, returnTrajectory: 1 }), NonFiniteError, /model output at step 5 of 10 \(t = 599\)/);
      // Heun, 5 steps: levels 999, 843.4, 593.0 …: the step from 843.4 evaluates at 593.0 second → NaN in the correction
      await rejects(heunKarrasSample(bad, [2, 2], lin, { predictionType: 'epsilon', seed: 1, steps: 5 , ...top(lin) }), NonFiniteError, /model output at step 2 of 5 \(t = 843\.3/);
      expect(tf.memory().numTensors).to.equal(start);
    });

    it('clips x̂0 when asked', async () => {
      const wild: Denoiser = (x) => tf.mul(tf.onesLike(x), 5); // predicts x0 = 5 everywhere
      for (const which of ['dpm++2m', 'euler', 'heun'] as Sampler[]) {
        const v = take(await sample(which, wild, [3, 2], lin, { seed: 1, steps: 10, predictionType: 'x0', clipX0: true }));
        v.forEach((q) => expect(Math.abs(q), which).to.be.at.most(1 + 1e-5));
        const free = take(await sample(which, wild, [3, 2], lin, { seed: 1, steps: 10, predictionType: 'x0' }));
        free.forEach((q) => expect(q, which).to.be.closeTo(5, 1e-3));
      }
    });

    it('a scheduler reused for a second run (history reset) gives the same samples', async () => {
      const scheduler = new DPMSolverMultistepScheduler(lin).setTimesteps(8);
      const opts = { predictionType: 'epsilon' as const, seed: 3 };
      const a = take(await runSampler({ model: gaussModel(lin), scheduler, shape: [4, 2], opts }));
      const b = take(await runSampler({ model: gaussModel(lin), scheduler, shape: [4, 2], opts }));
      expect(b).to.deep.equal(a);
    });
  });

  describe('named errors for bad options', () => {
    const smooth: Denoiser = (x) => tf.mul(x, 0.1);
    it('step counts 0, > T, non-integer; unknown or foreign options; missing predictionType; bad σ range, ρ, order', async () => {
      const start = tf.memory().numTensors;
      for (const which of ['dpm++2m', 'euler', 'heun'] as Sampler[]) {
        for (const steps of [0, 1001, 2.5, NaN]) {
          await rejects(sample(which, smooth, [1, 2], lin, { predictionType: 'epsilon', steps }), InvalidArgumentError, /integer in \[1, T = 1000\]/);
        }
        await rejects(sample(which, smooth, [1, 2], lin, { steps: 3 } as KarrasSampleOptions), InvalidArgumentError, /predictionType/);
        await rejects(sample(which, smooth, [1, 2], lin, { predictionType: 'epsilon', eta: 0.5 } as KarrasSampleOptions), InvalidArgumentError, /unknown option 'eta'/);
        await rejects(sample(which, smooth, [1, 2], lin, { predictionType: 'epsilon', clipX0: -1 }), InvalidArgumentError, /clipX0/);
      }
      await rejects(eulerKarrasSample(smooth, [1, 2], lin, { predictionType: 'epsilon', spacing: 'leading' } as KarrasSampleOptions), InvalidArgumentError, /eulerKarrasSample: unknown option 'spacing'/);
      await rejects(dpmSolverSample(smooth, [1, 2], lin, { predictionType: 'epsilon', sigmaMax: 80 } as never), InvalidArgumentError, /dpmSolverSample: unknown option 'sigmaMax'/);
      await rejects(dpmSolverSample(smooth, [1, 2], lin, { predictionType: 'epsilon', solverOrder: 3 as 2 }), InvalidArgumentError, /solverOrder must be 1 or 2/);
      await rejects(dpmSolverSample(smooth, [1, 2], lin, { predictionType: 'epsilon', timesteps: [5, 10] }), InvalidArgumentError, /descending/);
      await rejects(heunKarrasSample(smooth, [1, 2], lin, { predictionType: 'epsilon', sigmaMax: 200 }), InvalidArgumentError, /sigmaMax must lie in \[σ\(0\), σ\(T−1\)\]/);
      await rejects(heunKarrasSample(smooth, [1, 2], lin, { predictionType: 'epsilon', sigmaMin: 0.001 }), InvalidArgumentError, /sigmaMin/);
      await rejects(heunKarrasSample(smooth, [1, 2], lin, { predictionType: 'epsilon', sigmaMin: 10, sigmaMax: 5 }), InvalidArgumentError, /sigmaMin < sigmaMax/);
      await rejects(heunKarrasSample(smooth, [1, 2], lin, { predictionType: 'epsilon', rho: -1 }), InvalidArgumentError, /rho/);
      await rejects(heunKarrasSample(smooth, [1, 2], lin, { predictionType: 'sample' as PredictionType }), InvalidArgumentError, /predictionType/);
      expect(() => new HeunKarrasScheduler(lin, { eta: 1 } as never)).to.throw(InvalidArgumentError, /HeunKarrasScheduler: unknown option 'eta'/);
      expect(() => new DPMSolverMultistepScheduler(lin, { rho: 7 } as never)).to.throw(InvalidArgumentError, /unknown option 'rho'/);
      expect(() => new HeunKarrasScheduler(lin).setTimesteps(0)).to.throw(InvalidArgumentError);
      const h = new HeunKarrasScheduler(lin).setTimesteps(3);
      const z = tf.zeros([1, 1]);
      expect(() => h.step(z, 500, z)).to.throw(InvalidArgumentError, /not among/);
      z.dispose();
      expect(tf.memory().numTensors).to.equal(start);
    });
  });
});
