import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../../lib/errors';
import { diffusionLoss, diffusionLossPerExample, dsmLoss, minSnrWeight } from '../../lib/losses';
import { epsilonFromX0, vFromEpsilonX0, type Denoiser, type PredictionType, type ScoreModel } from '../../lib/param';
import { NoiseSchedule } from '../../lib/schedule';
import { expectNoLeak, values } from './helpers';

describe('math/losses', () => {
  const s = NoiseSchedule.linear();
  const zero: Denoiser = (x) => tf.zerosLike(x);
  let x0: tf.Tensor;
  let noise: tf.Tensor;
  beforeEach(() => {
    x0 = tf.randomUniform([4, 2, 2, 1], -1, 1, 'float32', 11);
    noise = tf.randomNormal([4, 2, 2, 1], 0, 1, 'float32', 12);
  });
  afterEach(() => tf.dispose([x0, noise]));
  const ts = [0, 300, 700, 999];

  it('targets: with a model that outputs 0, the loss is the mean square of ε, x0 or v (computed by hand)', () => {
    const X0 = values(() => x0.clone());
    const E = values(() => noise.clone());
    const ms = (a: number[]) => a.reduce((p, c) => p + c * c, 0) / a.length;
    const V = X0.map((x, i) => {
      const ab = s.alphasCumprod[ts[Math.floor(i / 4)]];
      return Math.sqrt(ab) * E[i] - Math.sqrt(1 - ab) * x;
    });
    const loss = (p: PredictionType) => values(() => diffusionLoss(zero, x0, s, { t: ts, noise, predictionType: p }))[0];
    expect(loss('epsilon')).to.be.closeTo(ms(E), 1e-5);
    expect(loss('x0')).to.be.closeTo(ms(X0), 1e-5);
    expect(loss('v')).to.be.closeTo(ms(V), 1e-5);
  });

  it('min-SNR-γ weights: golden values and the same x0-space weighting for ε, x0 and v models', () => {
    // snr[0] = 9999 (golden.py): ε weight min(9999, 5)/9999; snr[999] = 4.04e-5 < γ: ε weight 1
    expect(minSnrWeight(s.snr[0], 5, 'epsilon')).to.be.closeTo(5 / 9999, 1e-12);
    expect(minSnrWeight(s.snr[999], 5, 'epsilon')).to.equal(1);
    expect(minSnrWeight(s.snr[999], 5, 'x0')).to.be.closeTo(4.0359926511684205e-5, 1e-15);
    // One x0 predictor expressed in three parameterisations: the weighted losses must agree, because
    // ‖Δε‖² = SNR·‖Δx0‖² and ‖Δv‖² = (SNR+1)·‖Δx0‖².
    const x0Model: Denoiser = (x) => tf.mul(tf.tanh(x), 0.5);
    const as: Record<PredictionType, Denoiser> = {
      x0: x0Model,
      epsilon: (x, t) => tf.tidy(() => epsilonFromX0(x, x0Model(x, t), t, s)),
      v: (x, t) => tf.tidy(() => vFromEpsilonX0(epsilonFromX0(x, x0Model(x, t), t, s), x0Model(x, t), t, s)),
    };
    const t = [20, 300, 700, 900]; // away from the ends where ε ↔ x0 divides by ≈ 0 in float32
    const per = (p: PredictionType) => values(() => diffusionLossPerExample(as[p], x0, s, { t, noise, predictionType: p, weighting: { minSnrGamma: 5 } }));
    const ref = per('x0');
    for (const p of ['epsilon', 'v'] as PredictionType[]) per(p).forEach((l, i) => expect(l, `${p} example ${i}`).to.be.closeTo(ref[i], 1e-4 * (1 + ref[i])));
    // unweighted, they differ (the weighting is what makes them agree)
    const plain = values(() => diffusionLossPerExample(as.epsilon, x0, s, { t, noise, predictionType: 'epsilon' }));
    expect(Math.abs(plain[0] - ref[0])).to.be.greaterThan(1e-3);
    // t given as an int32 tensor (as the trainer passes it): looked up on the device, the same losses
    const tT = tf.tensor1d(t, 'int32');
    for (const p of ['epsilon', 'v'] as PredictionType[]) {
      const dev = values(() => diffusionLossPerExample(as[p], x0, s, { t: tT, noise, predictionType: p, weighting: { minSnrGamma: 5 } }));
      dev.forEach((l, i) => expect(l, `${p} tensor t, example ${i}`).to.be.closeTo(per(p)[i], 1e-6 * (1 + ref[i])));
    }
    tT.dispose();
  });

  it('denoising score matching equals the ε-loss up to the weight σ² (Vincent 2011; VP ↔ VE)', () => {
    // An arbitrary fixed ε-model; at step t the VP sample x_t = √ᾱ·(x0 + σ_t·ε) with σ_t = √((1−ᾱ)/ᾱ), so the
    // VE score model at σ_t is s(x̃, σ_t) = −ε̂(√ᾱ·x̃, t)/σ_t.
    const epsModel: Denoiser = (x, t) => tf.tidy(() => tf.tanh(tf.add(tf.mul(x, 0.7), tf.reshape(tf.div(tf.cast(t, 'float32'), 2000), [-1, 1, 1, 1]))));
    for (const t of [10, 400, 950]) {
      const ab = s.alphasCumprod[t];
      const sigma = Math.sqrt((1 - ab) / ab);
      const score: ScoreModel = (xTilde, sig) =>
        tf.tidy(() => {
          expect(sig.shape).to.deep.equal([4]);
          return tf.div(tf.neg(epsModel(tf.mul(xTilde, Math.sqrt(ab)), tf.fill([4], t, 'int32') as tf.Tensor1D)), sigma);
        });
      const eLoss = values(() => diffusionLoss(epsModel, x0, s, { t, noise }))[0];
      const dsmW = values(() => dsmLoss(score, x0, sigma, { noise, weighting: 'sigma2' }))[0];
      const dsm = values(() => dsmLoss(score, x0, sigma, { noise }))[0];
      expect(dsmW, `t=${t}`).to.be.closeTo(eLoss, 1e-4 * eLoss);
      expect(dsm * sigma * sigma, `t=${t}`).to.be.closeTo(eLoss, 1e-4 * eLoss);
    }
    // the exact score of q_σ(x̃|x0) = N(x0, σ²) has DSM loss 0
    const exact: ScoreModel = (xTilde) => tf.div(tf.neg(tf.sub(xTilde, x0)), 0.25);
    expect(values(() => dsmLoss(exact, x0, 0.5, { noise }))[0]).to.be.closeTo(0, 1e-8);
    expectNoLeak(() => dsmLoss(exact, x0, [0.5, 0.5, 0.5, 0.5], { seed: 1 }).dispose());
  });

  it('draws t over 0 … T−1 inclusive and ε from the seed, reproducibly', () => {
    const s10 = NoiseSchedule.linear(10);
    const seen = new Set<number>();
    const spy: Denoiser = (x, t) => {
      t.dataSync().forEach((v) => seen.add(v));
      return tf.zerosLike(x);
    };
    const big = tf.zeros([2000, 1]);
    diffusionLoss(spy, big, s10, { seed: 3 }).dispose();
    big.dispose();
    expect([...seen].sort((a, b) => a - b)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const l = (seed: number) => values(() => diffusionLoss(zero, x0, s, { seed, predictionType: 'v' }))[0];
    expect(l(5)).to.equal(l(5));
    expect(l(5)).to.not.equal(l(6));
  });

  it('trains inside optimizer.minimize without leaking (a one-weight ε-model learns)', () => {
    // ε̂ = w·x_t; data x0 = 0, so x_t = √(1−ᾱ)·ε and the best w is 1/√(1−ᾱ) averaged: loss falls from 1 (w = 0).
    const w = tf.variable(tf.scalar(0));
    const model: Denoiser = (x) => tf.mul(x, w);
    const data = tf.zeros([64, 2]);
    const opt = tf.train.adam(0.05);
    const first = values(() => diffusionLoss(model, data, s, { seed: 0 }))[0];
    let before = 0;
    for (let i = 0; i < 40; i++) {
      if (i === 1) before = tf.memory().numTensors;
      opt.minimize(() => diffusionLoss(model, data, s, { seed: i }));
    }
    expect(tf.memory().numTensors).to.equal(before);
    const last = values(() => diffusionLoss(model, data, s, { seed: 0 }))[0];
    expect(first).to.be.closeTo(1, 0.4); // w = 0: the mean of 128 squared normals (SE 0.125)
    expect(last).to.be.lessThan(first * 0.7);
    opt.dispose();
    tf.dispose([w, data]);
  });

  it('leaks nothing and rejects bad input with named errors', () => {
    expectNoLeak(() => diffusionLoss(zero, x0, s, { seed: 1, weighting: { minSnrGamma: 5 } }).dispose());
    expect(() => diffusionLoss(zero, x0, s, { t: [1, 2] })).to.throw(ShapeMismatchError, /expected 1 or 4/);
    expect(() => diffusionLoss(zero, x0, s, { t: 1000 })).to.throw(InvalidArgumentError);
    expect(() => diffusionLoss(zero, x0, s, { predictionType: 'eps' as PredictionType })).to.throw(InvalidArgumentError, /predictionType/);
    expect(() => diffusionLoss(zero, x0, s, { weighting: { minSnrGamma: 0 }, t: 5 })).to.throw(InvalidArgumentError, /minSnrGamma/);
    expect(() => diffusionLoss(zero, x0, s, { noise: tf.zeros([4, 2]) as tf.Tensor })).to.throw(ShapeMismatchError);
    expect(() => diffusionLoss((x) => tf.zeros([x.shape[0], 3]), x0, s, { t: 5 })).to.throw(ShapeMismatchError);
    expect(() => dsmLoss(zero as unknown as ScoreModel, x0, 0)).to.throw(InvalidArgumentError, /sigma/);
    expect(() => dsmLoss(zero as unknown as ScoreModel, x0, [1, 2])).to.throw(ShapeMismatchError);
    // a NaN seed would silently become a fixed seed: both losses share lib/random's seedStream, which refuses it
    expect(() => diffusionLoss(zero, x0, s, { seed: NaN })).to.throw(InvalidArgumentError, /seed/);
    expect(() => dsmLoss(zero as unknown as ScoreModel, x0, 1, { seed: NaN })).to.throw(InvalidArgumentError, /seed/);
  });
});
