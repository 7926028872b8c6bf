import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../../lib/errors';
import { addNoise, forwardStep, posterior } from '../../lib/forward';
import { NoiseSchedule } from '../../lib/schedule';
import { expectClose, expectNoLeak, meanStd, values } from './helpers';

describe('math/forward', () => {
  const lin = NoiseSchedule.linear();

  it('addNoise applies a different t to each example (closed form, checked by hand)', () => {
    const x0 = tf.tensor2d([[1, -1], [0.5, 0.25], [2, 0]]);
    const eps = tf.tensor2d([[0.3, 0.1], [-1, 2], [0, 1]]);
    const ts = [0, 499, 999];
    const got = values(() => addNoise(x0, eps, tf.tensor1d(ts, 'int32'), lin));
    const want: number[] = [];
    ts.forEach((t, i) => {
      const a = Math.sqrt(lin.alphasCumprod[t]);
      const s = Math.sqrt(1 - lin.alphasCumprod[t]);
      for (let j = 0; j < 2; j++) want.push(a * x0.arraySync()[i][j] + s * eps.arraySync()[i][j]);
    });
    expectClose(got, want, 1e-6, 1e-6, 'addNoise');
    // ᾱ at t = 499 is the golden 0.07858724288177824 (golden.py): x = √ᾱ·0.5 + √(1−ᾱ)·(−1)
    expect(got[2]).to.be.closeTo(Math.sqrt(0.07858724288177824) * 0.5 - Math.sqrt(1 - 0.07858724288177824), 1e-6);
    expectNoLeak(() => addNoise(x0, eps, [0, 1, 2], lin).dispose());
    expectNoLeak(() => addNoise(x0, eps, 5, lin).dispose());
    expectNoLeak(() => forwardStep(x0, [1, 2, 3], eps, lin).dispose());
    tf.dispose([x0, eps]);
  });

  it('forwardStep uses β of each example’s own t: √(1−β)·x + √β·ε', () => {
    const x = tf.tensor2d([[1], [2]]);
    const e = tf.tensor2d([[0.5], [-1]]);
    const got = values(() => forwardStep(x, tf.tensor1d([0, 999], 'int32'), e, lin));
    // β_0 = 1e-4 and β_999 = 0.02 (the linear end points)
    expect(got[0]).to.be.closeTo(Math.sqrt(1 - 1e-4) + Math.sqrt(1e-4) * 0.5, 1e-6);
    expect(got[1]).to.be.closeTo(Math.sqrt(0.98) * 2 - Math.sqrt(0.02), 1e-6);
    tf.dispose([x, e]);
  });

  it("iterating the seed's step k times has the closed form's mean and variance", () => {
    const n = 20000;
    const x0 = tf.fill([n, 1], 0.8);
    for (const s of [lin, NoiseSchedule.cosine()]) {
      for (const k of [1, 150]) {
        let x: tf.Tensor = x0.clone();
        for (let t = 0; t < k; t++) {
          const xPrev = x;
          x = tf.tidy(() => forwardStep(xPrev, t, tf.randomNormal([n, 1], 0, 1, 'float32', 1000 * k + t), s));
          xPrev.dispose();
        }
        const st = meanStd(values(() => x));
        const ab = s.alphasCumprod[k - 1];
        const wantMean = Math.sqrt(ab) * 0.8;
        const wantVar = 1 - ab;
        // 6 standard errors: SE(mean) = √(var/n), SE(var) ≈ var·√(2/n)
        expect(st.mean, `${s.kind} k=${k} mean`).to.be.closeTo(wantMean, 6 * Math.sqrt(wantVar / n));
        expect(st.std ** 2, `${s.kind} k=${k} var`).to.be.closeTo(wantVar, 6 * wantVar * Math.sqrt(2 / n));
      }
    }
    x0.dispose();
  });

  it('x at the last step is ≈ N(0, I) for the default schedules, whether iterated or in closed form', () => {
    const n = 10000;
    const x0 = tf.ones([n, 1]); // all data at +1: any signal left would shift the mean
    for (const s of [lin, NoiseSchedule.cosine(), NoiseSchedule.sigmoid(), NoiseSchedule.quadratic()]) {
      const closed = meanStd(values(() => tf.tidy(() => addNoise(x0, tf.randomNormal([n, 1], 0, 1, 'float32', 9), s.T - 1, s))));
      // √ᾱ_{T−1} ≤ 0.03 for these four (quadratic the largest), plus 5 standard errors (0.01 each)
      expect(closed.mean, s.kind).to.be.closeTo(0, 0.08);
      expect(closed.std, s.kind).to.be.closeTo(1, 0.04);
    }
    let x: tf.Tensor = x0.clone();
    for (let t = 0; t < lin.T; t++) {
      const xPrev = x;
      x = tf.tidy(() => forwardStep(xPrev, t, tf.randomNormal([n, 1], 0, 1, 'float32', t), lin));
      xPrev.dispose();
    }
    const it = meanStd(values(() => x));
    expect(it.mean).to.be.closeTo(0, 0.06); // √ᾱ_{T−1} = 0.0064 plus 5 standard errors
    expect(it.std).to.be.closeTo(1, 0.04);
    x0.dispose();
  });

  it('posterior(x0, x_t, t) gives coef1·x0 + coef2·x_t and β̃ (golden t = 487 from golden.py)', () => {
    const x0 = tf.tensor2d([[0.5], [-0.2]]);
    const xt = tf.tensor2d([[0.3], [1.1]]);
    const p = posterior(x0, xt, [487, 0], lin);
    expect(p.variance.shape).to.deep.equal([2, 1]);
    const mean = p.mean.dataSync();
    expect(mean[0]).to.be.closeTo(0.0032164385528130487 * 0.5 + 0.9941301128045488 * 0.3, 1e-6);
    expect(mean[1]).to.be.closeTo(-0.2, 1e-6); // t = 0: ᾱ_{−1} = 1, so the posterior mean is x0 itself
    const v = p.variance.dataSync();
    expect(v[0]).to.be.closeTo(0.00979157198569004, 1e-8);
    expect(v[1]).to.equal(0);
    expect(p.logVariance.dataSync()[1]).to.be.closeTo(-9.81672513529567, 1e-4);
    tf.dispose([p.mean, p.variance, p.logVariance]);
    expectNoLeak(() => {
      const q = posterior(x0, xt, 3, lin);
      tf.dispose([q.mean, q.variance, q.logVariance]);
    });
    tf.dispose([x0, xt]);
  });

  it('rejects shape mismatches and timesteps outside [0, T)', () => {
    const a = tf.zeros([2, 3]);
    const b = tf.zeros([2, 4]);
    const before = tf.memory().numTensors;
    expect(() => addNoise(a, b, 0, lin)).to.throw(ShapeMismatchError, /\[2,3\] and \[2,4\]/);
    expect(() => forwardStep(a, 0, b, lin)).to.throw(ShapeMismatchError);
    expect(() => posterior(a, b, 0, lin)).to.throw(ShapeMismatchError);
    expect(() => addNoise(a, a, [1, 2, 3], lin)).to.throw(ShapeMismatchError, /expected 1 or 2/);
    expect(() => addNoise(a, a, 1000, lin)).to.throw(InvalidArgumentError, /\[0, 999\]/);
    expect(() => addNoise(a, a, [-1, 0], lin)).to.throw(InvalidArgumentError);
    expect(tf.memory().numTensors).to.equal(before); // failed calls leak nothing either
    tf.dispose([a, b]);
  });
});
