import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../../lib/errors';
import { Adam, clipByGlobalNorm, Ema, emaDecay, scheduledLr, validateTrainConfig, DEFAULT_TRAIN, warmupLr } from '../../lib/train';

describe('train: Adam, warm-up, clipping, EMA', () => {
  it('Adam matches a scalar re-derivation of Kingma & Ba over several steps', async () => {
    const w = tf.variable(tf.tensor1d([1, -2]));
    const opt = new Adam([w], { beta1: 0.8, beta2: 0.95, epsilon: 1e-6 });
    // reference in plain numbers, element by element
    const ref = [1, -2].map((x) => ({ x, m: 0, v: 0 }));
    const gradsSeq = [[0.5, -1], [0.2, 0.3], [-0.7, 0.1]];
    gradsSeq.forEach((g, n) => {
      const gt = tf.tensor1d(g);
      opt.apply([gt], 0.1);
      gt.dispose();
      ref.forEach((r, i) => {
        r.m = 0.8 * r.m + 0.2 * g[i];
        r.v = 0.95 * r.v + 0.05 * g[i] ** 2;
        const mh = r.m / (1 - 0.8 ** (n + 1));
        const vh = r.v / (1 - 0.95 ** (n + 1));
        r.x -= (0.1 * mh) / (Math.sqrt(vh) + 1e-6);
      });
    });
    const got = w.dataSync();
    ref.forEach((r, i) => expect(got[i]).to.be.closeTo(r.x, 1e-5));
    // state round trip
    const state = await opt.getState();
    expect(state.step).to.equal(3);
    const other = new Adam([w], { beta1: 0.8, beta2: 0.95, epsilon: 1e-6 });
    other.setState(state);
    expect(Array.from((await other.getState()).v[0])).to.deep.equal(Array.from(state.v[0]));
    expect(() => other.setState({ step: 1, m: [], v: [] })).to.throw(ShapeMismatchError);
    expect(() => new Adam([w], { beta1: 1, beta2: 0.9, epsilon: 1e-8 })).to.throw(InvalidArgumentError);
    opt.dispose();
    other.dispose();
    w.dispose();
  });

  it('warm-up is linear to the peak, then constant', () => {
    expect(warmupLr(0, 1e-3, 10)).to.be.closeTo(1e-4, 1e-12);
    expect(warmupLr(4, 1e-3, 10)).to.be.closeTo(5e-4, 1e-12);
    expect(warmupLr(9, 1e-3, 10)).to.equal(1e-3);
    expect(warmupLr(500, 1e-3, 10)).to.equal(1e-3);
    expect(warmupLr(0, 1e-3, 0)).to.equal(1e-3);
  });

  it('the WSD schedule: warm-up, constant, then a half-cosine to 0 over the last decayFraction of the steps', () => {
    const c = { lr: 1e-3, warmupSteps: 10, steps: 100, decayFraction: 0.3 };
    expect(scheduledLr(0, c)).to.be.closeTo(1e-4, 1e-12); // warm-up as before
    expect(scheduledLr(50, c)).to.equal(1e-3);
    expect(scheduledLr(70, c)).to.equal(1e-3); // first step of the decay: cos 0
    expect(scheduledLr(85, c)).to.be.closeTo(5e-4, 1e-12); // halfway: (1 + cos π/2)/2
    expect(scheduledLr(99, c)).to.be.closeTo(1e-3 * 0.5 * (1 + Math.cos((Math.PI * 29) / 30)), 1e-15);
    for (let s = 71; s < 100; s++) expect(scheduledLr(s, c)).to.be.below(scheduledLr(s - 1, c));
    // no decay (absent, 0) is warmupLr at every step
    for (const d of [undefined, 0]) {
      for (const s of [0, 5, 70, 99]) expect(scheduledLr(s, { ...c, decayFraction: d })).to.equal(warmupLr(s, 1e-3, 10));
    }
    expect(() => validateTrainConfig({ ...DEFAULT_TRAIN, decayFraction: 1.5 })).to.throw(/decayFraction must be a number in \[0, 1\], got 1.5/);
    expect(() => validateTrainConfig({ ...DEFAULT_TRAIN, decayFraction: Number.NaN })).to.throw(/decayFraction/);
  });

  it('clipByGlobalNorm scales all gradients by maxNorm/‖g‖ only when ‖g‖ > maxNorm', () => {
    const a = tf.tensor1d([3, 0]);
    const b = tf.tensor2d([[0, 4]]);
    const clipped = clipByGlobalNorm([a, b], 1);
    expect(clipped.norm.dataSync()[0]).to.be.closeTo(5, 1e-6);
    expect(clipped.grads[0].dataSync()[0]).to.be.closeTo(0.6, 1e-6);
    expect(clipped.grads[1].dataSync()[1]).to.be.closeTo(0.8, 1e-6);
    const loose = clipByGlobalNorm([a, b], 10);
    expect(loose.grads[1].dataSync()[1]).to.equal(4);
    expect(() => clipByGlobalNorm([a], 0)).to.throw(InvalidArgumentError);
    // a non-finite norm leaves the scale at 1 (the trainer's finite flag rejects the step); Infinity = no clipping
    const inf = tf.tensor1d([Infinity, 1]);
    const kept = clipByGlobalNorm([inf, b], 1);
    expect(kept.norm.dataSync()[0]).to.equal(Infinity);
    expect(Array.from(kept.grads[1].dataSync())).to.deep.equal([0, 4]);
    const none = clipByGlobalNorm([a, b], Infinity);
    expect(Array.from(none.grads[0].dataSync())).to.deep.equal([3, 0]);
    tf.dispose([a, b, inf, clipped.norm, loose.norm, kept.norm, none.norm, ...clipped.grads, ...loose.grads, ...kept.grads, ...none.grads]);
  });

  it('a control tensor with ok = 0 leaves Adam\'s weights and moments and the EMA exactly as they were (a NaN gradient included)', async () => {
    const w = tf.variable(tf.tensor1d([1, -2]));
    const opt = new Adam([w]);
    const ema = new Ema([w], 0.9);
    const yes = tf.tensor1d([0.5, 1, 1]); // [norm, clip scale, ok]
    const no = tf.tensor1d([NaN, 1, 0]);
    const g = tf.tensor1d([0.5, -1]);
    opt.apply([g], 0.1, yes);
    ema.update(yes);
    const w1 = Array.from(w.dataSync());
    const s1 = await opt.getState();
    const e1 = (await ema.values())[0];
    expect(w1).to.not.deep.equal([1, -2]);
    const bad = tf.tensor1d([NaN, Infinity]);
    const before = tf.memory().numTensors;
    opt.apply([bad], 0.1, no);
    ema.update(no);
    expect(tf.memory().numTensors).to.equal(before);
    expect(Array.from(w.dataSync())).to.deep.equal(w1);
    const s2 = await opt.getState();
    expect(Array.from(s2.m[0])).to.deep.equal(Array.from(s1.m[0]));
    expect(Array.from(s2.v[0])).to.deep.equal(Array.from(s1.v[0]));
    expect(Array.from((await ema.values())[0])).to.deep.equal(Array.from(e1));
    // the counters advance (the trainer rolls them back when its read finds the bad step)
    expect([s2.step, ema.updates]).to.deep.equal([2, 2]);
    tf.dispose([yes, no, g, bad, w]);
    opt.dispose();
    ema.dispose();
  });

  it('with ok = 1 the control\'s clip scale multiplies the gradient, and the update is bit for bit Adam\'s on the scaled gradient', async () => {
    const run = async (grad: number[], control?: number[]) => {
      const w = tf.variable(tf.tensor2d([[0.3, -0.7], [1.5, 0.01]]));
      const opt = new Adam([w]);
      const ema = new Ema([w], 0.9);
      const g = tf.tensor2d(grad, [2, 2]);
      const c = control ? tf.tensor1d(control) : undefined;
      for (let i = 0; i < 3; i++) { opt.apply([g], 0.05, c); ema.update(c); }
      const out = [Array.from(await w.data()), Array.from((await opt.getState()).v[0]), Array.from((await ema.values())[0])];
      tf.dispose([w, g, ...(c ? [c] : [])]);
      opt.dispose();
      ema.dispose();
      return out;
    };
    const scaled = await run([0.25 * 0.4, 0.25 * -2, 0.25 * 3, 0.25 * 0.5]);
    expect(await run([0.4, -2, 3, 0.5], [7, 0.25, 1])).to.deep.equal(scaled);
  });

  it('EMA: decay warm-up min(d, (1+n)/(10+n)) and shadow = d·shadow + (1−d)·θ', () => {
    expect(emaDecay(0.999, 0)).to.be.closeTo(0.1, 1e-12);
    expect(emaDecay(0.999, 10)).to.be.closeTo(11 / 20, 1e-12);
    expect(emaDecay(0.9, 1e6)).to.equal(0.9);
    const w = tf.variable(tf.tensor1d([2]));
    const ema = new Ema([w], 0.5);
    let shadow = 2;
    for (const [n, value] of [[0, 4], [1, 6], [2, -1], [3, 0]]) {
      w.assign(tf.tensor1d([value]));
      const d = ema.update();
      const want = Math.min(0.5, (1 + n) / (10 + n));
      expect(d).to.be.closeTo(want, 1e-12);
      shadow = want * shadow + (1 - want) * value;
      expect(ema.shadow[0].dataSync()[0]).to.be.closeTo(shadow, 1e-5);
    }
    expect(ema.updates).to.equal(4);
    expect(() => new Ema([w], 1)).to.throw(InvalidArgumentError);
    ema.dispose();
    w.dispose();
  });
});
