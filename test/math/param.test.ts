import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../../lib/errors';
import { addNoise } from '../../lib/forward';
import {
  convertPrediction,
  epsilonFromScore,
  epsilonFromV,
  epsilonFromX0,
  scoreFromEpsilon,
  toEpsilonAndX0,
  vFromEpsilonX0,
  x0FromEpsilon,
  x0FromV,
  type Parameterisation,
} from '../../lib/param';
import { NoiseSchedule } from '../../lib/schedule';
import { expectClose, expectNoLeak, values } from './helpers';

describe('math/param', () => {
  const s = NoiseSchedule.linear();
  // Not 0 or 999: there √(1−ᾱ) = 0.01 or √ᾱ = 0.006 and a division amplifies float32 rounding 100×.
  const ts = [5, 100, 250, 600, 900];
  let x0: tf.Tensor;
  let eps: tf.Tensor;
  let xt: tf.Tensor;
  beforeEach(() => {
    x0 = tf.randomUniform([5, 3, 3, 1], -1, 1, 'float32', 1);
    eps = tf.randomNormal([5, 3, 3, 1], 0, 1, 'float32', 2);
    xt = addNoise(x0, eps, ts, s);
  });
  afterEach(() => tf.dispose([x0, eps, xt]));
  const v = () => values(() => vFromEpsilonX0(eps, x0, ts, s));

  it('recovers the true ε, x0 and v from x_t (each conversion inverts the forward process)', () => {
    const X0 = values(() => x0.clone());
    const E = values(() => eps.clone());
    expectClose(values(() => x0FromEpsilon(xt, eps, ts, s)), X0, 1e-4, 0, 'x0FromEpsilon');
    expectClose(values(() => epsilonFromX0(xt, x0, ts, s)), E, 1e-4, 0, 'epsilonFromX0');
    const vt = tf.tensor(v(), xt.shape);
    expectClose(values(() => x0FromV(xt, vt, ts, s)), X0, 1e-5, 0, 'x0FromV');
    expectClose(values(() => epsilonFromV(xt, vt, ts, s)), E, 1e-5, 0, 'epsilonFromV');
    vt.dispose();
  });

  it('v and score match their definitions, computed in float64 by hand', () => {
    const X0 = values(() => x0.clone());
    const E = values(() => eps.clone());
    const V = v();
    const score = values(() => scoreFromEpsilon(eps, ts, s));
    for (let i = 0; i < X0.length; i++) {
      const ab = s.alphasCumprod[ts[Math.floor(i / 9)]];
      expect(V[i]).to.be.closeTo(Math.sqrt(ab) * E[i] - Math.sqrt(1 - ab) * X0[i], 1e-5); // Salimans & Ho eq. (v)
      expect(score[i]).to.be.closeTo(-E[i] / Math.sqrt(1 - ab), 1e-4 * (1 + Math.abs(score[i]))); // score = −ε/√(1−ᾱ)
    }
    const sc = tf.tensor(score, xt.shape);
    expectClose(values(() => epsilonFromScore(sc, ts, s)), E, 1e-5, 0, 'epsilonFromScore');
    sc.dispose();
  });

  it('convertPrediction round-trips between every pair of parameterisations', () => {
    const all: Parameterisation[] = ['epsilon', 'x0', 'v', 'score'];
    for (const from of all) {
      const out = convertPrediction(eps, 'epsilon', from, xt, ts, s);
      for (const to of all) {
        const there = convertPrediction(out, from, to, xt, ts, s);
        const back = values(() => convertPrediction(there, to, 'epsilon', xt, ts, s));
        expectClose(back, values(() => eps.clone()), 2e-4, 1e-4, `${from} → ${to} → epsilon`);
        there.dispose();
      }
      out.dispose();
    }
    expectNoLeak(() => {
      const r = toEpsilonAndX0(eps, 'v', xt, ts, s);
      tf.dispose([r.eps, r.x0]);
      convertPrediction(eps, 'x0', 'score', xt, 3, s).dispose();
      for (const f of [x0FromEpsilon, epsilonFromX0, x0FromV, epsilonFromV]) f(xt, eps, ts, s).dispose();
      vFromEpsilonX0(eps, x0, ts, s).dispose();
      scoreFromEpsilon(eps, ts, s).dispose();
      epsilonFromScore(eps, ts, s).dispose();
    });
  });

  it('takes a noise level as ᾱ itself ({ alphaBar }: levels between the schedule steps) with the same formulas', () => {
    // one example at t = 600, given as the timestep and as its ᾱ; and a level between steps, by hand in float64
    const x1 = tf.tensor2d([[0.3, -1.2]]);
    const e1 = tf.tensor2d([[-0.7, 0.4]]);
    const ab600 = s.alphasCumprod[600];
    for (const to of ['x0', 'v', 'score'] as Parameterisation[]) {
      const byT = values(() => convertPrediction(e1, 'epsilon', to, x1, 600, s));
      expectClose(values(() => convertPrediction(e1, 'epsilon', to, x1, { alphaBar: ab600 }, s)), byT, 1e-6, 1e-6, to);
    }
    const a = 0.37; // ᾱ of no step: x0 = (x − √(1−ᾱ)ε)/√ᾱ, v = √ᾱ·ε − √(1−ᾱ)·x0
    const x0 = [0.3, -1.2].map((x, i) => (x - Math.sqrt(1 - a) * [-0.7, 0.4][i]) / Math.sqrt(a));
    expectClose(values(() => x0FromEpsilon(x1, e1, { alphaBar: a }, s)), x0, 1e-6, 1e-6, 'x0 at ᾱ = 0.37');
    const v = [-0.7, 0.4].map((e, i) => Math.sqrt(a) * e - Math.sqrt(1 - a) * x0[i]);
    expectClose(values(() => convertPrediction(e1, 'epsilon', 'v', x1, { alphaBar: a }, s)), v, 1e-6, 1e-6, 'v at ᾱ = 0.37');
    expect(() => x0FromEpsilon(x1, e1, { alphaBar: 1 }, s)).to.throw(InvalidArgumentError, /alphaBar/);
    expect(() => x0FromEpsilon(x1, e1, { alphaBar: NaN }, s)).to.throw(InvalidArgumentError, /alphaBar/);
    expectNoLeak(() => {
      const r = toEpsilonAndX0(e1, 'v', x1, { alphaBar: a }, s);
      tf.dispose([r.eps, r.x0]);
    });
    tf.dispose([x1, e1]);
  });

  it('rejects unknown types and shape mismatches', () => {
    const small = tf.zeros([5, 2]);
    expect(() => convertPrediction(eps, 'eps' as Parameterisation, 'x0', xt, ts, s)).to.throw(InvalidArgumentError, /unknown/);
    expect(() => x0FromEpsilon(xt, small, ts, s)).to.throw(ShapeMismatchError);
    expect(() => toEpsilonAndX0(small, 'epsilon', xt, ts, s)).to.throw(ShapeMismatchError);
    expect(() => x0FromEpsilon(xt, eps, [1, 2], s)).to.throw(ShapeMismatchError);
    small.dispose();
  });
});
