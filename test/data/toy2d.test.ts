import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { gaussianMixture, ringOfGaussians, swissRoll, twoMoons } from '../../lib/data/toy2d';
import { InvalidArgumentError, ShapeMismatchError } from '../../lib/errors';

const rows = (t: tf.Tensor2D) => t.arraySync();

describe('data/toy2d', () => {
  it('twoMoons: noiseless points lie on the two unit half-circles, seeded', () => {
    const before = tf.memory().numTensors;
    const p = twoMoons(500, { noise: 0, seed: 3 });
    expect(p.shape).to.deep.equal([500, 2]);
    let upper = 0;
    for (const [x, y] of rows(p)) {
      const dUp = Math.hypot(x + 0.5, y + 0.25);
      const dLo = Math.hypot(x - 0.5, y - 0.25);
      const onUpper = Math.abs(dUp - 1) < 1e-5 && y >= -0.25 - 1e-5;
      const onLower = Math.abs(dLo - 1) < 1e-5 && y <= 0.25 + 1e-5;
      expect(onUpper || onLower, `(${x}, ${y})`).to.equal(true);
      if (onUpper) upper++;
    }
    expect(upper).to.be.within(200, 300);
    const again = twoMoons(500, { noise: 0, seed: 3 });
    const other = twoMoons(500, { noise: 0, seed: 4 });
    expect(rows(again)).to.deep.equal(rows(p));
    expect(rows(other)).to.not.deep.equal(rows(p));
    tf.dispose([p, again, other]);
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('twoMoons: noise has the requested standard deviation', () => {
    const clean = twoMoons(4000, { noise: 0, seed: 1 });
    const noisy = twoMoons(4000, { noise: 0.1, seed: 1 });
    // Positions and noise share one stream, so compare each point's distance to the nearest circle.
    const dist = (t: tf.Tensor2D) =>
      rows(t).map(([x, y]) => Math.min(Math.abs(Math.hypot(x + 0.5, y + 0.25) - 1), Math.abs(Math.hypot(x - 0.5, y - 0.25) - 1)));
    const meanDist = (d: number[]) => d.reduce((a, b) => a + b, 0) / d.length;
    expect(meanDist(dist(clean))).to.be.below(1e-5);
    // E|N(0, 0.1²)| = 0.1·√(2/π) ≈ 0.080 for the radial component; nearest-circle distance is a bit smaller.
    expect(meanDist(dist(noisy))).to.be.within(0.05, 0.09);
    tf.dispose([clean, noisy]);
  });

  it('swissRoll: noiseless points satisfy r = θ/5 with θ ∈ [1.5π, 4.5π]', () => {
    const p = swissRoll(300, { noise: 0, seed: 2 });
    for (const [x, y] of rows(p)) {
      const r = Math.hypot(x, y);
      const theta = 5 * r;
      expect(theta).to.be.within(1.5 * Math.PI - 1e-4, 4.5 * Math.PI + 1e-4);
      expect(Math.abs(x - (theta * Math.cos(theta)) / 5)).to.be.below(1e-3);
      expect(Math.abs(y - (theta * Math.sin(theta)) / 5)).to.be.below(1e-3);
    }
    p.dispose();
  });

  it('rejects bad arguments', () => {
    for (const n of [0, -3, 2.5, NaN]) expect(() => twoMoons(n), String(n)).to.throw(InvalidArgumentError, /n must be/);
    expect(() => swissRoll(10, { noise: -1 })).to.throw(InvalidArgumentError, /noise/);
    expect(() => gaussianMixture({ means: [], stds: 1 })).to.throw(InvalidArgumentError, /empty/);
    expect(() => gaussianMixture({ means: [[0, 0], [1]], stds: 1 })).to.throw(InvalidArgumentError, /mean/);
    expect(() => gaussianMixture({ means: [[0, 0]], stds: [0] })).to.throw(InvalidArgumentError, /stds/);
    expect(() => gaussianMixture({ means: [[0, 0]], stds: 1, weights: [-1] })).to.throw(InvalidArgumentError, /weights/);
    const gm = gaussianMixture({ means: [[0, 0]], stds: 1 });
    const bad = tf.zeros([3, 3]) as tf.Tensor2D;
    expect(() => gm.scoreAt(bad)).to.throw(ShapeMismatchError, /\[N, 2\]/);
    expect(() => gm.logDensity(bad)).to.throw(ShapeMismatchError);
    const ok = tf.zeros([3, 2]) as tf.Tensor2D;
    expect(() => gm.scoreAt(ok, -0.1)).to.throw(InvalidArgumentError, /sigma/);
    tf.dispose([bad, ok]);
  });

  describe('gaussianMixture', () => {
    const spec = { means: [[-1.5, 0.5], [1, 1], [0.5, -1.5]], stds: [0.4, 0.6, 0.3], weights: [1, 2, 1] };
    const gm = gaussianMixture(spec);
    const w = [0.25, 0.5, 0.25];

    // Independent float64 reference: the mixture density written out, and its convolution by 2-D quadrature.
    const density = (x: number, y: number) =>
      spec.means.reduce((acc, [mx, my], k) => {
        const s2 = spec.stds[k] ** 2;
        return acc + (w[k] * Math.exp(-((x - mx) ** 2 + (y - my) ** 2) / (2 * s2))) / (2 * Math.PI * s2);
      }, 0);
    const convolved = (x: number, y: number, sigma: number) => {
      // ∫ p(u) N(x − u; 0, σ²I) du on a grid wide enough for all components (±5 std).
      const h = 0.05; // trapezoid rule on Gaussians: error ~exp(−2π²s²/h²), negligible for s ≥ 0.3
      let acc = 0;
      for (let ux = -4.5; ux <= 4.5; ux += h)
        for (let uy = -4.5; uy <= 4.5; uy += h) {
          const g = Math.exp(-((x - ux) ** 2 + (y - uy) ** 2) / (2 * sigma * sigma)) / (2 * Math.PI * sigma * sigma);
          acc += density(ux, uy) * g;
        }
      return acc * h * h;
    };
    const fdScore = (f: (x: number, y: number) => number, x: number, y: number, h: number) => [
      (Math.log(f(x + h, y)) - Math.log(f(x - h, y))) / (2 * h),
      (Math.log(f(x, y + h)) - Math.log(f(x, y - h))) / (2 * h),
    ];
    const pts = [[0, 0], [-1.2, 0.9], [1.3, 0.4], [0.4, -1.1], [2.5, -2]];

    it('logDensity matches the written-out mixture density', () => {
      const x = tf.tensor2d(pts);
      const got = gm.logDensity(x).arraySync();
      pts.forEach(([a, b], i) => expect(got[i]).to.be.closeTo(Math.log(density(a, b)), 1e-4));
      x.dispose();
    });

    it('scoreAt(x, 0) equals finite differences of log p', () => {
      const before = tf.memory().numTensors;
      const x = tf.tensor2d(pts);
      const score = gm.scoreAt(x, 0);
      const got = score.arraySync();
      pts.forEach(([a, b], i) => {
        const [gx, gy] = fdScore(density, a, b, 1e-5);
        expect(got[i][0]).to.be.closeTo(gx, 1e-3 * (1 + Math.abs(gx)));
        expect(got[i][1]).to.be.closeTo(gy, 1e-3 * (1 + Math.abs(gy)));
      });
      tf.dispose([x, score]);
      expect(tf.memory().numTensors).to.equal(before);
    });

    it('scoreAt(x, σ) equals finite differences of log (p ∗ N(0, σ²I)) computed by quadrature', function () {
      this.timeout(20000);
      const sigma = 0.5;
      const some = pts.slice(0, 3);
      const x = tf.tensor2d(some);
      const s = gm.scoreAt(x, sigma);
      const lp = gm.logDensity(x, sigma);
      const got = s.arraySync();
      const gotLp = lp.arraySync();
      some.forEach(([a, b], i) => {
        const f = (u: number, v: number) => convolved(u, v, sigma);
        expect(gotLp[i]).to.be.closeTo(Math.log(f(a, b)), 1e-3);
        const [gx, gy] = fdScore(f, a, b, 1e-3);
        expect(got[i][0]).to.be.closeTo(gx, 2e-3 * (1 + Math.abs(gx)));
        expect(got[i][1]).to.be.closeTo(gy, 2e-3 * (1 + Math.abs(gy)));
      });
      tf.dispose([x, s, lp]);
    });

    it('sample(): seeded, with the mixture weights and moments', () => {
      const before = tf.memory().numTensors;
      const n = 20000;
      const s = gm.sample(n, 11);
      const again = gm.sample(50, 11);
      expect(rows(again)).to.deep.equal(rows(s).slice(0, 50));
      const counts = [0, 0, 0];
      let mx = 0;
      let my = 0;
      for (const [x, y] of rows(s)) {
        mx += x / n;
        my += y / n;
        // Nearest mean in std units (components are well separated).
        const k = spec.means
          .map(([a, b], j) => Math.hypot(x - a, y - b) / spec.stds[j])
          .reduce((best, d, j, all) => (d < all[best] ? j : best), 0);
        counts[k]++;
      }
      const wantX = w.reduce((acc, wk, k) => acc + wk * spec.means[k][0], 0);
      const wantY = w.reduce((acc, wk, k) => acc + wk * spec.means[k][1], 0);
      expect(mx).to.be.closeTo(wantX, 0.03);
      expect(my).to.be.closeTo(wantY, 0.03);
      counts.forEach((c, k) => expect(c / n).to.be.closeTo(w[k], 0.02));
      tf.dispose([s, again]);
      expect(tf.memory().numTensors).to.equal(before);
    });

    it('ringOfGaussians builds k equal components on a circle', () => {
      const r = gaussianMixture(ringOfGaussians(8, 2, 0.1));
      expect(r.means).to.have.length(8);
      r.means.forEach(([x, y]) => expect(Math.hypot(x, y)).to.be.closeTo(2, 1e-12));
      expect(r.weights.every((v) => Math.abs(v - 1 / 8) < 1e-12)).to.equal(true);
    });
  });
});
