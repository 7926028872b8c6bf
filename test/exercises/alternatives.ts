/**
 * Correct answers to every course exercise written the way learners naturally write them, in float32 tensor ops
 * (where lib computes in float64 or in another order) and sometimes async: the checks' tolerances must accept all of
 * them on every graded case (test/grading/course.test.ts), while rejecting every known-wrong answer.
 * They are test data, written independently of lib's reference (no lib import).
 */
import * as tf from '@tensorflow/tfjs';

type Fn = (...args: any[]) => unknown;

const f32 = (xs: number[]) => tf.tensor1d(xs, 'float32');
/** ᾱ from β in float32 tensor ops: cumprod(1 − β). */
const abarF32 = (betas: number[]) => tf.cumprod(tf.sub(1, f32(betas)));
/** ᾱ_{t−1} (1 at t = 0) in float32. */
const abarPrevF32 = (abar: tf.Tensor) => tf.concat([tf.ones([1]), tf.slice(abar, [0], [abar.shape[0] - 1])]);
const at = (xs: number[], t: number) => tf.scalar(xs[t], 'float32');

export const alternatives: Record<string, Record<string, Fn>> = {
  '01-forward-step': {
    float32Scalars: (x: tf.Tensor, t: number, e: tf.Tensor, betas: number[]) =>
      tf.tidy(() => tf.add(tf.mul(tf.sqrt(tf.sub(1, at(betas, t))), x), tf.mul(tf.sqrt(at(betas, t)), e))),
    gatherFromTensor: (x: tf.Tensor, t: number, e: tf.Tensor, betas: number[]) =>
      tf.tidy(() => {
        const b = tf.gather(f32(betas), [t]);
        return x.mul(tf.sqrt(tf.scalar(1).sub(b))).add(e.mul(tf.sqrt(b)));
      }),
  },
  '01-alpha-bar': {
    tfCumprod: (betas: number[]) => tf.tidy(() => abarF32(betas).arraySync()),
    asyncTfCumprod: async (betas: number[]) => {
      const t = abarF32(betas);
      const out = await t.array();
      t.dispose();
      return out;
    },
    float32Loop: (betas: number[]) => {
      let p = 1;
      return betas.map((b) => (p = Math.fround(p * Math.fround(1 - Math.fround(b)))));
    },
    logSumExp: (betas: number[]) => tf.tidy(() => tf.exp(tf.cumsum(tf.log(tf.sub(1, f32(betas))))).arraySync()),
  },
  '01-q-sample': {
    gather: (x0: tf.Tensor, t: tf.Tensor1D, e: tf.Tensor, abar: number[]) =>
      tf.tidy(() => {
        const a = tf.gather(f32(abar), t).reshape([-1, 1, 1, 1]);
        return tf.add(tf.mul(tf.sqrt(a), x0), tf.mul(tf.sqrt(tf.sub(1, a)), e));
      }),
    async: async (x0: tf.Tensor, t: tf.Tensor1D, e: tf.Tensor, abar: number[]) => {
      const ts = Array.from(await t.data());
      return tf.tidy(() => {
        const a = tf.tensor(ts.map((i) => abar[i]), [ts.length, 1, 1, 1]);
        return x0.mul(a.sqrt()).add(e.mul(tf.scalar(1).sub(a).sqrt()));
      });
    },
  },
  '02-posterior-mean': {
    float32Coefficients: (x0: tf.Tensor, xt: tf.Tensor, t: number, abar: number[]) =>
      tf.tidy(() => {
        const abT = at(abar, t);
        const abPrev = t === 0 ? tf.scalar(1) : at(abar, t - 1);
        const beta = tf.sub(1, tf.div(abT, abPrev));
        const c0 = tf.div(tf.mul(tf.sqrt(abPrev), beta), tf.sub(1, abT));
        const ct = tf.div(tf.mul(tf.sqrt(tf.sub(1, beta)), tf.sub(1, abPrev)), tf.sub(1, abT));
        return tf.add(tf.mul(c0, x0), tf.mul(ct, xt));
      }),
  },
  '02-posterior-variance': {
    float32Ops: (betas: number[]) =>
      tf.tidy(() => {
        const b = f32(betas);
        const abar = abarF32(betas);
        return tf.div(tf.mul(b, tf.sub(1, abarPrevF32(abar))), tf.sub(1, abar)).arraySync();
      }),
    float32Loop: (betas: number[]) => {
      let prev = 1;
      return betas.map((b) => {
        const ab = Math.fround(prev * Math.fround(1 - b));
        const v = Math.fround((Math.fround(b) * Math.fround(1 - prev)) / Math.fround(1 - ab));
        prev = ab;
        return v;
      });
    },
  },
  '02-x0-from-eps': {
    float32Ops: (xt: tf.Tensor, eps: tf.Tensor, t: number, abar: number[]) =>
      tf.tidy(() => {
        const a = at(abar, t);
        return tf.div(tf.sub(xt, tf.mul(tf.sqrt(tf.sub(1, a)), eps)), tf.sqrt(a));
      }),
    reciprocals: (xt: tf.Tensor, eps: tf.Tensor, t: number, abar: number[]) =>
      tf.tidy(() => {
        const a = at(abar, t);
        return tf.sub(tf.mul(tf.rsqrt(a), xt), tf.mul(tf.sqrt(tf.sub(tf.reciprocal(a), 1)), eps));
      }),
  },
  '03-gaussian-score': {
    float32Ops: (x: tf.Tensor2D, mean: number[], std: number, sigma: number) =>
      tf.tidy(() => tf.div(tf.sub(tf.tensor2d([mean]), x), tf.add(tf.square(tf.scalar(std)), tf.square(tf.scalar(sigma))))),
  },
  '03-dsm-loss': {
    float32Ops: (s: tf.Tensor, e: tf.Tensor, sigma: number) => tf.tidy(() => tf.mean(tf.square(tf.add(s, tf.div(e, sigma))))),
    scaledBySigma: (s: tf.Tensor, e: tf.Tensor, sigma: number) =>
      tf.tidy(() => tf.div(tf.mean(tf.square(tf.add(tf.mul(s, sigma), e))), sigma * sigma)),
    asyncNumberWrapped: async (s: tf.Tensor, e: tf.Tensor, sigma: number) => {
      const v = tf.tidy(() => tf.mean(tf.square(tf.add(s, tf.div(e, sigma)))));
      const x = (await v.data())[0];
      v.dispose();
      return tf.scalar(x);
    },
  },
  '03-score-from-eps': {
    float32Ops: (e: tf.Tensor, t: number, abar: number[]) => tf.tidy(() => tf.div(tf.neg(e), tf.sqrt(tf.sub(1, at(abar, t))))),
  },
  '04-eps-loss': {
    float32Ops: (p: tf.Tensor, e: tf.Tensor) =>
      tf.tidy(() => tf.mean(tf.reshape(tf.squaredDifference(p, e), [p.shape[0], -1]), 1)),
  },
  '04-ancestral-step': {
    float32Ops: (xt: tf.Tensor, eps: tf.Tensor, t: number, betas: number[], z: tf.Tensor) =>
      tf.tidy(() => {
        const abar = abarF32(betas);
        const abT = tf.gather(abar, [t]);
        const abPrev = tf.gather(abarPrevF32(abar), [t]);
        const beta = tf.gather(f32(betas), [t]);
        const mean = tf.div(tf.sub(xt, tf.mul(tf.div(beta, tf.sqrt(tf.sub(1, abT))), eps)), tf.sqrt(tf.sub(1, beta)));
        const variance = tf.div(tf.mul(beta, tf.sub(1, abPrev)), tf.sub(1, abT));
        return tf.add(mean, tf.mul(tf.sqrt(variance), z));
      }),
  },
  '05-sinusoidal-embedding': {
    float32Powers: (t: tf.Tensor1D, dim: number) =>
      tf.tidy(() => {
        const half = dim / 2;
        const freqs = tf.exp(tf.mul(tf.range(0, half), -Math.log(10000) / half));
        const args = tf.mul(tf.expandDims(tf.cast(t, 'float32'), 1), tf.expandDims(freqs, 0));
        return tf.concat([tf.sin(args), tf.cos(args)], 1);
      }),
  },
  '05-group-norm': {
    manualMoments: (x: tf.Tensor4D, groups: number, gamma: tf.Tensor1D, beta: tf.Tensor1D) =>
      tf.tidy(() => {
        const [b, h, w, c] = x.shape;
        const g = tf.reshape(x, [b, h * w, groups, c / groups]);
        const mean = tf.mean(g, [1, 3], true);
        const variance = tf.mean(tf.square(tf.sub(g, mean)), [1, 3], true);
        const normed = tf.mul(tf.sub(g, mean), tf.rsqrt(tf.add(variance, 1e-5)));
        return tf.add(tf.mul(tf.reshape(normed, [b, h, w, c]), gamma), beta);
      }),
    transposed: (x: tf.Tensor4D, groups: number, gamma: tf.Tensor1D, beta: tf.Tensor1D) =>
      tf.tidy(() => {
        const [b, h, w, c] = x.shape;
        const g = tf.transpose(tf.reshape(x, [b, h * w, groups, c / groups]), [0, 2, 1, 3]); // [B, G, HW, C/G]
        const { mean, variance } = tf.moments(g, [2, 3], true);
        const normed = tf.div(tf.sub(g, mean), tf.sqrt(tf.add(variance, 1e-5)));
        return tf.add(tf.mul(tf.reshape(tf.transpose(normed, [0, 2, 1, 3]), [b, h, w, c]), gamma), beta);
      }),
  },
  '05-upsample-nearest': {
    resize: (x: tf.Tensor4D) => tf.image.resizeNearestNeighbor(x, [2 * x.shape[1], 2 * x.shape[2]]),
  },
  '06-ema-update': {
    float32Ops: (shadow: tf.Tensor, param: tf.Tensor, maxDecay: number, n: number) =>
      tf.tidy(() => {
        const d = tf.minimum(tf.scalar(maxDecay), tf.div(tf.scalar(1 + n), tf.scalar(10 + n)));
        return tf.add(param, tf.mul(d, tf.sub(shadow, param)));
      }),
  },
  '06-clip-grad-norm': {
    async: async (grads: tf.Tensor[], maxNorm: number) => {
      const total = tf.tidy(() => tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))));
      const norm = (await total.data())[0];
      total.dispose();
      const scale = norm > maxNorm ? maxNorm / norm : 1;
      return { grads: grads.map((g) => tf.mul(g, scale)), norm };
    },
  },
  '07-trailing-timesteps': {
    float32: (T: number, n: number) => Array.from({ length: n }, (_, i) => Math.round(Math.fround(T - Math.fround((i * T) / n))) - 1),
  },
  '07-ddim-step': {
    float32Ops: (x: tf.Tensor, eps: tf.Tensor, t: number, tPrev: number, abar: number[]) =>
      tf.tidy(() => {
        const abT = at(abar, t);
        const abPrev = tPrev < 0 ? tf.scalar(1) : at(abar, tPrev);
        const x0 = tf.div(tf.sub(x, tf.mul(tf.sqrt(tf.sub(1, abT)), eps)), tf.sqrt(abT));
        return tf.add(tf.mul(tf.sqrt(abPrev), x0), tf.mul(tf.sqrt(tf.sub(1, abPrev)), eps));
      }),
  },
  '07-dpm-solver-step': {
    // every coefficient in float32 tensor ops, from ᾱ as float32 scalars
    float32Ops: (x: tf.Tensor, x0: tf.Tensor, x0b: tf.Tensor, abU: number, abS: number, abT: number) =>
      tf.tidy(() => {
        const lambda = (ab: number) => tf.log(tf.div(tf.sqrt(tf.scalar(ab)), tf.sqrt(tf.sub(1, tf.scalar(ab)))));
        const h = tf.sub(lambda(abT), lambda(abS));
        const r = tf.div(tf.sub(lambda(abS), lambda(abU)), h);
        const k = tf.div(1, tf.mul(2, r));
        const d = tf.sub(tf.mul(tf.add(1, k), x0), tf.mul(k, x0b));
        const cx = tf.div(tf.sqrt(tf.sub(1, tf.scalar(abT))), tf.sqrt(tf.sub(1, tf.scalar(abS))));
        const cd = tf.mul(tf.neg(tf.sqrt(tf.scalar(abT))), tf.sub(tf.exp(tf.neg(h)), 1));
        return tf.add(tf.mul(cx, x), tf.mul(cd, d));
      }),
    // JS numbers, but e^{−h} − 1 without expm1 and λ as log α − log σ
    jsScalars: (x: tf.Tensor, x0: tf.Tensor, x0b: tf.Tensor, abU: number, abS: number, abT: number) => {
      const lambda = (ab: number) => Math.log(Math.sqrt(ab)) - Math.log(Math.sqrt(1 - ab));
      const h = lambda(abT) - lambda(abS);
      const r = (lambda(abS) - lambda(abU)) / h;
      return tf.tidy(() => {
        const d = x0.mul(1 + 1 / (2 * r)).sub(x0b.mul(1 / (2 * r)));
        return x.mul(Math.sqrt(1 - abT) / Math.sqrt(1 - abS)).sub(d.mul(Math.sqrt(abT) * (Math.exp(-h) - 1)));
      });
    },
    // σ/α form: e^{−h} = (σ_t·α_s)/(α_t·σ_s), coefficients read back asynchronously from float32 tensors
    asyncRatios: async (x: tf.Tensor, x0: tf.Tensor, x0b: tf.Tensor, abU: number, abS: number, abT: number) => {
      const coef = tf.tidy(() => {
        const ab = tf.tensor1d([abU, abS, abT]);
        const lambda = tf.mul(0.5, tf.log(tf.div(ab, tf.sub(1, ab))));
        const [lU, lS, lT] = tf.unstack(lambda);
        const h = tf.sub(lT, lS);
        const r = tf.div(tf.sub(lS, lU), h);
        const sigma = tf.sqrt(tf.sub(1, ab));
        const [, sS, sT] = tf.unstack(sigma);
        return tf.stack([tf.div(sT, sS), tf.div(1, tf.mul(2, r)), tf.mul(tf.sqrt(tf.scalar(abT)), tf.sub(1, tf.exp(tf.neg(h))))]);
      });
      const [cx, k, cd] = Array.from(await coef.data());
      coef.dispose();
      return tf.tidy(() => tf.add(tf.mul(x, cx), tf.mul(tf.sub(tf.mul(x0, 1 + k), tf.mul(x0b, k)), cd)));
    },
  },
  '08-class-embedding': {
    gather: (table: tf.Tensor2D, classes: tf.Tensor1D) => tf.gather(table, classes),
  },
  '08-cfg': {
    otherOrder: (c: tf.Tensor, u: tf.Tensor, w: number) => tf.tidy(() => tf.add(tf.mul(c, w), tf.mul(u, 1 - w))),
  },
  '10-reparameterize': {
    sqrtOfExp: (mu: tf.Tensor, lv: tf.Tensor, eps: tf.Tensor) => tf.tidy(() => tf.add(mu, tf.mul(tf.sqrt(tf.exp(lv)), eps))),
    divideByTwo: (mu: tf.Tensor, lv: tf.Tensor, eps: tf.Tensor) => tf.tidy(() => tf.add(tf.mul(tf.exp(tf.div(lv, 2)), eps), mu)),
  },
  '10-generator-loss': {
    tfSoftplus: (l: tf.Tensor) => tf.tidy(() => tf.mean(tf.softplus(tf.neg(l)))),
    logSigmoid: (l: tf.Tensor) => tf.tidy(() => tf.neg(tf.mean(tf.logSigmoid(l)))),
    byHand: async (l: tf.Tensor) => {
      const v = await l.data();
      let s = 0;
      for (const x of v) s += Math.max(-x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
      return tf.scalar(s / v.length);
    },
  },
};
