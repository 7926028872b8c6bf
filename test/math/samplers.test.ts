import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, NonFiniteError, ShapeMismatchError } from '../../lib/errors';
import { convertPrediction, type PredictionType } from '../../lib/param';
import {
  DDIMScheduler,
  DDPMScheduler,
  annealedLangevin,
  applyGuidance,
  ddimSample,
  ddpmSample,
  disposeResult,
  geometricSigmas,
  guidedDenoiser,
  spacedTimesteps,
  type DDIMSampleOptions,
  type DDPMSampleOptions,
  type Denoiser,
  type SampleResult,
  type ScoreModel,
} from '../../lib/samplers';
import { NoiseSchedule } from '../../lib/schedule';
import { expectNoLeak, expectRejects, meanStd, values } from './helpers';

/** Values of the sample (column-major per feature helpers below), then disposes the whole result. */
async function take(p: Promise<SampleResult> | SampleResult): Promise<number[]> {
  const r = await p;
  const v = Array.from(await r.sample.data());
  disposeResult(r);
  return v;
}
function column(v: number[], d: number, j: number): number[] {
  return v.filter((_, i) => i % d === j);
}

describe('math/samplers', () => {
  const lin = NoiseSchedule.linear();

  describe('timestep spacing (pitfall 5)', () => {
    it('matches diffusers’ lists (golden.py, numpy rounding) for step counts that do not divide T', () => {
      expect(spacedTimesteps(1000, 10, 'leading')).to.deep.equal([900, 800, 700, 600, 500, 400, 300, 200, 100, 0]);
      expect(spacedTimesteps(1000, 10, 'trailing')).to.deep.equal([999, 899, 799, 699, 599, 499, 399, 299, 199, 99]);
      expect(spacedTimesteps(1000, 10, 'linspace')).to.deep.equal([999, 888, 777, 666, 555, 444, 333, 222, 111, 0]);
      expect(spacedTimesteps(1000, 3, 'leading')).to.deep.equal([666, 333, 0]);
      expect(spacedTimesteps(1000, 3, 'trailing')).to.deep.equal([999, 666, 332]);
      expect(spacedTimesteps(1000, 3, 'linspace')).to.deep.equal([999, 500, 0]);
      expect(spacedTimesteps(1000, 7, 'leading')).to.deep.equal([852, 710, 568, 426, 284, 142, 0]);
      expect(spacedTimesteps(1000, 7, 'trailing')).to.deep.equal([999, 856, 713, 570, 428, 285, 142]);
      expect(spacedTimesteps(1000, 7, 'linspace')).to.deep.equal([999, 832, 666, 500, 333, 166, 0]);
      expect(spacedTimesteps(10, 4, 'trailing')).to.deep.equal([9, 7, 4, 1]); // 7.5 → 8 and 2.5 → 2: half to even
      expect(spacedTimesteps(10, 4, 'linspace')).to.deep.equal([9, 6, 3, 0]);
      expect(spacedTimesteps(10, 10, 'trailing')).to.deep.equal([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    });

    it('for every n ≤ T: n distinct descending steps in [0, T), from T−1 (all but leading), to 0 (linspace, quadratic)', () => {
      for (const T of [1000, 37]) {
        for (let n = 1; n <= T; n++) {
          for (const sp of ['leading', 'trailing', 'linspace', 'quadratic'] as const) {
            const ts = spacedTimesteps(T, n, sp);
            expect(ts.length).to.equal(n);
            for (let i = 1; i < n; i++) if (!(ts[i] < ts[i - 1])) throw new Error(`${sp} T=${T} n=${n} not strictly descending: ${ts}`);
            if (ts[n - 1] < 0 || ts[0] > T - 1) throw new Error(`${sp} T=${T} n=${n} out of range`);
            if (sp !== 'leading' && ts[0] !== T - 1) throw new Error(`${sp} T=${T} n=${n} starts at ${ts[0]}`);
            if ((sp === 'linspace' || sp === 'quadratic') && n > 1 && ts[n - 1] !== 0) throw new Error(`${sp} T=${T} n=${n} ends at ${ts[n - 1]}`);
          }
        }
      }
    });

    it('quadratic: ⌊(T−1)(k/(n−1))²⌋ (DDIM paper’s τ_i = ⌊c·i²⌋ with c = (T−1)/(n−1)²), dense near t = 0', () => {
      // Hand-computed: 999·k²/81 for k = 9 … 0 → 999, 789.3, 604.3, 444, 308.3, 197.3, 111, 49.3, 12.3, 0.
      expect(spacedTimesteps(1000, 10, 'quadratic')).to.deep.equal([999, 789, 604, 444, 308, 197, 111, 49, 12, 0]);
      // 999·k²/9 for k = 3 … 0: exact integers, where float rounding could land a hair below (111 → 110.999…).
      expect(spacedTimesteps(1000, 4, 'quadratic')).to.deep.equal([999, 444, 111, 0]);
      expect(spacedTimesteps(1000, 1, 'quadratic')).to.deep.equal([999]);
      expect(spacedTimesteps(1000, 2, 'quadratic')).to.deep.equal([999, 0]);
      // T = 10, n = 6: 9·k²/25 = 9, 5.76, 3.24, 1.44, 0.36, 0 → ⌊·⌋ 9, 5, 3, 1, 0, 0; the collision at the bottom is lifted.
      expect(spacedTimesteps(10, 6, 'quadratic')).to.deep.equal([9, 5, 3, 2, 1, 0]);
      expect(spacedTimesteps(10, 10, 'quadratic')).to.deep.equal([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
      // gaps grow with t: each gap at least the one below it, for a list with no collisions
      const ts = spacedTimesteps(1000, 25, 'quadratic');
      const gaps = ts.slice(1).map((t, i) => ts[i] - t);
      for (let i = 1; i < gaps.length; i++) expect(gaps[i - 1]).to.be.at.least(gaps[i] - 1);
      expect(gaps[0]).to.be.greaterThan(10 * gaps[gaps.length - 1]);
    });

    it('rejects an unknown spacing by name', () => {
      expect(() => spacedTimesteps(1000, 10, 'cubic' as never)).to.throw(InvalidArgumentError, /quadratic.*got 'cubic'/);
      expect(() => spacedTimesteps(2 ** 30, 2 ** 20, 'quadratic')).to.throw(InvalidArgumentError, /2\^53/);
    });

    it('rejects step counts outside [1, T] and custom timesteps that are not strictly descending', () => {
      expect(() => spacedTimesteps(1000, 1001)).to.throw(InvalidArgumentError, /\[1, T = 1000\]/);
      expect(() => spacedTimesteps(1000, 0)).to.throw(InvalidArgumentError);
      expect(() => spacedTimesteps(1000, 2.5)).to.throw(InvalidArgumentError);
      const d = new DDIMScheduler(lin);
      expect(() => d.setTimesteps([10, 500])).to.throw(InvalidArgumentError, /descending/);
      expect(() => d.setTimesteps([500, 500])).to.throw(InvalidArgumentError, /descending/);
      expect(() => d.setTimesteps([1000, 3])).to.throw(InvalidArgumentError);
      expect(() => d.setTimesteps([])).to.throw(InvalidArgumentError);
      expect(d.setTimesteps([999, 500, 3]).timesteps).to.deep.equal([999, 500, 3]);
      expect(d.prevTimestep(500)).to.equal(3);
      expect(d.prevTimestep(3)).to.equal(-1);
      expect(d.alphaBar(-1)).to.equal(1);
      expect(new DDPMScheduler(lin).setTimesteps(10, 'leading').timesteps[0]).to.equal(900); // leading never visits T−1
      expect(() => d.step(tf.zeros([1, 1]), 7, tf.zeros([1, 1]))).to.throw(InvalidArgumentError, /not among/);
    });
  });

  describe('single steps against hand-computed values (golden.py)', () => {
    const x = () => tf.tensor2d([[0.3]]);
    const e = () => tf.tensor2d([[-0.7]]);
    const z = () => tf.tensor2d([[0.25]]);
    const step = (sch: DDIMScheduler | DDPMScheduler, t: number) =>
      tf.tidy(() => {
        const r = sch.step(e(), t, x(), z());
        return tf.concat([r.prevSample, r.predX0], 1);
      });

    it('DDIM eq. 12 with η = 0.5 from t = 500 to 400, and the last step returns x̂0', () => {
      const d = new DDIMScheduler(lin, { eta: 0.5 }).setTimesteps([500, 400]);
      expect(d.sigma(500)).to.be.closeTo(0.36159817463570665, 1e-12);
      const [prev, x0] = values(() => step(d, 500));
      expect(x0).to.be.closeTo(3.4856521869307104, 1e-5);
      expect(prev).to.be.closeTo(1.048579571468474, 1e-5);
      expectNoLeak(() => step(d, 500).dispose());
      const last = new DDIMScheduler(lin).setTimesteps([0]);
      expect(values(() => step(last, 0))[0]).to.be.closeTo(0.30701535115134554, 1e-6);
    });

    it('DDPM at t = 487 with posterior (β̃) and β variance', () => {
      expect(values(() => step(new DDPMScheduler(lin), 487))[0]).to.be.closeTo(0.33344100321096526, 1e-6);
      expect(values(() => step(new DDPMScheduler(lin, { variance: 'beta' }), 487))[0]).to.be.closeTo(0.333452911397465, 1e-6);
      expect(new DDPMScheduler(lin).stepVariance(0)).to.equal(0);
      expect(new DDPMScheduler(lin, { variance: 'beta' }).needsNoise(0)).to.equal(false); // no noise on the last step
    });
  });

  // Data ~ N(μ, diag(s²)) in 2-D; the exact ε-model is ε*(x_t) = √(1−ᾱ)·(x_t − √ᾱ·μ)/(ᾱ·s² + 1 − ᾱ) (Gaussian algebra).
  const mu = [0.5, -1];
  const sd = [0.3, 0.6];
  const gaussEps =
    (s: NoiseSchedule): Denoiser =>
    (x, t) =>
      tf.tidy(() => {
        const ab = s.at('alphasCumprod', t, 2);
        const m = tf.mul(tf.sqrt(ab), tf.tensor2d([mu]));
        const v = tf.add(tf.mul(ab, tf.tensor2d([sd.map((q) => q * q)])), tf.sub(1, ab));
        return tf.div(tf.mul(tf.sqrt(tf.sub(1, ab)), tf.sub(x, m)), v);
      });
  const expectGaussian = (v: number[], what: string, tol: number) => {
    for (let j = 0; j < 2; j++) {
      const st = meanStd(column(v, 2, j));
      expect(st.mean, `${what} mean[${j}]`).to.be.closeTo(mu[j], tol);
      expect(st.std, `${what} std[${j}]`).to.be.closeTo(sd[j], tol);
    }
  };

  it('DDPM (1000 steps β̃, 200 steps β) and DDIM (50 steps, η = 0) recover a known Gaussian from its exact ε-model', async () => {
    const n = 2000; // standard error of the mean ≤ 0.014, of the std ≤ 0.01: tolerance 0.05 is ≥ 3.5 SE
    expectGaussian(await take(ddpmSample(gaussEps(lin), [n, 2], lin, { predictionType: 'epsilon', seed: 1 })), 'ddpm posterior', 0.05);
    expectGaussian(await take(ddpmSample(gaussEps(lin), [n, 2], lin, { predictionType: 'epsilon', seed: 2, variance: 'beta', steps: 200 })), 'ddpm beta 200 steps', 0.05);
    const cos = NoiseSchedule.cosine();
    expectGaussian(await take(ddimSample(gaussEps(cos), [n, 2], cos, { predictionType: 'epsilon', seed: 3, steps: 50 })), 'ddim cosine', 0.05);
  });

  it('x0 and v models sample the same as the ε-model they are converted from (predictionType plumbing)', async () => {
    const eps = gaussEps(lin);
    const as = (p: PredictionType): Denoiser => (x, t) => tf.tidy(() => convertPrediction(eps(x, t), 'epsilon', p, x, t, lin));
    const ref = await take(ddimSample(eps, [64, 2], lin, { predictionType: 'epsilon', seed: 4, steps: 20, eta: 0.3 }));
    for (const p of ['x0', 'v'] as PredictionType[]) {
      const got = await take(ddimSample(as(p), [64, 2], lin, { seed: 4, steps: 20, eta: 0.3, predictionType: p }));
      got.forEach((g, i) => expect(g, `${p}[${i}]`).to.be.closeTo(ref[i], 2e-3));
    }
  });

  it('DDIM with η = 1 equals DDPM (same seed ⇒ same noise ⇒ same path), with all steps and with 100', async () => {
    const model: Denoiser = (x, t) => tf.tidy(() => tf.add(tf.mul(tf.sin(x), 0.5), tf.reshape(tf.div(tf.cast(t, 'float32'), 4000), [-1, 1])));
    for (const steps of [1000, 100]) {
      const a = await take(ddpmSample(model, [8, 3], lin, { predictionType: 'epsilon', seed: 9, steps }));
      const b = await take(ddimSample(model, [8, 3], lin, { predictionType: 'epsilon', seed: 9, steps, eta: 1 }));
      a.forEach((v, i) => expect(b[i], `steps=${steps} [${i}]`).to.be.closeTo(v, 1e-3));
      const c = await take(ddimSample(model, [8, 3], lin, { predictionType: 'epsilon', seed: 9, steps, eta: 0 }));
      expect(Math.max(...c.map((v, i) => Math.abs(v - a[i])))).to.be.greaterThan(0.05); // η matters
    }
  });

  describe('classifier-free guidance (pitfall 3)', () => {
    // A "model" whose output is its class label: conditional = c, unconditional = the null label 10.
    let calls: number[] = [];
    const byClass: Denoiser = (x, _t, c) => {
      calls.push(x.shape[0]);
      return tf.tidy(() => tf.mul(tf.onesLike(x), tf.reshape(tf.cast(c!, 'float32'), [-1, 1])));
    };
    it('out = out_u + w·(out_c − out_u): w = 1 conditional, w = 0 unconditional, w > 1 beyond conditional, one call', () => {
      const x = tf.zeros([3, 2]);
      const t = tf.tensor1d([5, 5, 5], 'int32');
      const guided = (weight: number) => values(() => guidedDenoiser(byClass, { weight, classes: [1, 2, 7] })(x, t));
      calls = [];
      expect(guided(1)).to.deep.equal([1, 1, 2, 2, 7, 7]);
      expect(calls).to.deep.equal([6]); // conditional and null passes batched together
      expect(guided(0)).to.deep.equal([10, 10, 10, 10, 10, 10]);
      expect(guided(3)).to.deep.equal([-17, -17, -14, -14, 1, 1]); // 10 + 3·(c − 10): away from the null output
      expect(values(() => applyGuidance(tf.scalar(2), tf.scalar(1), 2.5))).to.deep.equal([3.5]);
      expectNoLeak(() => guidedDenoiser(byClass, { weight: 2, classes: [1, 2, 7] })(x, t).dispose());
      expect(() => guidedDenoiser(byClass, { weight: 1, classes: [1, 2] })(x, t)).to.throw(ShapeMismatchError, /one label per example/);
      expect(() => guidedDenoiser(byClass, { weight: NaN, classes: [1, 2, 3] })).to.throw(InvalidArgumentError);
      tf.dispose([x, t]);
    });

    it('a guided sampler with w = 1 equals plain conditional sampling; w = 0 equals the null class', async () => {
      const model: Denoiser = (x, t, c) => tf.tidy(() => tf.mul(tf.tanh(x), tf.reshape(tf.div(tf.add(tf.cast(c!, 'float32'), 1), 11), [-1, 1])));
      const opts = { seed: 5, steps: 10, predictionType: 'epsilon' as const };
      const plain = await take(ddimSample(model, [2, 2], lin, { ...opts, classes: [3, 4] }));
      const w1 = await take(ddimSample(model, [2, 2], lin, { ...opts, guidance: { weight: 1, classes: [3, 4] } }));
      w1.forEach((v, i) => expect(v).to.be.closeTo(plain[i], 1e-5 * (1 + Math.abs(v)))); // float32 of (c − u)·1 + u
      const nul = await take(ddimSample(model, [2, 2], lin, { ...opts, classes: [10, 10] }));
      const w0 = await take(ddimSample(model, [2, 2], lin, { ...opts, guidance: { weight: 0, classes: [3, 4] } }));
      w0.forEach((v, i) => expect(v).to.be.closeTo(nul[i], 1e-5 * (1 + Math.abs(v))));
    });
  });

  describe('loop behaviour', () => {
    const smooth: Denoiser = (x) => tf.mul(x, 0.1);

    it('a 1000-step DDPM loop keeps the tensor count flat and returns to the start after disposeResult', async () => {
      const start = tf.memory().numTensors;
      const counts: number[] = [];
      const r = await ddpmSample(smooth, [2, 4, 4, 1], lin, { predictionType: 'epsilon', seed: 1, onStep: () => counts.push(tf.memory().numTensors) });
      expect(counts.length).to.equal(1000);
      expect(new Set(counts).size, 'tensor count changed during sampling').to.equal(1);
      disposeResult(r);
      expect(tf.memory().numTensors).to.equal(start);
    });

    it('is reproducible from a seed, reports the seed it used, and reports progress', async () => {
      const a = await take(ddimSample(smooth, [2, 3], lin, { predictionType: 'epsilon', seed: 42, steps: 5, eta: 1 }));
      expect(await take(ddimSample(smooth, [2, 3], lin, { predictionType: 'epsilon', seed: 42, steps: 5, eta: 1 }))).to.deep.equal(a);
      expect(await take(ddimSample(smooth, [2, 3], lin, { predictionType: 'epsilon', seed: 43, steps: 5, eta: 1 }))).to.not.deep.equal(a);
      const r = await ddimSample(smooth, [2, 3], lin, { predictionType: 'epsilon', steps: 5, eta: 1 });
      const again = await take(ddimSample(smooth, [2, 3], lin, { predictionType: 'epsilon', steps: 5, eta: 1, seed: r.seed }));
      expect(await take(r)).to.deep.equal(again);
      const seen: string[] = [];
      await take(ddimSample(smooth, [1, 1], lin, { predictionType: 'epsilon', seed: 1, steps: 4, onStep: (p) => seen.push(`${p.step}/${p.total}@${p.t}`) }));
      expect(seen).to.deep.equal(['1/4@999', '2/4@749', '3/4@499', '4/4@249']);
    });

    it('returns trajectories (≈10 snapshots, or every k-th step) that share the final sample', async () => {
      const start = tf.memory().numTensors;
      const r = await ddimSample(smooth, [2, 2], lin, { predictionType: 'epsilon', seed: 1, steps: 50, returnTrajectory: true });
      expect(r.trajectory.map((p) => p.step)).to.deep.equal([0, 6, 11, 17, 22, 28, 33, 39, 44, 50]);
      expect(r.trajectory[0].t).to.equal(999);
      expect(r.trajectory[0].predX0).to.equal(undefined);
      expect(r.trajectory[9].t).to.equal(-1);
      expect(r.trajectory[9].x).to.equal(r.sample);
      expect(r.timesteps[0]).to.equal(999);
      disposeResult(r);
      const k = await ddimSample(smooth, [2, 2], lin, { predictionType: 'epsilon', seed: 1, steps: 25, returnTrajectory: 10 });
      expect(k.trajectory.map((p) => p.step)).to.deep.equal([0, 10, 20, 25]);
      disposeResult(k);
      expect(tf.memory().numTensors).to.equal(start);
    });

    it('stops with NonFiniteError naming the step and t when the model outputs NaN, leaking nothing', async () => {
      const start = tf.memory().numTensors;
      const bad: Denoiser = (x, t) => (t.dataSync()[0] < 600 ? tf.fill(x.shape, NaN) : tf.mul(x, 0.1));
      await expectRejects(() => ddimSample(bad, [2, 2], lin, { predictionType: 'epsilon', seed: 1, steps: 10, returnTrajectory: 1 }), NonFiniteError, /step 5 of 10 \(t = 599\)/);
      const inf: Denoiser = (x) => tf.fill(x.shape, Infinity);
      await expectRejects(() => ddpmSample(inf, [2, 2], lin, { predictionType: 'epsilon', seed: 1 }), NonFiniteError, /step 1 of 1000 \(t = 999\)/);
      // a finite ε whose x̂0 = (x − √(1−ᾱ)·ε)/√ᾱ overflows float32 (÷ 0.006 at t = 999)
      const huge: Denoiser = (x) => tf.mul(tf.onesLike(x), 3e38);
      await expectRejects(() => ddimSample(huge, [2, 2], lin, { predictionType: 'epsilon', seed: 1, steps: 3 }), NonFiniteError, /the sample at step 1 of 3/);
      expect(tf.memory().numTensors).to.equal(start);
    });

    it('clips x̂0 when asked', async () => {
      const wild: Denoiser = (x) => tf.mul(tf.onesLike(x), 5); // predicts x0 = 5 everywhere
      const v = await take(ddimSample(wild, [3, 2], lin, { seed: 1, steps: 10, predictionType: 'x0', clipX0: true }));
      v.forEach((q) => expect(Math.abs(q)).to.be.at.most(1 + 1e-6));
      const free = await take(ddimSample(wild, [3, 2], lin, { seed: 1, steps: 10, predictionType: 'x0' }));
      free.forEach((q) => expect(q).to.be.closeTo(5, 1e-4));
    });

    it('yields to the event loop between steps (a live display updates while it samples)', async () => {
      let ticks = 0;
      let running = true;
      const tick = () => { ticks++; if (running) setImmediate(tick); };
      setImmediate(tick);
      const seen: number[] = [];
      await take(ddimSample(smooth, [2, 2], lin, { predictionType: 'epsilon', seed: 8, steps: 6, onStep: () => seen.push(ticks) }));
      running = false;
      // the timer ran between every two steps: its count grew from one progress report to the next
      for (let i = 1; i < seen.length; i++) expect(seen[i], `step ${i + 1}`).to.be.greaterThan(seen[i - 1]);
    });

    it('reads its finite check only every checkEvery steps, and names the first bad step (not the step of the read)', async () => {
      const start = tf.memory().numTensors;
      let calls = 0;
      // finite for the first 4 calls, NaN from the 5th on (a model that blows up part-way)
      const blowUp: Denoiser = (x) => (++calls >= 5 ? tf.fill(x.shape, NaN) : tf.mul(x, 0.1));
      const steps: number[] = [];
      const reads: number[] = [];
      const data = tf.Tensor.prototype.data;
      tf.Tensor.prototype.data = function (this: tf.Tensor) { reads.push(steps.length); return data.call(this); } as typeof data;
      try {
        await expectRejects(
          () => ddimSample(blowUp, [2, 2], lin, { predictionType: 'epsilon', seed: 1, steps: 40, checkEvery: 8, onStep: (p) => steps.push(p.step) }),
          NonFiniteError, /model output at step 5 of 40 \(t = /,
        );
      } finally {
        tf.Tensor.prototype.data = data;
      }
      expect(reads).to.deep.equal([8]); // one read, after step 8: steps 5 … 8 ran on the device before it
      expect(steps.length).to.equal(8);
      expect(tf.memory().numTensors).to.equal(start);
      // all finite: reads after steps 8, 16, 24, 32, 40 only
      reads.length = 0;
      steps.length = 0;
      tf.Tensor.prototype.data = function (this: tf.Tensor) { reads.push(steps.length); return data.call(this); } as typeof data;
      let r: SampleResult;
      try {
        r = await ddimSample(smooth, [2, 2], lin, { predictionType: 'epsilon', seed: 1, steps: 40, checkEvery: 8, onStep: (p) => steps.push(p.step) });
      } finally {
        tf.Tensor.prototype.data = data;
      }
      expect(reads).to.deep.equal([8, 16, 24, 32, 40]);
      disposeResult(r);
      await expectRejects(() => ddimSample(smooth, [2, 2], lin, { predictionType: 'epsilon', checkEvery: 0 }), InvalidArgumentError, /finite-check interval/);
      expect(tf.memory().numTensors).to.equal(start);
    });

    it('rejects bad options with named errors', async () => {
      const start = tf.memory().numTensors;
      await expectRejects(() => ddimSample(smooth, [1, 2], lin, { predictionType: 'epsilon', steps: 1001 }), InvalidArgumentError, /\[1, T = 1000\]/);
      await expectRejects(() => ddimSample(smooth, [1, 2], lin, { predictionType: 'epsilon', steps: 0 }), InvalidArgumentError);
      await expectRejects(() => ddpmSample(smooth, [1, 2], lin, { predictionType: 'epsilon', steps: 2000 }), InvalidArgumentError);
      await expectRejects(() => ddimSample(smooth, [1, 2], lin, { predictionType: 'epsilon', eta: 1.5 }), InvalidArgumentError, /eta/);
      await expectRejects(() => ddimSample(smooth, [0, 2], lin, { predictionType: 'epsilon' }), InvalidArgumentError, /shape/);
      await expectRejects(() => ddimSample(smooth, [4], lin, { predictionType: 'epsilon' }), InvalidArgumentError, /shape/);
      // no silent default: a v- or x0-model sampled as ε gives speckled samples without any error
      await expectRejects(() => ddimSample(smooth, [1, 2], lin, {} as DDIMSampleOptions), InvalidArgumentError, /predictionType/);
      await expectRejects(() => ddpmSample(smooth, [1, 2], lin, { steps: 3 } as DDPMSampleOptions), InvalidArgumentError, /predictionType/);
      await expectRejects(() => ddimSample(smooth, [1, 2], lin, { predictionType: 'epsilon', clipX0: -1 }), InvalidArgumentError, /clipX0/);
      await expectRejects(() => ddpmSample(smooth, [1, 2], lin, { predictionType: 'epsilon', variance: 'fixed' as 'beta' }), InvalidArgumentError);
      await expectRejects(() => ddimSample(smooth, [1, 2], lin, { predictionType: 'sample' as PredictionType }), InvalidArgumentError);
      await expectRejects(() => ddimSample(smooth, [2, 2], lin, { predictionType: 'epsilon', classes: [1] }), ShapeMismatchError);
      await expectRejects(() => ddimSample((x) => tf.zeros([x.shape[0], 3]), [2, 2], lin, { predictionType: 'epsilon', steps: 2 }), ShapeMismatchError);
      const wrong = tf.zeros([3, 2]);
      await expectRejects(() => ddimSample(smooth, [2, 2], lin, { predictionType: 'epsilon', initialNoise: wrong }), ShapeMismatchError);
      wrong.dispose();
      expect(tf.memory().numTensors).to.equal(start);
    });
  });

  describe('annealed Langevin', () => {
    it('geometric σ ladder', () => {
      const s = geometricSigmas(10, 0.01, 4);
      expect(s[0]).to.equal(10);
      expect(s[3]).to.equal(0.01);
      expect(s[1] / s[0]).to.be.closeTo(0.1, 1e-12);
      expect(s[2] / s[1]).to.be.closeTo(0.1, 1e-12);
      expect(() => geometricSigmas(0.1, 1, 4)).to.throw(InvalidArgumentError);
    });

    it('recovers a known Gaussian from its exact noisy score −(x − μ)/(s² + σ²)', async () => {
      const score: ScoreModel = (x, sigma) =>
        tf.tidy(() => {
          const v = tf.add(tf.tensor2d([sd.map((q) => q * q)]), tf.reshape(tf.square(sigma), [-1, 1]));
          return tf.div(tf.neg(tf.sub(x, tf.tensor2d([mu]))), v);
        });
      const r = await annealedLangevin(score, [3000, 2], { sigmas: geometricSigmas(5, 0.01, 10), stepsPerLevel: 60, stepSize: 5e-5, seed: 2 });
      expectGaussian(await take(r), 'langevin', 0.05);
    });

    it('stops on NaN, rejects bad ladders, leaks nothing', async () => {
      const start = tf.memory().numTensors;
      const bad: ScoreModel = (x) => tf.fill(x.shape, NaN);
      await expectRejects(() => annealedLangevin(bad, [2, 2], { sigmas: [1, 0.1], stepsPerLevel: 3, seed: 1 }), NonFiniteError, /the score at Langevin step 1 of 6/);
      // a step size far too large: x grows ×(1 + α/2·…) each step until it overflows, with a finite score formula
      const repel: ScoreModel = (x) => tf.mul(x, 1e6);
      await expectRejects(() => annealedLangevin(repel, [2, 2], { sigmas: [1, 0.1], stepsPerLevel: 50, stepSize: 1, seed: 1 }), NonFiniteError, /^x at Langevin step \d+ of 100/);
      await expectRejects(() => annealedLangevin(bad, [2, 2], { sigmas: [0.1, 1] }), InvalidArgumentError, /decreasing/);
      await expectRejects(() => annealedLangevin(bad, [2, 2], { sigmas: [1, 0] }), InvalidArgumentError);
      await expectRejects(() => annealedLangevin(bad, [2, 2], { sigmas: [1], stepsPerLevel: 0 }), InvalidArgumentError);
      const counts: number[] = [];
      const r = await annealedLangevin((x) => tf.neg(x), [2, 2], { sigmas: [1, 0.5], stepsPerLevel: 50, seed: 1, onStep: () => counts.push(tf.memory().numTensors), returnTrajectory: 25 });
      // flat between snapshots; at the end the snapshots of steps 25, 50 and 75 are the only extra tensors
      expect(new Set(counts.slice(0, 24)).size).to.equal(1);
      expect(counts[99]).to.equal(counts[0] + 3);
      expect(r.trajectory.map((p) => p.step)).to.deep.equal([0, 25, 50, 75, 100]);
      disposeResult(r);
      // σ also arrives as a number (so a model needing it on the JS side need not read the tensor); the last call is
      // the final denoising step at σ_L
      const seen: number[] = [];
      disposeResult(await annealedLangevin((x, _s, v) => { seen.push(v!); return tf.neg(x); }, [1, 1], { sigmas: [1, 0.5], stepsPerLevel: 2, seed: 1 }));
      expect(seen).to.deep.equal([1, 1, 0.5, 0.5, 0.5]);
      expect(tf.memory().numTensors).to.equal(start);
    });
  });
});
