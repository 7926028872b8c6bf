import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../../lib/errors';
import {
  attention, createAttention, createConv2d, createDense, createGroupNorm, conv2d, dense, dropout, groupNorm, ParamStore,
  sinusoidalEmbedding, silu, upsampleNearest2x,
} from '../../lib/nn';
import { makeRng } from '../../lib/random';

function randomArray(n: number, seed: number): Float32Array {
  const rng = makeRng(seed);
  return Float32Array.from({ length: n }, () => rng() * 4 - 2);
}

describe('nn: layers', () => {
  it('ParamStore: seeded init is reproducible, names unique, counts and shapes reported', () => {
    const a = new ParamStore(7);
    const b = new ParamStore(7);
    const c = new ParamStore(8);
    for (const s of [a, b, c]) createDense(s, 'fc', 3, 4);
    expect(Array.from(a.get('fc.w').dataSync())).to.deep.equal(Array.from(b.get('fc.w').dataSync()));
    expect(Array.from(a.get('fc.w').dataSync())).to.not.deep.equal(Array.from(c.get('fc.w').dataSync()));
    expect(a.count()).to.equal(3 * 4 + 4);
    expect(a.shapes()).to.deep.equal({ 'fc.w': [3, 4], 'fc.b': [4] });
    expect(() => createDense(a, 'fc', 3, 4)).to.throw(InvalidArgumentError, /already exists/);
    expect(() => a.get('nope')).to.throw(InvalidArgumentError, /no parameter named 'nope'/);
    expect(() => a.load({ 'fc.w': new Float32Array(12) })).to.throw(ShapeMismatchError, /missing values for parameter 'fc.b'/);
    for (const s of [a, b, c]) s.dispose();
  });

  it('groupNorm matches a loop over groups (mean 0, variance 1 per sample and group, then γ, β)', () => {
    const store = new ParamStore(0);
    const p = createGroupNorm(store, 'gn', 6, 3);
    tf.tidy(() => {
      p.gamma.assign(tf.tensor1d([1, 2, 3, 0.5, -1, 1]));
      p.beta.assign(tf.tensor1d([0, 0.1, 0.2, 0.3, 0.4, 0.5]));
    });
    const [B, H, W, C, G] = [2, 3, 2, 6, 3];
    const xs = randomArray(B * H * W * C, 1);
    const x = tf.tensor4d(xs, [B, H, W, C]);
    const got = groupNorm(p, x).dataSync();
    const gamma = [1, 2, 3, 0.5, -1, 1];
    const beta = [0, 0.1, 0.2, 0.3, 0.4, 0.5];
    const cg = C / G;
    const idx = (b: number, h: number, w: number, c: number) => ((b * H + h) * W + w) * C + c;
    for (let b = 0; b < B; b++) {
      for (let g = 0; g < G; g++) {
        const vals: number[] = [];
        for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) for (let k = 0; k < cg; k++) vals.push(xs[idx(b, h, w, g * cg + k)]);
        const mean = vals.reduce((s, v) => s + v, 0) / vals.length;
        const variance = vals.reduce((s, v) => s + (v - mean) ** 2, 0) / vals.length;
        for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) for (let k = 0; k < cg; k++) {
          const c = g * cg + k;
          const want = ((xs[idx(b, h, w, c)] - mean) / Math.sqrt(variance + 1e-5)) * gamma[c] + beta[c];
          expect(got[idx(b, h, w, c)]).to.be.closeTo(want, 1e-4);
        }
      }
    }
    x.dispose();
    store.dispose();
    expect(() => createGroupNorm(new ParamStore(0), 'bad', 6, 4)).to.throw(InvalidArgumentError, /6 channels cannot be split into 4 groups/);
  });

  it('sinusoidalEmbedding: sin/cos halves with frequencies 10000^(−i/h)', () => {
    const t = tf.tensor1d([0, 1, 37], 'int32');
    const e = sinusoidalEmbedding(t, 8);
    expect(e.shape).to.deep.equal([3, 8]);
    const v = e.arraySync();
    [0, 1, 37].forEach((tv, r) => {
      for (let i = 0; i < 4; i++) {
        const f = Math.pow(10000, -i / 4);
        expect(v[r][i]).to.be.closeTo(Math.sin(tv * f), 1e-4);
        expect(v[r][4 + i]).to.be.closeTo(Math.cos(tv * f), 1e-4);
      }
    });
    expect(() => sinusoidalEmbedding(t, 7)).to.throw(InvalidArgumentError, /even/);
    tf.dispose([t, e]);
  });

  it('upsampleNearest2x copies each pixel into a 2×2 block', () => {
    const x = tf.tensor4d(randomArray(2 * 3 * 2 * 2, 2), [2, 3, 2, 2]);
    const up = upsampleNearest2x(x);
    expect(up.shape).to.deep.equal([2, 6, 4, 2]);
    const xv = x.arraySync();
    const uv = up.arraySync();
    for (let b = 0; b < 2; b++) for (let i = 0; i < 6; i++) for (let j = 0; j < 4; j++) for (let c = 0; c < 2; c++) {
      expect(uv[b][i][j][c]).to.equal(xv[b][Math.floor(i / 2)][Math.floor(j / 2)][c]);
    }
    tf.dispose([x, up]);
  });

  it('dense and conv2d (+bias) match hand computations; strides halve the size; wrong widths are named', () => {
    const store = new ParamStore(3);
    const d = createDense(store, 'd', 2, 1);
    tf.tidy(() => { d.w.assign(tf.tensor2d([[2], [-1]])); d.b.assign(tf.tensor1d([0.5])); });
    const y = tf.tidy(() => dense(d, tf.tensor2d([[1, 3]])));
    expect(y.dataSync()[0]).to.be.closeTo(2 - 3 + 0.5, 1e-6);
    const c = createConv2d(store, 'c', 1, 1, 3, 2);
    tf.tidy(() => { c.w.assign(tf.ones([3, 3, 1, 1])); c.b.assign(tf.tensor1d([1])); });
    const out = tf.tidy(() => conv2d(c, tf.ones([1, 28, 28, 1])));
    expect(out.shape).to.deep.equal([1, 14, 14, 1]);
    // an interior output sums a full 3×3 window of ones, plus the bias
    expect(out.arraySync()[0][5][5][0]).to.be.closeTo(10, 1e-5);
    expect(() => tf.tidy(() => conv2d(c, tf.ones([1, 4, 4, 2])))).to.throw(ShapeMismatchError, /2 channels, expected 1/);
    tf.dispose([y, out]);
    store.dispose();
  });

  it('silu is x·σ(x); dropout keeps the mean and is reproducible from its seed', () => {
    const x = tf.tensor1d([-2, 0, 3]);
    const s = silu(x).dataSync();
    [-2, 0, 3].forEach((v, i) => expect(s[i]).to.be.closeTo(v / (1 + Math.exp(-v)), 1e-6));
    const ones = tf.ones([5000]);
    const a = dropout(ones, 0.25, 11);
    const b = dropout(ones, 0.25, 11);
    expect(Array.from(a.dataSync())).to.deep.equal(Array.from(b.dataSync()));
    expect(tf.mean(a).dataSync()[0]).to.be.closeTo(1, 0.04); // ≈ 5 standard deviations
    const kept = Array.from(a.dataSync()).filter((v) => v > 0);
    kept.forEach((v) => expect(v).to.be.closeTo(1 / 0.75, 1e-6));
    expect(() => dropout(ones, 1, 0)).to.throw(InvalidArgumentError);
    tf.dispose([x, ones, a, b]);
  });

  it('attention: residual output of the input shape; uniform weights when q·k is constant', () => {
    const store = new ParamStore(4);
    const p = createAttention(store, 'attn', 4, 2);
    const x = tf.tensor4d(randomArray(2 * 3 * 3 * 4, 5), [2, 3, 3, 4]);
    const y = attention(p, x);
    expect(y.shape).to.deep.equal(x.shape);
    // zero q/k weights → softmax is uniform → every position gets x + proj(mean over positions of v)
    tf.tidy(() => p.qkv.w.assign(tf.concat([tf.zeros([4, 8]), tf.randomNormal([4, 4], 0, 1, 'float32', 1)], 1)));
    const z = tf.tidy(() => tf.sub(attention(p, x), x));
    const zv = z.arraySync() as number[][][][];
    for (let b = 0; b < 2; b++) for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
      for (let c = 0; c < 4; c++) expect(zv[b][i][j][c]).to.be.closeTo(zv[b][0][0][c], 1e-5);
    }
    tf.dispose([x, y, z]);
    store.dispose();
  });
});
