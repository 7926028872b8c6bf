import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../../lib/errors';
import {
  bitsPerDim, DEFAULT_LOG_SIGMA, dequantize, elbo, formatSummary, gaussianKl, gaussianNll, greyLevelWidth, NOTEBOOK_VAE,
  reparameterize, Vae, type VaeConfig, vaeTrainStep,
} from '../../lib/models';
import { orderedGrads } from '../../lib/models/baseline-common';
import { ParamStore, zeros } from '../../lib/nn/params';
import { Adam } from '../../lib/train/adam';
import { images, maxAbsDiff, Recorder, withoutReads } from './baseline-helpers';

// Tiny: 8×8 images, two levels (8 → 4 → 2), a 3-dim latent; every layer kind of the notebook's model.
const TINY: VaeConfig = { kind: 'vae', imageSize: 8, channels: 1, widths: [4, 8], latentDim: 3, groups: 2, numClasses: 10, seed: 1 };

/** The layout's parameter count written out independently of lib (conv k×k: k²·in·out + out, GN: 2c, dense: in·out + out). */
function expectedVaeParams(c: VaeConfig): number {
  const conv = (i: number, o: number) => 9 * i * o + o;
  const denseP = (i: number, o: number) => i * o + o;
  const cond = c.numClasses ? c.numClasses + 1 : 0;
  const levels = c.widths.length;
  const side = c.imageSize / 2 ** levels;
  const last = c.widths[levels - 1];
  let p = 0;
  let ch = c.channels;
  for (const w of c.widths) { p += conv(ch, w) + 2 * w; ch = w; }
  p += denseP(side * side * last + cond, 2 * c.latentDim);
  p += denseP(c.latentDim + cond, side * side * last);
  ch = last;
  for (let i = levels - 1; i >= 0; i--) { const out = c.widths[Math.max(i - 1, 0)]; p += 2 * ch + conv(ch, out); ch = out; }
  return p + 2 * ch + conv(ch, c.channels) + 1; // + log s
}

describe('models: VAE (issue 14 baseline)', () => {
  it('parameter counts match the layout for several configs; summary rows add up', () => {
    const configs: VaeConfig[] = [
      TINY,
      { ...TINY, numClasses: 0 },
      { ...TINY, imageSize: 16, widths: [4, 4, 8], channels: 3, latentDim: 5, groups: 4 },
      NOTEBOOK_VAE,
    ];
    for (const c of configs) {
      const m = new Vae(c);
      expect(m.paramCount(), JSON.stringify(c)).to.equal(expectedVaeParams(c));
      expect(m.summary().reduce((s, r) => s + r.params, 0)).to.equal(m.paramCount());
      m.dispose();
    }
    const m = new Vae(NOTEBOOK_VAE);
    const rows = m.summary();
    expect(m.paramCount()).to.equal(563394); // the count NOTEBOOK_VAE's comment and the issue-14 report give
    expect(rows.find((r) => r.name === 'encoder.1')!.outputShape).to.deep.equal([7, 7, 128]);
    expect(rows.find((r) => r.name === 'decoder.up.0')!.outputShape).to.deep.equal([28, 28, 64]);
    expect(formatSummary(rows)).to.match(new RegExp(`total\\s+${m.paramCount()}`));
    m.dispose();
  });

  it('encode / decode / sample / reconstruct shapes for several configs, pixels in (−1, 1), no leaked tensors', () => {
    const configs: VaeConfig[] = [TINY, { ...TINY, numClasses: 0 }, { ...TINY, imageSize: 16, widths: [4, 4, 8], channels: 3, latentDim: 5, groups: 4 }];
    for (const c of configs) {
      const m = new Vae(c);
      const x = images(3, c.imageSize, 2, c.channels);
      const cls = c.numClasses ? tf.tensor1d([0, 4, 9], 'int32') : undefined;
      tf.dispose(Object.values(m.encode(x, cls))); // burn-in (first calls may register kernels)
      const before = tf.memory().numTensors;
      const { mu, logvar } = m.encode(x, cls);
      expect(mu.shape).to.deep.equal([3, c.latentDim]);
      expect(logvar.shape).to.deep.equal([3, c.latentDim]);
      const y = m.decode(mu, cls);
      expect(y.shape).to.deep.equal([3, c.imageSize, c.imageSize, c.channels]);
      const s = m.sample(5, 7, c.numClasses ? tf.tensor1d([1, 1, 2, 2, 3], 'int32') : undefined);
      expect(s.shape).to.deep.equal([5, c.imageSize, c.imageSize, c.channels]);
      const r = m.reconstruct(x, cls);
      expect(r.shape).to.deep.equal(x.shape);
      const range = tf.tidy(() => tf.max(tf.abs(tf.concat([y, s, r]))).dataSync()[0]);
      expect(range).to.be.lessThan(1);
      tf.dispose([mu, logvar, y, s, r]);
      expect(tf.memory().numTensors, JSON.stringify(c)).to.equal(before + (c.numClasses ? 1 : 0)); // + sample's labels
      tf.dispose([x, cls]);
      m.dispose();
    }
  });

  it('KL: the closed form equals a Monte Carlo estimate of E_q[log q(z) − log p(z)] and the textbook per-dimension form', () => {
    const muV = [[0.5, -1.2, 0], [2, 0.1, -0.3]];
    const lvV = [[0, -1, 0.7], [-2.5, 0.4, 1.2]];
    const mu = tf.tensor2d(muV);
    const lv = tf.tensor2d(lvV);
    const before = tf.memory().numTensors;
    const klT = gaussianKl(mu, lv);
    expect(tf.memory().numTensors).to.equal(before + 1);
    const kl = Array.from(klT.dataSync());
    // textbook, per dimension: KL(N(μ, σ²) ‖ N(0, 1)) = −log σ + (σ² + μ²)/2 − ½
    muV.forEach((row, b) => {
      const textbook = row.reduce((s, m, j) => s - lvV[b][j] / 2 + (Math.exp(lvV[b][j]) + m * m) / 2 - 0.5, 0);
      expect(kl[b]).to.be.closeTo(textbook, 1e-5 * Math.max(1, textbook));
    });
    // Monte Carlo with lib's reparameterisation: z = μ + σ ε, log q(z) − log p(z) in double precision here
    const n = 100000;
    const eps = tf.randomNormal([n, 3], 0, 1, 'float32', 11);
    muV.forEach((row, b) => {
      const z = tf.tidy(() => reparameterize(tf.tile(tf.tensor2d([row]), [n, 1]), tf.tile(tf.tensor2d([lvV[b]]), [n, 1]), eps));
      const zv = z.dataSync();
      z.dispose();
      let sum = 0;
      let sumSq = 0;
      for (let i = 0; i < n; i++) {
        let d = 0;
        for (let j = 0; j < 3; j++) {
          const v = zv[i * 3 + j];
          const s2 = Math.exp(lvV[b][j]);
          d += -0.5 * lvV[b][j] - (v - row[j]) ** 2 / (2 * s2) + (v * v) / 2; // log q − log p (the 2π terms cancel)
        }
        sum += d;
        sumSq += d * d;
      }
      const mean = sum / n;
      const se = Math.sqrt((sumSq / n - mean * mean) / n);
      expect(Math.abs(mean - kl[b]), `example ${b}: MC ${mean} ± ${se}, closed form ${kl[b]}`).to.be.lessThan(4 * se + 1e-4);
    });
    tf.dispose([mu, lv, klT, eps]);
  });

  it('Gaussian NLL per image equals −Σ log N(x; m, s²) computed pixel by pixel', () => {
    const x = images(2, 4, 3);
    const m = images(2, 4, 4);
    const ls = tf.tensor1d([-1.3]);
    const nll = gaussianNll(x, m, ls).dataSync();
    const xv = x.dataSync();
    const mv = m.dataSync();
    const s = Math.exp(-1.3);
    for (let b = 0; b < 2; b++) {
      let ref = 0;
      for (let i = 0; i < 16; i++) {
        const d = xv[b * 16 + i] - mv[b * 16 + i];
        ref -= Math.log(Math.exp(-(d * d) / (2 * s * s)) / (s * Math.sqrt(2 * Math.PI)));
      }
      expect(nll[b]).to.be.closeTo(ref, 1e-4 * Math.abs(ref));
    }
    tf.dispose([x, m, ls]);
  });

  it('reparameterisation: gradients of −ELBO w.r.t. μ and log σ² (through the decoder) match central finite differences', () => {
    const m = new Vae({ ...TINY, numClasses: 0, seed: 5 });
    const x = images(2, 8, 6);
    const eps = tf.randomNormal([2, 3], 0, 1, 'float32', 7) as tf.Tensor2D;
    const f = (mu: tf.Tensor, lv: tf.Tensor): tf.Scalar => tf.tidy(() => {
      const z = reparameterize(mu as tf.Tensor2D, lv as tf.Tensor2D, eps);
      const recon = gaussianNll(x, m.decode(z), m.logSigma);
      return tf.mean(tf.add(recon, gaussianKl(mu as tf.Tensor2D, lv as tf.Tensor2D))) as tf.Scalar;
    });
    const mu0 = [0.3, -0.8, 1.1, -0.2, 0.5, 0.9];
    const lv0 = [-0.5, 0.2, -1.0, 0.4, -0.3, 0.1];
    const mu = tf.tensor2d(mu0, [2, 3]);
    const lv = tf.tensor2d(lv0, [2, 3]);
    const [gMu, gLv] = tf.grads(f)([mu, lv]);
    const ga = [Array.from(gMu.dataSync()), Array.from(gLv.dataSync())];
    const h = 1e-2;
    const at = (muV: number[], lvV: number[]) => tf.tidy(() => f(tf.tensor2d(muV, [2, 3]), tf.tensor2d(lvV, [2, 3])).dataSync()[0]);
    for (const [which, base] of [[0, mu0], [1, lv0]] as const) {
      for (let k = 0; k < 6; k++) {
        const plus = base.slice(); plus[k] += h;
        const minus = base.slice(); minus[k] -= h;
        const fd = which === 0 ? (at(plus, lv0) - at(minus, lv0)) / (2 * h) : (at(mu0, plus) - at(mu0, minus)) / (2 * h);
        const g = ga[which][k];
        expect(g, `${which === 0 ? 'μ' : 'log σ²'}[${k}]: autodiff ${g}, finite difference ${fd}`).to.be.closeTo(fd, 0.02 * Math.abs(fd) + 0.02);
      }
    }
    tf.dispose([x, eps, mu, lv, gMu, gLv]);
    m.dispose();
  });

  it('ELBO terms: negElbo = recon + kl per image; the same ε gives the same terms; no leaked tensors', () => {
    const m = new Vae(TINY);
    const x = images(4, 8, 8);
    const cls = tf.tensor1d([1, 2, 3, 4], 'int32');
    const noise = tf.randomNormal([4, 3], 0, 1, 'float32', 9) as tf.Tensor2D;
    tf.dispose(Object.values(elbo(m, x, { classes: cls, noise })));
    const before = tf.memory().numTensors;
    const a = elbo(m, x, { classes: cls, noise });
    expect(tf.memory().numTensors).to.equal(before + 3);
    const b = elbo(m, x, { classes: cls, seed: 3 });
    const c = elbo(m, x, { classes: cls, seed: 3 });
    expect(a.recon.shape).to.deep.equal([4]);
    expect(maxAbsDiff(a.negElbo, tf.add(a.recon, a.kl))).to.be.lessThan(1e-3);
    expect(maxAbsDiff(b.negElbo, c.negElbo)).to.equal(0);
    // the KL term does not depend on the draw, the reconstruction does
    expect(maxAbsDiff(a.kl, b.kl)).to.equal(0);
    expect(maxAbsDiff(a.recon, b.recon)).to.be.greaterThan(0);
    tf.dispose([x, cls, noise, ...Object.values(a), ...Object.values(b), ...Object.values(c)]);
    m.dispose();
  });

  it('bits per dimension and dequantisation: hand values, noise within half a grey level', () => {
    const nats = tf.tensor1d([0, 784 * Math.LN2, 1000]);
    const bpd = bitsPerDim(nats, 784).dataSync();
    const offset = Math.log2(255 / 2); // −log₂ Δ, Δ = 2/255
    expect(bpd[0]).to.be.closeTo(offset, 1e-5);
    expect(bpd[1]).to.be.closeTo(offset + 1, 1e-5);
    expect(bpd[2]).to.be.closeTo(1000 / (784 * Math.LN2) + offset, 1e-5);
    expect(greyLevelWidth(256)).to.equal(2 / 255);
    const x = tf.fill([1000], -1);
    const before = tf.memory().numTensors;
    const d = dequantize(x, 4);
    expect(tf.memory().numTensors).to.equal(before + 1);
    const u = Array.from(d.dataSync()).map((v) => v + 1);
    expect(Math.max(...u.map(Math.abs))).to.be.at.most(1 / 255 + 1e-6);
    expect(Math.abs(u.reduce((s, v) => s + v, 0) / u.length)).to.be.lessThan(0.1 / 255);
    expect(Array.from(dequantize(x, 4).dataSync())).to.deep.equal(Array.from(d.dataSync()));
    tf.dispose([nats, x, d]);
  });

  it('conditional: outputs change with the class; omitted classes mean the null class', () => {
    const m = new Vae(TINY);
    const z = tf.randomNormal([2, 3], 0, 1, 'float32', 12) as tf.Tensor2D;
    const x = images(2, 8, 13);
    const c3 = tf.tensor1d([3, 3], 'int32');
    const c7 = tf.tensor1d([7, 7], 'int32');
    const nul = tf.tensor1d([10, 10], 'int32');
    const [d3, d7, du, dn] = [m.decode(z, c3), m.decode(z, c7), m.decode(z), m.decode(z, nul)];
    expect(maxAbsDiff(d3, d7)).to.be.greaterThan(1e-4);
    expect(maxAbsDiff(du, dn)).to.equal(0);
    const e3 = m.encode(x, c3);
    const e7 = m.encode(x, c7);
    expect(maxAbsDiff(e3.mu, e7.mu)).to.be.greaterThan(1e-4);
    tf.dispose([z, x, c3, c7, nul, d3, d7, du, dn, ...Object.values(e3), ...Object.values(e7)]);
    m.dispose();
  });

  it('seeds: same config seed → same weights; same sample seed → same images; another seed → others', () => {
    const a = new Vae(TINY);
    const b = new Vae(TINY);
    const c = new Vae({ ...TINY, seed: 2 });
    const cls = tf.tensor1d([0, 5], 'int32');
    const [sa, sb, sc, sa2] = [a.sample(2, 3, cls), b.sample(2, 3, cls), c.sample(2, 3, cls), a.sample(2, 4, cls)];
    expect(Array.from(sa.dataSync())).to.deep.equal(Array.from(sb.dataSync()));
    expect(maxAbsDiff(sa, sc)).to.be.greaterThan(1e-4);
    expect(maxAbsDiff(sa, sa2)).to.be.greaterThan(1e-4);
    expect(a.logSigma.dataSync()[0]).to.be.closeTo(DEFAULT_LOG_SIGMA, 1e-6);
    const d = new Vae({ ...TINY, logSigmaInit: -3 });
    expect(d.logSigma.dataSync()[0]).to.be.closeTo(-3, 1e-6);
    tf.dispose([cls, sa, sb, sc, sa2]);
    [a, b, c, d].forEach((m) => m.dispose());
  });

  it('training step: one apply with a gradient per parameter in store order, reads nothing, leaks nothing', () => {
    const m = new Vae(TINY);
    const x = images(4, 8, 14);
    const cls = tf.tensor1d([0, 1, 2, 3], 'int32');
    const rec = new Recorder();
    const adam = new Adam(m.params.variables());
    tf.dispose(Object.values(vaeTrainStep(m, rec, { x, classes: cls }, { lr: 1e-3, seed: 0 })));
    tf.dispose(Object.values(vaeTrainStep(m, adam, { x, classes: cls }, { lr: 1e-3, seed: 0 })));
    const before = tf.memory().numTensors;
    // with lib/train's Adam: no value is read back, and only the five reported scalars remain
    tf.dispose(Object.values(withoutReads(() => vaeTrainStep(m, adam, { x, classes: cls }, { lr: 1e-3, seed: 2 }))));
    expect(tf.memory().numTensors).to.equal(before);
    const r = withoutReads(() => vaeTrainStep(m, rec, { x, classes: cls }, { lr: 5e-4, seed: 1 }));
    expect(tf.memory().numTensors).to.equal(before + 5);
    expect(Object.keys(r).sort()).to.deep.equal(['bitsPerDim', 'kl', 'loss', 'negElbo', 'recon']);
    expect(rec.calls).to.have.length(2); // the burn-in and this one
    expect(rec.calls[1].lr).to.equal(5e-4);
    expect(rec.calls[1].shapes).to.deep.equal(m.params.variables().map((v) => v.shape));
    const [loss, recon, kl, neg, bpd] = [r.loss, r.recon, r.kl, r.negElbo, r.bitsPerDim].map((t) => t.dataSync()[0]);
    expect(loss).to.be.closeTo(recon + kl, 1e-3 * Math.abs(loss)); // β = 1: the loss is −ELBO
    expect(neg).to.be.closeTo(loss, 1e-3 * Math.abs(loss));
    expect(bpd).to.be.closeTo(neg / (64 * Math.LN2) + Math.log2(127.5), 1e-3 * Math.abs(bpd));
    // β weights the KL in the loss only; the reported terms stay unweighted
    const r2 = vaeTrainStep(m, rec, { x, classes: cls }, { lr: 1e-3, seed: 1, beta: 0 });
    expect(r2.loss.dataSync()[0]).to.be.closeTo(r2.recon.dataSync()[0], 1e-3 * Math.abs(loss));
    // dequantisation is on by default (the noise changes the terms), off on request
    const [dOn, dDefault, dOff] = [true, undefined, false].map((dequantize) =>
      vaeTrainStep(m, rec, { x, classes: cls }, { lr: 1e-3, seed: 4, dequantize }));
    expect(dDefault.negElbo.dataSync()[0]).to.equal(dOn.negElbo.dataSync()[0]);
    expect(dOff.negElbo.dataSync()[0]).to.not.equal(dOn.negElbo.dataSync()[0]);
    tf.dispose([x, cls, ...[r, r2, dOn, dDefault, dOff].flatMap((t) => Object.values(t))]);
    adam.dispose();
    m.dispose();
  });

  it('a few Adam steps on a toy batch lower −ELBO (fixed ε) without NaN', () => {
    const m = new Vae({ ...TINY, numClasses: 0 });
    const x = images(8, 8, 15);
    const noise = tf.randomNormal([8, 3], 0, 1, 'float32', 16) as tf.Tensor2D;
    const evalLoss = () => tf.tidy(() => tf.mean(elbo(m, x, { noise }).negElbo).dataSync()[0]);
    const start = evalLoss();
    const opt = new Adam(m.params.variables());
    const before = tf.memory().numTensors;
    const losses: number[] = [];
    for (let s = 0; s < 25; s++) {
      const r = vaeTrainStep(m, opt, { x }, { lr: 1e-2, seed: s });
      losses.push(r.loss.dataSync()[0]);
      tf.dispose(Object.values(r));
    }
    expect(tf.memory().numTensors).to.equal(before);
    expect(losses.every(Number.isFinite)).to.equal(true);
    const end = evalLoss();
    expect(end, `−ELBO ${start} → ${end}`).to.be.lessThan(start - 0.1 * Math.abs(start));
    tf.dispose([x, noise]);
    opt.dispose();
    m.dispose();
  });

  it('a parameter that gets no gradient is a named error, with nothing leaked', () => {
    const store = new ParamStore(0);
    const used = store.create('used', [2], zeros);
    store.create('unused', [2], zeros);
    const before = tf.memory().numTensors;
    expect(() => orderedGrads(() => tf.sum(tf.square(tf.add(used, 1))) as tf.Scalar, store.variables(), store.names()))
      .to.throw(InvalidArgumentError, /no gradient reaches parameter\(s\) unused/);
    expect(tf.memory().numTensors).to.equal(before);
    store.dispose();
  });

  it('rejects bad configs and inputs with named errors', () => {
    const bad: [Partial<VaeConfig>, RegExp][] = [
      [{ kind: 'gan' as never }, /kind must be 'vae'/],
      [{ widths: [] }, /widths must be a non-empty list/],
      [{ widths: [4, 0] }, /widths must be a non-empty list/],
      [{ imageSize: 10 }, /imageSize 10 must be divisible by 2\^levels = 4/],
      [{ groups: 3 }, /groups 3 must divide every width/],
      [{ latentDim: 0 }, /latentDim must be a positive integer/],
      [{ numClasses: -1 }, /numClasses must be an integer ≥ 0/],
      [{ logSigmaInit: NaN }, /logSigmaInit must be a finite number/],
      [{ seed: 1.5 }, /seed must be an integer/],
    ];
    for (const [patch, msg] of bad) expect(() => new Vae({ ...TINY, ...patch }), JSON.stringify(patch)).to.throw(InvalidArgumentError, msg);
    const m = new Vae(TINY);
    const unc = new Vae({ ...TINY, numClasses: 0 });
    const x = images(2, 8, 17);
    const cls = tf.tensor1d([1, 2], 'int32');
    const z = tf.zeros([2, 3]) as tf.Tensor2D;
    const [x9, x4, one, z4, z22, z33, wide, two] = [
      tf.zeros([2, 9, 9, 1]), tf.zeros([2, 4, 4, 1]), tf.tensor1d([1], 'int32'), tf.zeros([2, 4]) as tf.Tensor2D,
      tf.zeros([2, 2]) as tf.Tensor2D, tf.zeros([3, 3]), tf.zeros([2, 8, 8, 2]), tf.zeros([2]),
    ];
    const opt = new Recorder();
    const before = tf.memory().numTensors;
    expect(() => m.encode(x9, cls)).to.throw(ShapeMismatchError, /x must be \[B, 8, 8, 1\]/);
    expect(() => m.encode(x, one as tf.Tensor1D)).to.throw(ShapeMismatchError, /classes must be \[2\]/);
    expect(() => unc.encode(x, cls)).to.throw(InvalidArgumentError, /unconditional/);
    expect(() => m.decode(z4)).to.throw(ShapeMismatchError, /z must be \[B, 3\]/);
    expect(() => m.sample(0, 1)).to.throw(InvalidArgumentError, /n must be a positive integer/);
    expect(() => reparameterize(z, z22, 1)).to.throw(ShapeMismatchError, /same shape/);
    expect(() => reparameterize(z, z, z33)).to.throw(ShapeMismatchError, /ε must have μ's shape/);
    expect(() => gaussianKl(z, z22)).to.throw(ShapeMismatchError, /same shape/);
    expect(() => gaussianNll(x, wide, m.logSigma)).to.throw(ShapeMismatchError, /same shape/);
    expect(() => gaussianNll(x, x, two)).to.throw(ShapeMismatchError, /one number/);
    expect(() => greyLevelWidth(1)).to.throw(InvalidArgumentError, /levels must be an integer ≥ 2/);
    expect(() => bitsPerDim(z, 0)).to.throw(InvalidArgumentError, /dims must be a positive integer/);
    expect(() => vaeTrainStep(m, opt, { x }, { lr: 0, seed: 1 })).to.throw(InvalidArgumentError, /lr must be a positive finite number/);
    expect(() => vaeTrainStep(m, opt, { x }, { lr: NaN, seed: 1 })).to.throw(InvalidArgumentError, /lr/);
    expect(() => vaeTrainStep(m, opt, { x }, { lr: 1e-3, seed: 1, beta: -1 })).to.throw(InvalidArgumentError, /beta/);
    expect(() => vaeTrainStep(m, opt, { x }, { lr: 1e-3, seed: 0.5 })).to.throw(InvalidArgumentError, /seed must be an integer/);
    expect(() => vaeTrainStep(m, opt, { x: x4 }, { lr: 1e-3, seed: 1 })).to.throw(ShapeMismatchError, /x must be/);
    expect(opt.calls).to.have.length(0);
    expect(tf.memory().numTensors, 'tensors left behind by failed calls').to.equal(before);
    tf.dispose([x9, x4, one, z4, z22, z33, wide, two]);
    tf.dispose([x, cls, z]);
    m.dispose();
    unc.dispose();
  });
});
