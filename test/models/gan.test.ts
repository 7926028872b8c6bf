import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../../lib/errors';
import {
  discriminatorLoss, formatSummary, Gan, GAN_ADAM, type GanConfig, ganTrainStep, generatorLoss, NOTEBOOK_GAN, softplus,
} from '../../lib/models';
import { seedStream } from '../../lib/random';
import { Adam } from '../../lib/train/adam';
import { images, maxAbsDiff, Recorder, withoutReads } from './baseline-helpers';

// Tiny: 8×8 images, generator 2 → 4 → 8 with widths 4/8, discriminator 8 → 4 → 2 with widths 4/6, 3-dim z.
const TINY: GanConfig = {
  kind: 'gan', imageSize: 8, channels: 1, latentDim: 3, generatorWidths: [4, 8], discriminatorWidths: [4, 6], groups: 2,
  numClasses: 10, seed: 1,
};

/** Parameter counts of both networks written out independently of lib (conv 3×3: 9·in·out + out, GN: 2c, dense: in·out + out). */
function expectedGanParams(c: GanConfig): { g: number; d: number } {
  const conv = (i: number, o: number) => 9 * i * o + o;
  const denseP = (i: number, o: number) => i * o + o;
  const cond = c.numClasses ? c.numClasses + 1 : 0;
  const gw = c.generatorWidths;
  const gSide = c.imageSize / 2 ** gw.length;
  let g = denseP(c.latentDim + cond, gSide * gSide * gw[gw.length - 1]);
  let ch = gw[gw.length - 1];
  for (let i = gw.length - 1; i >= 0; i--) { const out = gw[Math.max(i - 1, 0)]; g += 2 * ch + conv(ch, out); ch = out; }
  g += 2 * ch + conv(ch, c.channels);
  let d = 0;
  ch = c.channels;
  for (const w of c.discriminatorWidths) { d += conv(ch, w); ch = w; }
  const dSide = c.imageSize / 2 ** c.discriminatorWidths.length;
  const f = dSide * dSide * ch;
  d += denseP(f, 1) + cond * f;
  return { g, d };
}

/** log(1 + eˣ) in double precision, stably: the reference for the losses. */
const softplusRef = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
const mean = (xs: number[]) => xs.reduce((s, v) => s + v, 0) / xs.length;
const sizeOf = (vars: tf.Variable[]) => vars.reduce((s, v) => s + v.size, 0);

describe('models: GAN (issue 14 baseline)', () => {
  it('parameter counts of G and D match the layout for several configs; the two parts cover the store', () => {
    const configs: GanConfig[] = [
      TINY,
      { ...TINY, numClasses: 0 },
      { ...TINY, imageSize: 16, generatorWidths: [4, 4, 8], discriminatorWidths: [2, 4], channels: 3, latentDim: 5, groups: 4 },
      NOTEBOOK_GAN,
    ];
    for (const c of configs) {
      const m = new Gan(c);
      const want = expectedGanParams(c);
      expect(sizeOf(m.generatorVariables()), `G ${JSON.stringify(c)}`).to.equal(want.g);
      expect(sizeOf(m.discriminatorVariables()), `D ${JSON.stringify(c)}`).to.equal(want.d);
      expect(m.paramCount()).to.equal(want.g + want.d);
      expect(m.generatorVariables().length + m.discriminatorVariables().length).to.equal(m.params.variables().length);
      expect(m.partNames('generator').every((n) => n.startsWith('generator.'))).to.equal(true);
      expect(m.summary().reduce((s, r) => s + r.params, 0)).to.equal(m.paramCount());
      m.dispose();
    }
    const m = new Gan(NOTEBOOK_GAN);
    const rows = m.summary();
    // the counts NOTEBOOK_GAN's comment and the issue-14 report give
    expect([sizeOf(m.generatorVariables()), sizeOf(m.discriminatorVariables())]).to.deep.equal([420625, 98497]);
    expect(rows.find((r) => r.name === 'generator.input')!.outputShape).to.deep.equal([7, 7, 96]);
    expect(rows.find((r) => r.name === 'generator.out')!.outputShape).to.deep.equal([28, 28, 1]);
    expect(rows.find((r) => r.name === 'discriminator.1')!.outputShape).to.deep.equal([7, 7, 96]);
    expect(formatSummary(rows)).to.match(new RegExp(`total\\s+${m.paramCount()}`));
    m.dispose();
  });

  it('generate / discriminate / sample shapes for several configs, images in (−1, 1), no leaked tensors', () => {
    const configs: GanConfig[] = [TINY, { ...TINY, numClasses: 0 }, { ...TINY, imageSize: 16, generatorWidths: [4, 4, 8], discriminatorWidths: [2, 4], channels: 3, groups: 4 }];
    for (const c of configs) {
      const m = new Gan(c);
      const z = tf.randomNormal([3, c.latentDim], 0, 1, 'float32', 2) as tf.Tensor2D;
      const cls = c.numClasses ? tf.tensor1d([0, 4, 9], 'int32') : undefined;
      m.generate(z, cls).dispose(); // burn-in
      const before = tf.memory().numTensors;
      const g = m.generate(z, cls);
      expect(g.shape).to.deep.equal([3, c.imageSize, c.imageSize, c.channels]);
      const l = m.discriminate(g, cls);
      expect(l.shape).to.deep.equal([3]);
      const s = m.sample(4, 5);
      expect(s.shape).to.deep.equal([4, c.imageSize, c.imageSize, c.channels]);
      expect(tf.tidy(() => tf.max(tf.abs(tf.concat([g, s]))).dataSync()[0])).to.be.lessThan(1);
      tf.dispose([g, l, s]);
      expect(tf.memory().numTensors, JSON.stringify(c)).to.equal(before);
      tf.dispose([z, cls]);
      m.dispose();
    }
  });

  it('softplus: hand values from −1e4 to 1e4 without overflow; its gradient is σ(x), at 0 too', () => {
    const xs = [-1e4, -100, -20, -1, 0, 1e-3, 1, 20, 88.8, 100, 1e4];
    const x = tf.tensor1d(xs);
    const before = tf.memory().numTensors;
    const y = softplus(x);
    expect(tf.memory().numTensors).to.equal(before + 1);
    const got = Array.from(y.dataSync());
    xs.forEach((v, i) => expect(got[i], `softplus(${v})`).to.be.closeTo(softplusRef(v), 1e-6 * Math.max(1, Math.abs(v)) + 1e-30));
    expect(got[0]).to.equal(0); // e^−10000 underflows to the exact answer's float32 value
    expect(got[4]).to.be.closeTo(Math.LN2, 1e-7);
    const g = Array.from(tf.grad((t: tf.Tensor) => tf.sum(softplus(t)))(x).dataSync());
    xs.forEach((v, i) => expect(g[i], `σ(${v})`).to.be.closeTo(1 / (1 + Math.exp(-v)), 1e-6));
    tf.dispose([x, y]);
  });

  it('losses: hand-computed values and gradients, large logits included', () => {
    const real = [0, 2, -3, 1e4, -1e4];
    const fake = [1, -1, 50, -1e4, 1e4];
    const r = tf.tensor1d(real);
    const f = tf.tensor1d(fake);
    const before = tf.memory().numTensors;
    const d = discriminatorLoss(r, f);
    const g = generatorLoss(f);
    const gs = generatorLoss(f, 'saturating');
    expect(tf.memory().numTensors).to.equal(before + 3);
    const dWant = mean(real.map((v) => softplusRef(-v))) + mean(fake.map(softplusRef));
    const gWant = mean(fake.map((v) => softplusRef(-v)));
    const gsWant = -mean(fake.map(softplusRef));
    expect(d.dataSync()[0]).to.be.closeTo(dWant, 1e-6 * dWant);
    expect(g.dataSync()[0]).to.be.closeTo(gWant, 1e-6 * gWant);
    expect(gs.dataSync()[0]).to.be.closeTo(gsWant, 1e-6 * Math.abs(gsWant));
    // the textbook forms: −log D(x) − log(1 − D(G(z))) and −log D(G(z)) with D = σ, on moderate logits
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const small = tf.tensor1d([0.5, -2]);
    const small2 = tf.tensor1d([1.5, -0.25]);
    expect(discriminatorLoss(small, small2).dataSync()[0]).to.be.closeTo(
      mean([0.5, -2].map((v) => -Math.log(sig(v)))) + mean([1.5, -0.25].map((v) => -Math.log(1 - sig(v)))), 1e-6);
    expect(generatorLoss(small2).dataSync()[0]).to.be.closeTo(mean([1.5, -0.25].map((v) => -Math.log(sig(v)))), 1e-6);
    // gradients: ∂/∂real_i = −σ(−real_i)/B, ∂/∂fake_i = σ(fake_i)/B (finite at ±1e4)
    const [gr, gf] = tf.grads((a: tf.Tensor, b: tf.Tensor) => discriminatorLoss(a as tf.Tensor1D, b as tf.Tensor1D))([r, f]);
    const grv = gr.dataSync();
    const gfv = gf.dataSync();
    real.forEach((v, i) => expect(grv[i]).to.be.closeTo(-sig(-v) / 5, 1e-7));
    fake.forEach((v, i) => expect(gfv[i]).to.be.closeTo(sig(v) / 5, 1e-7));
    tf.dispose([r, f, d, g, gs, small, small2, gr, gf]);
  });

  it('why non-saturating: when D rejects a fake confidently, log(1 − D) has no gradient left, −log D has', () => {
    const l = tf.tensor1d([-30, -30]);
    const gNs = tf.grad((t: tf.Tensor) => generatorLoss(t as tf.Tensor1D))(l).dataSync();
    const gSat = tf.grad((t: tf.Tensor) => generatorLoss(t as tf.Tensor1D, 'saturating'))(l).dataSync();
    // d/dl mean softplus(−l) = −σ(−l)/B ≈ −½;  d/dl −mean softplus(l) = −σ(l)/B ≈ −4.7e−14
    expect(gNs[0]).to.be.closeTo(-0.5, 1e-6);
    expect(Math.abs(gSat[0])).to.be.lessThan(1e-12);
    expect(gSat[0]).to.be.closeTo(-1 / (1 + Math.exp(30)) / 2, 1e-15);
    l.dispose();
  });

  it('conditional: G and D change with the class; omitted classes mean the null class', () => {
    const m = new Gan(TINY);
    const z = tf.randomNormal([2, 3], 0, 1, 'float32', 12) as tf.Tensor2D;
    const x = images(2, 8, 13);
    const c3 = tf.tensor1d([3, 3], 'int32');
    const c7 = tf.tensor1d([7, 7], 'int32');
    const nul = tf.tensor1d([10, 10], 'int32');
    const [g3, g7, gu, gn] = [m.generate(z, c3), m.generate(z, c7), m.generate(z), m.generate(z, nul)];
    expect(maxAbsDiff(g3, g7)).to.be.greaterThan(1e-4);
    expect(maxAbsDiff(gu, gn)).to.equal(0);
    const [d3, d7, du, dn] = [m.discriminate(x, c3), m.discriminate(x, c7), m.discriminate(x), m.discriminate(x, nul)];
    expect(maxAbsDiff(d3, d7)).to.be.greaterThan(1e-4);
    expect(maxAbsDiff(du, dn)).to.equal(0);
    tf.dispose([z, x, c3, c7, nul, g3, g7, gu, gn, d3, d7, du, dn]);
    m.dispose();
  });

  it('no batch statistics: an image\'s G output and D logit do not depend on the rest of its batch', () => {
    const m = new Gan(TINY);
    const z = tf.randomNormal([4, 3], 0, 1, 'float32', 14) as tf.Tensor2D;
    const cls = tf.tensor1d([1, 2, 3, 4], 'int32');
    const all = m.generate(z, cls);
    const first = m.generate(tf.slice(z, [0, 0], [1, 3]), tf.slice(cls, [0], [1]));
    expect(maxAbsDiff(tf.slice(all, [0, 0, 0, 0], [1, 8, 8, 1]), first)).to.be.lessThan(1e-5);
    const dAll = m.discriminate(all, cls);
    const dFirst = m.discriminate(first, tf.slice(cls, [0], [1]));
    expect(Math.abs(dAll.dataSync()[0] - dFirst.dataSync()[0])).to.be.lessThan(1e-5);
    tf.dispose([z, cls, all, first, dAll, dFirst]);
    m.dispose();
  });

  it('seeds: same config seed → same weights; same sample seed → same images; another seed → others', () => {
    const a = new Gan(TINY);
    const b = new Gan(TINY);
    const c = new Gan({ ...TINY, seed: 2 });
    const cls = tf.tensor1d([0, 5], 'int32');
    const [sa, sb, sc, sa2] = [a.sample(2, 3, cls), b.sample(2, 3, cls), c.sample(2, 3, cls), a.sample(2, 4, cls)];
    expect(Array.from(sa.dataSync())).to.deep.equal(Array.from(sb.dataSync()));
    expect(maxAbsDiff(sa, sc)).to.be.greaterThan(1e-4);
    expect(maxAbsDiff(sa, sa2)).to.be.greaterThan(1e-4);
    tf.dispose([cls, sa, sb, sc, sa2]);
    [a, b, c].forEach((m) => m.dispose());
  });

  it('training step: D then G, each with its own optimizer and gradients in its variables\' order; reads nothing, leaks nothing', () => {
    const m = new Gan(TINY);
    const x = images(4, 8, 15);
    const cls = tf.tensor1d([0, 1, 2, 3], 'int32');
    const recD = new Recorder();
    const recG = new Recorder();
    const optD = new Adam(m.discriminatorVariables(), GAN_ADAM);
    const optG = new Adam(m.generatorVariables(), GAN_ADAM);
    tf.dispose(Object.values(ganTrainStep(m, optD, optG, { x, classes: cls }, { lrD: 1e-3, lrG: 1e-3, seed: 0 })));
    const before = tf.memory().numTensors;
    tf.dispose(Object.values(withoutReads(() => ganTrainStep(m, optD, optG, { x, classes: cls }, { lrD: 1e-3, lrG: 1e-3, seed: 1 }))));
    expect(tf.memory().numTensors).to.equal(before);
    const r = withoutReads(() => ganTrainStep(m, recD, recG, { x, classes: cls }, { lrD: 3e-4, lrG: 2e-4, seed: 2 }));
    expect(tf.memory().numTensors).to.equal(before + 4);
    expect(Object.keys(r).sort()).to.deep.equal(['dFake', 'dLoss', 'dReal', 'gLoss']);
    expect(recD.calls.map((c) => c.lr)).to.deep.equal([3e-4]);
    expect(recG.calls.map((c) => c.lr)).to.deep.equal([2e-4]);
    expect(recD.calls[0].shapes).to.deep.equal(m.discriminatorVariables().map((v) => v.shape));
    expect(recG.calls[0].shapes).to.deep.equal(m.generatorVariables().map((v) => v.shape));
    // the reported numbers are this batch's: recompute them from the step's z (weights unchanged: recorders only)
    const z = tf.randomNormal([4, 3], 0, 1, 'float32', seedStream(2).next()) as tf.Tensor2D;
    const ref = tf.tidy(() => {
      const realL = m.discriminate(x, cls);
      const fakeL = m.discriminate(m.generate(z, cls), cls);
      return [discriminatorLoss(realL, fakeL), generatorLoss(fakeL), tf.mean(tf.sigmoid(realL)), tf.mean(tf.sigmoid(fakeL))];
    });
    const got = [r.dLoss, r.gLoss, r.dReal, r.dFake].map((t) => t.dataSync()[0]);
    ref.forEach((t, i) => expect(got[i], ['dLoss', 'gLoss', 'dReal', 'dFake'][i]).to.be.closeTo(t.dataSync()[0], 1e-5));
    tf.dispose([z, ...ref]);
    tf.dispose([x, cls, ...Object.values(r)]);
    [optD, optG].forEach((o) => o.dispose());
    m.dispose();
  });

  it('alternation: G\'s loss is taken through the discriminator that this step has just updated', () => {
    const m = new Gan(TINY);
    const x = images(4, 8, 18);
    const cls = tf.tensor1d([5, 6, 7, 8], 'int32');
    const z = tf.randomNormal([4, 3], 0, 1, 'float32', seedStream(3).next()) as tf.Tensor2D;
    const gBefore = tf.tidy(() => generatorLoss(m.discriminate(m.generate(z, cls), cls)).dataSync()[0]);
    const optD = new Adam(m.discriminatorVariables(), GAN_ADAM);
    const keepG = new Recorder(); // G stays as it was, so its loss can be recomputed afterwards
    const r = ganTrainStep(m, optD, keepG, { x, classes: cls }, { lrD: 0.05, lrG: 1e-3, seed: 3 });
    const gAfter = tf.tidy(() => generatorLoss(m.discriminate(m.generate(z, cls), cls)).dataSync()[0]);
    expect(r.gLoss.dataSync()[0]).to.be.closeTo(gAfter, 1e-5);
    expect(Math.abs(gAfter - gBefore)).to.be.greaterThan(1e-3); // D's update did change it
    tf.dispose([x, cls, z, ...Object.values(r)]);
    optD.dispose();
    m.dispose();
  });

  it('a few alternating Adam steps on a toy batch change every parameter of both networks, without NaN', async () => {
    for (const numClasses of [0, 10]) {
      const m = new Gan({ ...TINY, numClasses });
      const x = images(8, 8, 16);
      const cls = numClasses ? tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32') : undefined;
      const start = await m.params.snapshot();
      const optD = new Adam(m.discriminatorVariables(), GAN_ADAM);
      const optG = new Adam(m.generatorVariables(), GAN_ADAM);
      const before = tf.memory().numTensors;
      const logs: number[][] = [];
      for (let s = 0; s < 5; s++) {
        const r = ganTrainStep(m, optD, optG, { x, classes: cls }, { lrD: 2e-3, lrG: 2e-3, seed: s });
        logs.push([r.dLoss, r.gLoss, r.dReal, r.dFake].map((t) => t.dataSync()[0]));
        tf.dispose(Object.values(r));
      }
      expect(tf.memory().numTensors).to.equal(before);
      expect(logs.flat().every(Number.isFinite), JSON.stringify(logs)).to.equal(true);
      const end = await m.params.snapshot();
      for (const [name, v0] of start) {
        if (name === 'discriminator.class.table') continue; // its null row gets no gradient: checked below
        const v1 = end.get(name)!;
        expect(v0.some((a, i) => a !== v1[i]), `${name} changed`).to.equal(true);
      }
      if (numClasses) {
        const t0 = start.get('discriminator.class.table')!;
        const t1 = end.get('discriminator.class.table')!;
        const f = t0.length / 11;
        const changed = (row: number) => t0.slice(row * f, (row + 1) * f).some((a, i) => a !== t1[row * f + i]);
        expect([0, 7].map(changed)).to.deep.equal([true, true]); // rows of classes in the batch learn
        expect(changed(10)).to.equal(false); // the null class, absent from the batch, stays
      }
      tf.dispose([x, cls]);
      [optD, optG].forEach((o) => o.dispose());
      m.dispose();
    }
  });

  it('D alone (G held by a recorder) learns to score this batch above G\'s fakes', () => {
    const m = new Gan(TINY);
    const x = images(8, 8, 19);
    const cls = tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32');
    const zs = tf.randomNormal([8, 3], 0, 1, 'float32', 99) as tf.Tensor2D;
    const gap = () => tf.tidy(() => tf.sub(tf.mean(m.discriminate(x, cls)), tf.mean(m.discriminate(m.generate(zs, cls), cls))).dataSync()[0]);
    const start = gap();
    const optD = new Adam(m.discriminatorVariables(), GAN_ADAM);
    for (let s = 0; s < 5; s++) tf.dispose(Object.values(ganTrainStep(m, optD, new Recorder(), { x, classes: cls }, { lrD: 2e-3, lrG: 1e-3, seed: s })));
    const end = gap();
    expect(end, `logit gap real − fake ${start} → ${end}`).to.be.greaterThan(start + 0.1);
    tf.dispose([x, cls, zs]);
    optD.dispose();
    m.dispose();
  });

  it('rejects bad configs and inputs with named errors, leaving nothing behind', () => {
    const bad: [Partial<GanConfig>, RegExp][] = [
      [{ kind: 'vae' as never }, /kind must be 'gan'/],
      [{ generatorWidths: [] }, /\(generator\): widths must be a non-empty list/],
      [{ discriminatorWidths: [4, -1] }, /\(discriminator\): widths must be a non-empty list/],
      [{ imageSize: 12, discriminatorWidths: [4, 4, 4] }, /imageSize 12 must be divisible by 2\^levels = 8/],
      [{ groups: 3 }, /groups 3 must divide every width/],
      [{ latentDim: 1.5 }, /latentDim must be a positive integer/],
      [{ leakySlope: 1 }, /leakySlope must be in \[0, 1\)/],
      [{ numClasses: 2.5 }, /numClasses must be an integer ≥ 0/],
      [{ seed: NaN }, /seed must be an integer/],
    ];
    for (const [patch, msg] of bad) expect(() => new Gan({ ...TINY, ...patch }), JSON.stringify(patch)).to.throw(InvalidArgumentError, msg);
    const m = new Gan(TINY);
    const unc = new Gan({ ...TINY, numClasses: 0 });
    const x = images(2, 8, 17);
    const cls = tf.tensor1d([1, 2], 'int32');
    const [x9, one, z4, logits2d] = [tf.zeros([2, 9, 9, 1]), tf.tensor1d([1], 'int32'), tf.zeros([2, 4]) as tf.Tensor2D, tf.zeros([2, 1])];
    const opt = new Recorder();
    const step = (o: Partial<Parameters<typeof ganTrainStep>[4]>, batch: { x: tf.Tensor; classes?: tf.Tensor1D } = { x, classes: cls }, gan = m) =>
      () => ganTrainStep(gan, opt, opt, batch, { lrD: 1e-3, lrG: 1e-3, seed: 1, ...o });
    const before = tf.memory().numTensors;
    expect(() => m.generate(z4, cls)).to.throw(ShapeMismatchError, /z must be \[B, 3\]/);
    expect(() => m.discriminate(x9, cls)).to.throw(ShapeMismatchError, /x must be \[B, 8, 8, 1\]/);
    expect(() => m.discriminate(x, one as tf.Tensor1D)).to.throw(ShapeMismatchError, /classes must be \[2\]/);
    expect(() => unc.discriminate(x, cls)).to.throw(InvalidArgumentError, /unconditional/);
    expect(() => m.sample(-1, 1)).to.throw(InvalidArgumentError, /n must be a positive integer/);
    expect(() => discriminatorLoss(logits2d as tf.Tensor1D, cls)).to.throw(ShapeMismatchError, /logits must be \[B\]/);
    expect(() => generatorLoss(x as never)).to.throw(ShapeMismatchError, /logits must be \[B\]/);
    expect(() => generatorLoss(cls, 'minimax' as never)).to.throw(InvalidArgumentError, /kind must be/);
    expect(step({ lrD: -1 })).to.throw(InvalidArgumentError, /lrD must be a positive finite number/);
    expect(step({ lrG: Infinity })).to.throw(InvalidArgumentError, /lrG must be a positive finite number/);
    expect(step({ seed: 0.5 })).to.throw(InvalidArgumentError, /seed must be an integer/);
    expect(step({}, { x: x9, classes: cls })).to.throw(ShapeMismatchError, /x must be \[B, 8, 8, 1\]/);
    expect(step({}, { x, classes: one as tf.Tensor1D })).to.throw(ShapeMismatchError, /classes must be \[2\]/);
    expect(step({}, { x, classes: cls }, unc)).to.throw(InvalidArgumentError, /unconditional/);
    expect(opt.calls).to.have.length(0);
    expect(tf.memory().numTensors, 'tensors left behind by failed calls').to.equal(before);
    tf.dispose([x, cls, x9, one, z4, logits2d]);
    m.dispose();
    unc.dispose();
  });
});
