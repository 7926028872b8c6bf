import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { loadBlasAddon } from '../../lib/backend/kernels/native-blas';
import { registerWasmKernels } from '../../lib/backend/wasm-kernels';
import { fusedGroupNormAvailable, groupNormComposite, groupNormOp } from '../../lib/nn/group-norm';
import { expectClose } from '../backend/compare';

const rnd = (shape: number[], seed: number, scale = 1, shift = 0) => tf.randomNormal(shape, shift, scale, 'float32', seed);

/** Output and the gradients w.r.t. x, γ, β of Σ f(x)·r (r random, so no error can cancel out). */
function valueAndGrads(f: (x: tf.Tensor4D, g: tf.Tensor, b: tf.Tensor) => tf.Tensor4D, shape: number[], seed: number): Float32Array[] {
  return tf.tidy(() => {
    const c = shape[3];
    // a mean far from 0 and a spread far from 1: the statistics must really be taken per sample and group
    const x = rnd(shape, seed, 3, 2) as tf.Tensor4D;
    const gamma = rnd([c], seed + 1, 0.7, 1);
    const beta = rnd([c], seed + 2, 0.5);
    const r = rnd(shape, seed + 3);
    const y = f(x, gamma, beta);
    const grads = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => f(a as tf.Tensor4D, g, b).mul(r).sum())([x, gamma, beta]);
    return [y, ...grads].map((t) => t.dataSync() as Float32Array);
  });
}

describe('fused group norm (+ SiLU) on the native kernels', () => {
  let previous: string;
  before(async function () {
    if (!loadBlasAddon()) this.skip(); // the composite is what runs then, tested in test/models/nn.test.ts
    previous = tf.getBackend();
    registerWasmKernels();
    await tf.setBackend('wasm');
  });
  after(async () => { if (previous) await tf.setBackend(previous); });

  const cases: Array<[number[], number]> = [[[2, 5, 3, 6], 3], [[3, 7, 7, 16], 8], [[2, 4, 4, 8], 1], [[1, 2, 3, 4], 4]];
  for (const silu of [false, true]) {
    for (const [shape, groups] of cases) {
      it(`${silu ? 'groupNorm+SiLU' : 'groupNorm'} ${JSON.stringify(shape)} in ${groups} groups: output and dx, dγ, dβ equal the composite`, () => {
        expect(fusedGroupNormAvailable()).to.equal(true);
        const fused = valueAndGrads((x, g, b) => groupNormOp(x, g, b, groups, 1e-5, silu), shape, 10);
        const composite = valueAndGrads((x, g, b) => groupNormComposite(x, g, b, groups, 1e-5, silu), shape, 10);
        ['out', 'dx', 'dgamma', 'dbeta'].forEach((name, i) => expectClose(fused[i], composite[i], name, 1e-4, 1e-4));
      });
    }
  }

  it('its gradient matches central finite differences of the fused forward itself', () => {
    // independent of the composite: perturb single inputs and difference the fused kernel's own outputs
    const shape = [2, 3, 3, 4];
    const groups = 2;
    const xs = rnd(shape, 20, 2, 1).dataSync() as Float32Array;
    const gs = Float32Array.from([0.5, 1.5, -1, 2]);
    const bs = Float32Array.from([0.1, -0.2, 0.3, 0]);
    const rs = rnd(shape, 21).dataSync() as Float32Array;
    const loss = (x: Float32Array, g: Float32Array, b: Float32Array) => tf.tidy(() => {
      const y = groupNormOp(tf.tensor4d(x, shape as [number, number, number, number]), tf.tensor1d(g), tf.tensor1d(b), groups, 1e-5, true);
      const v = y.dataSync();
      let s = 0;
      for (let i = 0; i < v.length; i++) s += v[i] * rs[i];
      return s;
    });
    const [dx, dg, db] = tf.tidy(() => tf.grads((x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
      groupNormOp(x as tf.Tensor4D, g, b, groups, 1e-5, true).mul(tf.tensor(rs, shape)).sum())(
      [tf.tensor(xs, shape), tf.tensor1d(gs), tf.tensor1d(bs)]).map((t) => t.dataSync() as Float32Array));
    const h = 1e-2;
    const fd = (arr: Float32Array, i: number, call: (a: Float32Array) => number) => {
      const p = arr.slice(); p[i] += h;
      const m = arr.slice(); m[i] -= h;
      return (call(p) - call(m)) / (2 * h);
    };
    for (const i of [0, 5, 17, 35, 71]) expect(dx[i]).to.be.closeTo(fd(xs, i, (a) => loss(a, gs, bs)), 2e-2);
    for (const i of [0, 1, 2, 3]) {
      expect(dg[i]).to.be.closeTo(fd(gs, i, (a) => loss(xs, a, bs)), 2e-2);
      expect(db[i]).to.be.closeTo(fd(bs, i, (a) => loss(xs, gs, a)), 2e-2);
    }
  });

  it('leaks no tensors, forward or backward', () => {
    const x = rnd([2, 4, 4, 8], 30) as tf.Tensor4D;
    const g = tf.ones([8]);
    const b = tf.zeros([8]);
    const run = () => tf.dispose(tf.grads((a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => groupNormOp(a as tf.Tensor4D, c, d, 4, 1e-5, true).sum())([x, g, b]));
    run();
    const before = tf.memory().numTensors;
    run();
    run();
    expect(tf.memory().numTensors).to.equal(before);
    tf.dispose([x, g, b]);
  });
});
