import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../../lib/errors';
import { NoiseSchedule, cosineAlphaBar, posteriorCoefficients } from '../../lib/schedule';
import { expectNoLeak, values } from './helpers';

// Golden values: numpy float64, test/math/golden/golden.py (written from the papers, independent of lib/), unless noted.
describe('math/schedule', () => {
  const lin = NoiseSchedule.linear();

  it('linear T=1000 matches the golden values (diffusers pins posterior variance 0 / 0.00979 / 0.02)', () => {
    expect(lin.T).to.equal(1000);
    expect(lin.kind).to.equal('linear');
    expect(lin.posteriorVariance[0]).to.equal(0);
    expect(lin.posteriorVariance[487]).to.be.closeTo(0.00979157198569004, 1e-12);
    expect(lin.posteriorVariance[999]).to.be.closeTo(0.01999998352656061, 1e-12);
    expect(lin.alphasCumprod[999]).to.be.closeTo(4.035829765375676e-5, 1e-15);
    expect(lin.alphasCumprod[0]).to.be.closeTo(0.9999, 1e-15);
    expect(lin.alphasCumprod[499]).to.be.closeTo(0.07858724288177824, 1e-13);
    expect(lin.posteriorMeanCoef1[487]).to.be.closeTo(0.0032164385528130487, 1e-13);
    expect(lin.posteriorMeanCoef2[487]).to.be.closeTo(0.9941301128045488, 1e-13);
    expect(lin.snr[0]).to.be.closeTo(9999.0000000011, 1e-6);
    expect(lin.snr[999]).to.be.closeTo(4.0359926511684205e-5, 1e-15);
    expect(lin.posteriorLogVarianceClipped[0]).to.be.closeTo(-9.81672513529567, 1e-10);
    expect(lin.posteriorLogVarianceClipped[1]).to.be.closeTo(-9.81672513529567, 1e-10);
  });

  it('ᾱ_{t−1} is 1 at the first step and the previous ᾱ elsewhere (pitfall 2)', () => {
    for (const s of [lin, NoiseSchedule.cosine(50), NoiseSchedule.fromBetas([0.5])]) {
      expect(s.alphasCumprodPrev[0]).to.equal(1);
      for (let t = 1; t < s.T; t++) expect(s.alphasCumprodPrev[t]).to.equal(s.alphasCumprod[t - 1]);
    }
  });

  it('derived fields agree with their definitions', () => {
    const s = NoiseSchedule.sigmoid(100);
    for (let t = 0; t < s.T; t++) {
      expect(s.alphas[t]).to.be.closeTo(1 - s.betas[t], 1e-15);
      expect(s.sqrtAlphasCumprod[t] ** 2).to.be.closeTo(s.alphasCumprod[t], 1e-14);
      expect(s.sqrtOneMinusAlphasCumprod[t] ** 2 + s.alphasCumprod[t]).to.be.closeTo(1, 1e-14);
      expect(s.sqrtRecipAlphasCumprod[t] * s.sqrtAlphasCumprod[t]).to.be.closeTo(1, 1e-12);
      expect(s.sqrtRecipm1AlphasCumprod[t]).to.be.closeTo(s.sqrtOneMinusAlphasCumprod[t] / s.sqrtAlphasCumprod[t], 1e-9 * s.sqrtRecipAlphasCumprod[t]);
    }
  });

  it('posterior variance and mean coefficients equal an independent Gaussian-conditioning derivation', () => {
    // q(x_{t−1}|x0) = N(√ᾱ' x0, 1−ᾱ'), q(x_t|x_{t−1}) = N(√α x_{t−1}, β): posterior precision = 1/(1−ᾱ') + α/β,
    // mean = var·(√ᾱ'·x0/(1−ᾱ') + √α·x_t/β) — product of two Gaussians, not the closed form used in lib.
    for (const s of [lin, NoiseSchedule.cosine(200)]) {
      for (const t of [1, 2, 17, Math.floor(s.T / 2), s.T - 1]) {
        const ap = s.alphasCumprodPrev[t];
        const a = s.alphas[t];
        const b = s.betas[t];
        const v = 1 / (1 / (1 - ap) + a / b);
        expect(s.posteriorVariance[t]).to.be.closeTo(v, 1e-12 + 1e-9 * v);
        expect(s.posteriorMeanCoef1[t]).to.be.closeTo((v * Math.sqrt(ap)) / (1 - ap), 1e-9);
        expect(s.posteriorMeanCoef2[t]).to.be.closeTo((v * Math.sqrt(a)) / b, 1e-9);
      }
    }
    // Posterior variance is β̃, not β (pitfall 9): strictly smaller except at the end.
    expect(lin.posteriorVariance[10]).to.be.lessThan(lin.betas[10] * 0.99);
    // Strided jump: with ᾱ_prev = 1 (the last step) the mean is x0 exactly and the variance 0.
    expect(posteriorCoefficients(0.3, 1)).to.deep.include({ coef1: 1, coef2: 0, variance: 0 });
  });

  it('cosine ᾱ equals its closed form where unclipped; the last β is clipped at 0.999 (pitfall 4)', () => {
    const c = NoiseSchedule.cosine();
    // closed form: ᾱ at code index t is ᾱ((t+1)/T) with ᾱ(u) = f(u)/f(0), f(u) = cos²((u+s)/(1+s)·π/2)
    for (const t of [0, 1, 100, 499, 800, 998]) {
      const want = Math.cos(((((t + 1) / 1000 + 0.008) / 1.008) * Math.PI) / 2) ** 2 / Math.cos(((0.008 / 1.008) * Math.PI) / 2) ** 2;
      expect(c.alphasCumprod[t]).to.be.closeTo(want, 1e-12 * Math.max(1, want));
      expect(c.alphasCumprod[t]).to.be.closeTo(cosineAlphaBar((t + 1) / 1000), 1e-12);
    }
    expect(c.alphasCumprod[0]).to.be.closeTo(0.99995871577517803, 1e-14); // golden.py
    expect(c.alphasCumprod[499]).to.be.closeTo(0.49384359044063764, 1e-13); // golden.py
    expect(c.alphasCumprod[998]).to.be.closeTo(2.4287669070348502e-6, 1e-16); // golden.py
    expect(c.betas[998]).to.be.closeTo(0.7499993929011166, 1e-12); // golden.py (the square matters: without it ≈ 0.5)
    expect(c.betas[999]).to.equal(0.999); // unclipped it would be 1 and √ᾱ_{T−1} = 0
    expect(c.alphasCumprod[999]).to.be.closeTo(2.4287669070348522e-9, 1e-18);
    expect(Array.from(c.betas).every((b) => b > 0 && b <= 0.999)).to.equal(true);
    expect(Array.from(c.alphasCumprod).every(Number.isFinite)).to.equal(true);
  });

  it('quadratic is sqrt-linear and sigmoid matches golden values', () => {
    const q = NoiseSchedule.quadratic();
    expect(q.betas[0]).to.be.closeTo(1e-4, 1e-16);
    expect(q.betas[500]).to.be.closeTo(0.00574207106768848, 1e-14); // golden.py; linear would give ≈ 0.01006
    expect(q.betas[999]).to.be.closeTo(0.02, 1e-15);
    expect(q.alphasCumprod[999]).to.be.closeTo(0.0007334124595808159, 1e-14);
    // √β is linear in t: equal second differences
    for (const t of [1, 300, 998]) expect(Math.sqrt(q.betas[t + 1]) - 2 * Math.sqrt(q.betas[t]) + Math.sqrt(q.betas[t - 1])).to.be.closeTo(0, 1e-15);
    const s = NoiseSchedule.sigmoid();
    expect(s.betas[0]).to.be.closeTo(3.0027919974917605e-4, 1e-15);
    expect(s.betas[500]).to.be.closeTo(3.314364235860956e-3, 1e-15);
    expect(s.betas[999]).to.equal(0.999);
    expect(s.alphasCumprod[500]).to.be.closeTo(0.49834281788206963, 1e-13);
  });

  it('works for any T, including T = 1', () => {
    for (const T of [1, 2, 7, 4000]) {
      for (const s of [NoiseSchedule.linear(T), NoiseSchedule.cosine(T), NoiseSchedule.quadratic(T), NoiseSchedule.sigmoid(T)]) {
        expect(s.T).to.equal(T);
        expect(Array.from(s.posteriorLogVarianceClipped).every(Number.isFinite), `${s.kind} T=${T}`).to.equal(true);
      }
    }
    const one = NoiseSchedule.linear(1);
    expect(one.betas[0]).to.equal(1e-4);
  });

  it('rejects bad arguments with InvalidArgumentError', () => {
    expect(() => NoiseSchedule.linear(0)).to.throw(InvalidArgumentError, /T must be a positive integer/);
    expect(() => NoiseSchedule.linear(-5)).to.throw(InvalidArgumentError);
    expect(() => NoiseSchedule.cosine(2.5)).to.throw(InvalidArgumentError);
    expect(() => NoiseSchedule.linear(10, 0, 0.02)).to.throw(InvalidArgumentError, /betaStart/);
    expect(() => NoiseSchedule.linear(10, 1e-4, 1)).to.throw(InvalidArgumentError, /betaEnd/);
    expect(() => NoiseSchedule.fromBetas([0.1, 1.2])).to.throw(InvalidArgumentError, /beta\[1\]/);
    expect(() => NoiseSchedule.fromBetas([0.1, NaN])).to.throw(InvalidArgumentError);
    expect(() => NoiseSchedule.fromBetas([])).to.throw(InvalidArgumentError);
    expect(() => NoiseSchedule.cosine(10, 0.008, 1)).to.throw(InvalidArgumentError, /maxBeta/);
    expect(() => NoiseSchedule.sigmoid(10, 3, -3)).to.throw(InvalidArgumentError);
  });

  it('round-trips through JSON exactly and validates what it reads', () => {
    const c = NoiseSchedule.cosine(300);
    const back = NoiseSchedule.fromJSON(JSON.parse(JSON.stringify(c)));
    expect(back.kind).to.equal('cosine');
    expect(back.params).to.deep.equal({ s: 0.008, maxBeta: 0.999 });
    expect(Array.from(back.alphasCumprod)).to.deep.equal(Array.from(c.alphasCumprod));
    expect(() => NoiseSchedule.fromJSON({ betas: 'x' })).to.throw(InvalidArgumentError);
    expect(() => NoiseSchedule.fromJSON({ T: 3, betas: [0.1, 0.2] })).to.throw(InvalidArgumentError, /T = 3/);
    expect(() => NoiseSchedule.fromJSON(null)).to.throw(InvalidArgumentError);
  });

  it('at() gathers per-example values shaped to broadcast, in float32', () => {
    const t = tf.tensor1d([0, 487, 999], 'int32');
    const g = lin.at('posteriorVariance', t);
    expect(g.shape).to.deep.equal([3, 1, 1, 1]);
    expect(g.dtype).to.equal('float32');
    const v = g.dataSync();
    expect(v[0]).to.equal(0);
    expect(v[1]).to.be.closeTo(0.0097916, 1e-7);
    expect(v[2]).to.be.closeTo(0.02, 1e-7);
    g.dispose();
    expect(values(() => lin.at('snr', [5, 6], 2))).to.have.length(2);
    const two = lin.at('betas', [5, 6], 2);
    expect(two.shape).to.deep.equal([2, 1]);
    two.dispose();
    expect(() => lin.at('betas', [1000])).to.throw(InvalidArgumentError, /\[0, 999\]/);
    expect(() => lin.at('betas', [-1])).to.throw(InvalidArgumentError);
    expect(() => lin.at('betas', [1.5])).to.throw(InvalidArgumentError);
    expect(() => lin.at('betas', tf.zeros([2, 2], 'int32') as tf.Tensor)).to.throw(ShapeMismatchError);
    expectNoLeak(() => lin.at('alphasCumprod', t).dispose());
    t.dispose();
  });

  it('at() with a tensor looks the values up on the device (no read back): equal to the JS lookup, NaN outside [0, T)', () => {
    const idx = [0, 3, 487, 998, 999];
    const t = tf.tensor1d(idx, 'int32');
    const sync = tf.Tensor.prototype.dataSync;
    const data = tf.Tensor.prototype.data;
    let device: tf.Tensor;
    // a tensor's values must not be read by lib: any read during at() fails the test
    tf.Tensor.prototype.dataSync = () => { throw new Error('dataSync called'); };
    tf.Tensor.prototype.data = () => { throw new Error('data called'); };
    try {
      device = lin.at('sqrtOneMinusAlphasCumprod', t, 2);
    } finally {
      tf.Tensor.prototype.dataSync = sync;
      tf.Tensor.prototype.data = data;
    }
    expect(device.shape).to.deep.equal([5, 1]);
    expect(Array.from(device.dataSync())).to.deep.equal(values(() => lin.at('sqrtOneMinusAlphasCumprod', idx, 2)));
    device.dispose();
    const out = tf.tensor1d([-1, 5, 1000], 'int32');
    const v = values(() => lin.at('betas', out));
    expect(Number.isNaN(v[0]) && Number.isNaN(v[2])).to.equal(true);
    expect(v[1]).to.equal(Math.fround(lin.betas[5]));
    expect(() => lin.at('betas', tf.tensor1d([1, 2], 'float32'))).to.throw(InvalidArgumentError, /int32/);
    expect(values(() => lin.lookup(Array.from({ length: 1000 }, (_, i) => 2 * i), t, 1))).to.deep.equal(idx.map((i) => 2 * i));
    expect(() => lin.lookup([1, 2], t)).to.throw(ShapeMismatchError, /2 values/);
    expectNoLeak(() => lin.at('betas', t).dispose());
    tf.dispose([t, out]);
  });

  it('sampleTimesteps covers 0 … T−1 inclusive, never T, roughly uniformly, reproducibly (pitfall 1)', () => {
    const s = NoiseSchedule.linear(10);
    const draw = s.sampleTimesteps(20000, 7);
    expect(draw.dtype).to.equal('int32');
    const v = Array.from(draw.dataSync());
    draw.dispose();
    const counts = new Array(11).fill(0);
    v.forEach((t) => counts[t]++);
    expect(counts[10]).to.equal(0);
    expect(Math.min(...v)).to.equal(0);
    expect(Math.max(...v)).to.equal(9);
    // each bin ~ Binomial(20000, 0.1): mean 2000, sd 42; 6 sd bounds
    for (let t = 0; t < 10; t++) expect(counts[t]).to.be.within(2000 - 255, 2000 + 255);
    expect(values(() => s.sampleTimesteps(50, 3))).to.deep.equal(values(() => s.sampleTimesteps(50, 3)));
    expect(values(() => s.sampleTimesteps(50, 3))).to.not.deep.equal(values(() => s.sampleTimesteps(50, 4)));
    expect(() => s.sampleTimesteps(0)).to.throw(InvalidArgumentError);
    expectNoLeak(() => s.sampleTimesteps(8, 1).dispose());
  });
});
