import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../../lib/errors';
import { createModel, formatSummary, MlpDenoiser, REFERENCE_UNET, UNet, type UNetConfig } from '../../lib/models';
import { createResBlock, resBlock } from '../../lib/nn/blocks';
import { ParamStore } from '../../lib/nn/params';

// A tiny class-conditional U-Net with every layer kind of the reference model (8×8 keeps it to milliseconds).
const TINY: UNetConfig = {
  kind: 'unet', imageSize: 8, channels: 1, widths: [8, 16], blocksPerLevel: 1, attentionResolutions: [4], groups: 4,
  embDim: 16, timeSinDim: 8, midBlocks: 1, numClasses: 10, dropout: 0, predictionType: 'epsilon', seed: 1,
};

/** Parameter count of the U-Net layout, written out independently of lib (conv k×k: k²·in·out + out, GN: 2c …). */
function expectedUNetParams(c: UNetConfig): number {
  const conv = (i: number, o: number, k = 3) => k * k * i * o + o;
  const denseP = (i: number, o: number) => i * o + o;
  const gn = (ch: number) => 2 * ch;
  const embOut = (o: number) => (c.embedding === 'scale-shift' ? 2 * o : o); // a scale and a shift per channel
  const res = (i: number, o: number) => gn(i) + conv(i, o) + denseP(c.embDim, embOut(o)) + gn(o) + conv(o, o) + (i !== o ? conv(i, o, 1) : 0);
  const attn = (ch: number) => gn(ch) + denseP(ch, 3 * ch) + denseP(ch, ch);
  const sin = c.timeSinDim ?? c.widths[0];
  let p = denseP(sin, c.embDim) + denseP(c.embDim, c.embDim) + (c.numClasses ? (c.numClasses + 1) * c.embDim : 0);
  p += conv(c.channels, c.widths[0]);
  let ch = c.widths[0];
  let r = c.imageSize;
  const skips: number[] = [];
  c.widths.forEach((w, i) => {
    for (let b = 0; b < c.blocksPerLevel; b++) {
      p += res(ch, w);
      ch = w;
      if (c.attentionResolutions.includes(r)) p += attn(ch);
    }
    skips.push(ch);
    if (i < c.widths.length - 1) { p += conv(ch, ch); r /= 2; }
  });
  for (let m = 0; m < (c.midBlocks ?? 1); m++) p += res(ch, ch);
  for (let i = c.widths.length - 2; i >= 0; i--) {
    p += conv(ch, ch);
    r *= 2;
    for (let b = 0; b < c.blocksPerLevel; b++) {
      p += res(b === 0 ? ch + skips[i] : ch, c.widths[i]);
      ch = c.widths[i];
      if (c.attentionResolutions.includes(r)) p += attn(ch);
    }
  }
  return p + gn(ch) + conv(ch, c.channels);
}

function gradientsReachEveryVariable(config: UNetConfig): void {
  const m = new UNet(config);
  const x = tf.randomNormal([2, 8, 8, 1], 0, 1, 'float32', 3);
  const t = tf.tensor1d([5, 700], 'int32');
  const c = tf.tensor1d([1, 10], 'int32');
  const { value, grads } = tf.variableGrads(
    () => tf.mean(tf.square(m.apply(x, t, c, { training: true, seed: 1 }))) as tf.Scalar, m.params.variables());
  for (const [name, v] of m.params.entries()) {
    const g = grads[v.name];
    expect(g, name).to.not.equal(undefined);
    expect(tf.max(tf.abs(g)).dataSync()[0], `gradient of ${name}`).to.be.greaterThan(0);
  }
  tf.dispose([x, t, c, value, ...Object.values(grads)]);
  m.dispose();
}

describe('models: U-Net', () => {
  it('reference config has the PyTorch reference model\'s 1,180,513 parameters and the layout\'s count', () => {
    const m = new UNet(REFERENCE_UNET);
    // 1,180,513 is the count PyTorch reported for the same architecture (shared/notes/environment.md)
    expect(m.paramCount()).to.equal(1180513);
    expect(m.paramCount()).to.equal(expectedUNetParams(REFERENCE_UNET));
    const rows = m.summary();
    expect(rows.reduce((s, r) => s + r.params, 0)).to.equal(m.paramCount());
    expect(rows.find((r) => r.name === 'down.2.attn.0')!.outputShape).to.deep.equal([7, 7, 128]);
    expect(rows.find((r) => r.name === 'up.0.upsample')!.outputShape).to.deep.equal([28, 28, 64]);
    expect(formatSummary(rows)).to.match(/total\s+1180513/);
    m.dispose();
  });

  it('other layouts (2 blocks per level, attention at two sizes, unconditional) match the independent count', () => {
    const configs: UNetConfig[] = [
      { ...TINY, blocksPerLevel: 2, attentionResolutions: [8, 4] },
      { ...TINY, numClasses: 0, midBlocks: 2, widths: [4, 8, 12] },
      { ...TINY, embedding: 'scale-shift' },
      { ...TINY, embedding: 'scale-shift', blocksPerLevel: 2, numClasses: 0 },
    ];
    for (const c of configs) {
      const m = new UNet(c);
      expect(m.paramCount(), JSON.stringify(c)).to.equal(expectedUNetParams(c));
      m.dispose();
    }
  });

  it('maps [B, H, W, C] to the same shape without leaking tensors; classes change the output', () => {
    const m = new UNet(TINY);
    const x = tf.randomNormal([3, 8, 8, 1], 0, 1, 'float32', 2);
    const t = tf.tensor1d([0, 50, 999], 'int32');
    const c3 = tf.tensor1d([3, 3, 3], 'int32');
    const c7 = tf.tensor1d([7, 7, 7], 'int32');
    const nul = tf.tensor1d([10, 10, 10], 'int32');
    m.apply(x, t, c3).dispose(); // burn-in
    const before = tf.memory().numTensors;
    const a = m.apply(x, t, c3);
    expect(tf.memory().numTensors).to.equal(before + 1);
    const b = m.apply(x, t, c7);
    const u = m.apply(x, t);
    const n = m.apply(x, t, nul);
    expect(a.shape).to.deep.equal([3, 8, 8, 1]);
    expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).to.be.greaterThan(1e-4);
    // omitted classes mean the null class (what classifier-free guidance's unconditional half uses)
    expect(tf.max(tf.abs(tf.sub(u, n))).dataSync()[0]).to.equal(0);
    tf.dispose([x, t, c3, c7, nul, a, b, u, n]);
    m.dispose();
  });

  it('scale-shift embedding: GN(h)·(1 + s) + b equals the bias block with its second GroupNorm\'s γ, β rescaled', () => {
    // With the embedding projection's kernel at 0 the block sees constant s, b: GN(h)·γ(1 + s) + β(1 + s) + b is a
    // GroupNorm with γ' = γ(1 + s), β' = β(1 + s) + b, which a 'bias' block (zero projection) computes independently.
    const store = new ParamStore(5);
    const ss = createResBlock(store, 'ss', 4, 8, 6, 4, 0, 'scale-shift');
    const plain = createResBlock(store, 'plain', 4, 8, 6, 4, 0, 'bias');
    expect(ss.embProj.w.shape).to.deep.equal([6, 16]);
    expect(plain.embProj.w.shape).to.deep.equal([6, 8]);
    const s = [0.5, -0.25, 1, 0, 2, -0.5, 0.1, 0.3];
    const b = [0.2, -1, 0, 0.7, -0.3, 0.4, 1.5, -0.8];
    ss.embProj.w.assign(tf.zerosLike(ss.embProj.w));
    ss.embProj.b.assign(tf.tensor1d([...s, ...b]));
    ss.norm2.gamma.assign(tf.randomUniform([8], 0.5, 1.5, 'float32', 7));
    ss.norm2.beta.assign(tf.randomUniform([8], -0.5, 0.5, 'float32', 8));
    const g = ss.norm2.gamma.dataSync();
    const be = ss.norm2.beta.dataSync();
    const copy = (from: tf.Variable, to: tf.Variable) => to.assign(from);
    copy(ss.norm1.gamma, plain.norm1.gamma); copy(ss.norm1.beta, plain.norm1.beta);
    for (const k of ['conv1', 'conv2', 'skip'] as const) { copy(ss[k]!.w, plain[k]!.w); copy(ss[k]!.b, plain[k]!.b); }
    plain.embProj.w.assign(tf.zerosLike(plain.embProj.w));
    plain.embProj.b.assign(tf.zerosLike(plain.embProj.b));
    plain.norm2.gamma.assign(tf.tensor1d(s.map((si, i) => g[i] * (1 + si))));
    plain.norm2.beta.assign(tf.tensor1d(s.map((si, i) => be[i] * (1 + si) + b[i])));
    const x = tf.randomNormal([2, 4, 4, 4], 0, 1, 'float32', 9) as tf.Tensor4D;
    const emb = tf.randomNormal([2, 6], 0, 1, 'float32', 10) as tf.Tensor2D;
    resBlock(ss, x, emb).dispose(); // burn-in
    const before = tf.memory().numTensors;
    const yss = resBlock(ss, x, emb);
    expect(tf.memory().numTensors).to.equal(before + 1);
    const yplain = resBlock(plain, x, emb);
    expect(tf.max(tf.abs(tf.sub(yss, yplain))).dataSync()[0]).to.be.below(1e-5);
    // and the embedding acts: a non-zero projection kernel (other s, b per example) changes the output
    ss.embProj.w.assign(tf.randomNormal([6, 16], 0, 0.5, 'float32', 11));
    const y2 = resBlock(ss, x, emb);
    expect(tf.max(tf.abs(tf.sub(y2, yss))).dataSync()[0]).to.be.above(1e-3);
    tf.dispose([x, emb, yss, yplain, y2]);
    store.dispose();
  });

  it('gradients reach every variable (bias and scale-shift embeddings)', () => {
    for (const embedding of ['bias', 'scale-shift'] as const) gradientsReachEveryVariable({ ...TINY, dropout: 0.1, embedding });
  });

  it('same seed → same weights; dropout only when training', () => {
    const a = new UNet({ ...TINY, dropout: 0.5 });
    const b = new UNet({ ...TINY, dropout: 0.5 });
    const x = tf.randomNormal([1, 8, 8, 1], 0, 1, 'float32', 4);
    const t = tf.tensor1d([10], 'int32');
    const ya = a.apply(x, t);
    const yb = b.apply(x, t);
    expect(Array.from(ya.dataSync())).to.deep.equal(Array.from(yb.dataSync()));
    const yt = a.apply(x, t, undefined, { training: true, seed: 3 });
    expect(tf.max(tf.abs(tf.sub(ya, yt))).dataSync()[0]).to.be.greaterThan(1e-5);
    tf.dispose([x, t, ya, yb, yt]);
    a.dispose();
    b.dispose();
  });

  it('rejects bad configs and inputs with named errors', () => {
    expect(() => new UNet({ ...TINY, imageSize: 10, widths: [8, 16, 16] })).to.throw(InvalidArgumentError, /divisible by 2\^\(levels−1\) = 4/);
    expect(() => new UNet({ ...TINY, groups: 3 })).to.throw(InvalidArgumentError, /groups 3 must divide/);
    expect(() => new UNet({ ...TINY, predictionType: 'eps' as never })).to.throw(InvalidArgumentError, /predictionType/);
    expect(() => new UNet({ ...TINY, embedding: 'film' as never })).to.throw(InvalidArgumentError, /embedding must be one of 'bias', 'scale-shift', got "film"/);
    expect(() => createModel({ kind: 'gan' } as never)).to.throw(InvalidArgumentError, /kind must be 'unet' or 'mlp'/);
    const m = new UNet(TINY);
    const x = tf.zeros([2, 8, 8, 1]);
    const t = tf.tensor1d([1, 2], 'int32');
    expect(() => m.apply(tf.zeros([2, 9, 9, 1]), t)).to.throw(ShapeMismatchError, /x must be \[B, 8, 8, 1\]/);
    expect(() => m.apply(x, tf.tensor1d([1], 'int32'))).to.throw(ShapeMismatchError, /t must be \[2\]/);
    const unc = new UNet({ ...TINY, numClasses: 0 });
    expect(() => unc.apply(x, t, tf.tensor1d([1, 2], 'int32'))).to.throw(InvalidArgumentError, /unconditional/);
    tf.dispose([x, t]);
    m.dispose();
    unc.dispose();
  });
});

describe('models: MLP denoiser (2-D)', () => {
  it('shapes, parameter count, gradients to every variable, conditional variant', () => {
    const m = new MlpDenoiser({ kind: 'mlp', dim: 2, hidden: 16, layers: 2, embDim: 8, predictionType: 'epsilon', seed: 0 });
    // time MLP 8→8→8, input 2→16, 2 × (16→16 + 8→16), output 16→2
    const expected = (8 * 8 + 8) * 2 + (2 * 16 + 16) + 2 * (16 * 16 + 16 + 8 * 16 + 16) + (16 * 2 + 2);
    expect(m.paramCount()).to.equal(expected);
    expect(m.summary().reduce((s, r) => s + r.params, 0)).to.equal(expected);
    const x = tf.randomNormal([5, 2], 0, 1, 'float32', 1);
    const t = tf.tensor1d([0, 1, 2, 3, 4], 'int32');
    const y = m.apply(x, t);
    expect(y.shape).to.deep.equal([5, 2]);
    const { value, grads } = tf.variableGrads(() => tf.mean(tf.square(m.apply(x, t))) as tf.Scalar, m.params.variables());
    for (const [name, v] of m.params.entries()) expect(tf.max(tf.abs(grads[v.name])).dataSync()[0], name).to.be.greaterThan(0);
    expect(() => m.apply(tf.zeros([5, 3]), t)).to.throw(ShapeMismatchError, /x must be \[B, 2\]/);
    const mc = new MlpDenoiser({ kind: 'mlp', dim: 2, hidden: 16, layers: 1, embDim: 8, numClasses: 3, predictionType: 'v', seed: 0 });
    const yc = mc.apply(x, t, tf.tensor1d([0, 1, 2, 3, 0], 'int32'));
    expect(yc.shape).to.deep.equal([5, 2]);
    tf.dispose([x, t, y, value, yc, ...Object.values(grads)]);
    m.dispose();
    mc.dispose();
  });
});
