// Fused GroupNorm(+SiLU) on webgpu: lib/nn/group-norm.ts's groupNormOp (which picks the fused kernel once it is
// registered for the backend) against groupNormComposite on tfjs' cpu backend — output, dx, dγ, dβ. Runs in the webgpu
// process (scripts/test.sh); alone: npx mocha test/backend/webgpu-group-norm.test.ts
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { expectClose, onBackend as runOn } from './compare';
import { countDispatches, errors, normals } from './webgpu-cases';
import { useWebGpu } from './webgpu-setup';
import { fusedGroupNormAvailable, groupNormComposite, groupNormOp } from '../../lib/nn/group-norm';

type GN = (x: tf.Tensor4D, g: tf.Tensor, b: tf.Tensor) => tf.Tensor4D;

/** Output and the gradients w.r.t. x, γ, β of Σ f(x)·r (r random, so that no error cancels out). */
const valueAndGrads = (f: GN, shape: [number, number, number, number], seed: number) => () => {
  const n = shape.reduce((a, b) => a * b);
  const c = shape[3];
  // a mean far from 0 and a spread far from 1: the statistics must really be taken per sample and group
  const x = tf.tensor4d(normals(n, seed, 3, 2), shape);
  const gamma = tf.tensor1d(normals(c, seed + 1, 0.7, 1));
  const beta = tf.tensor1d(normals(c, seed + 2, 0.5));
  const r = tf.tensor4d(normals(n, seed + 3), shape);
  const y = f(x, gamma, beta);
  const grads = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f(a as tf.Tensor4D, g, b), r)))([x, gamma, beta]);
  return [y, ...grads];
};

describe('webgpu course kernels: fused GroupNorm (+ SiLU)', function () {
  this.timeout(600000);
  useWebGpu();

  const cases: Array<[[number, number, number, number], number]> = [
    [[2, 5, 3, 6], 3], [[3, 7, 7, 16], 8], [[2, 4, 4, 8], 1], [[1, 2, 3, 4], 4],
    [[2, 7, 7, 96], 8], // 12 channels per group (a concat width)
    [[4, 28, 28, 32], 8], // the U-Net's first level: more pixels than threads
  ];
  for (const silu of [false, true]) {
    for (const [shape, groups] of cases) {
      it(`${silu ? 'GroupNorm+SiLU' : 'GroupNorm'} ${JSON.stringify(shape)} in ${groups} groups: y, dx, dγ, dβ equal the composite on cpu`, async () => {
        const want = await runOn('cpu', valueAndGrads((x, g, b) => groupNormComposite(x, g, b, groups, 1e-5, silu), shape, 10));
        await tf.setBackend('webgpu');
        expect(fusedGroupNormAvailable()).to.equal(true);
        const got = await runOn('webgpu', valueAndGrads((x, g, b) => groupNormOp(x, g, b, groups, 1e-5, silu), shape, 10));
        ['y', 'dx', 'dgamma', 'dbeta'].forEach((name, i) => {
          expect(got.shapes[i], name).to.deep.equal(want.shapes[i]);
          // dγ, dβ are sums over B·H·W terms: compare relative to their scale
          const scale = name.startsWith('d') && name !== 'dx' ? Math.sqrt(shape[0] * shape[1] * shape[2]) : 1;
          expectClose(got.values[i], want.values[i], name, 1e-4 * scale, 1e-4);
          const e = errors(got.values[i], want.values[i]);
          if (process.env.DIFFUSION_REPORT_ERRORS) console.log(`      ${name}: max |Δ| ${e.abs.toExponential(2)}, relative ${e.rel.toExponential(2)}`);
        });
      });
    }
  }

  it('one dispatch forward, two for the gradient; nothing left behind', async () => {
    await tf.setBackend('webgpu');
    const shape: [number, number, number, number] = [2, 8, 8, 16];
    const x = tf.tensor4d(normals(2 * 8 * 8 * 16, 1), shape);
    const g = tf.ones([16]);
    const b = tf.zeros([16]);
    const dy = tf.tensor4d(normals(2 * 8 * 8 * 16, 2), shape);
    const grad = (f: GN) => tf.grad((a: tf.Tensor) => f(a as tf.Tensor4D, g, b));
    const fused: GN = (a, gg, bb) => groupNormOp(a, gg, bb, 8, 1e-5, true);
    const warm = [fused(x, g, b), grad(fused)(x, dy)];
    await Promise.all(warm.map((t) => t.data()));
    tf.dispose(warm);
    const before = { tensors: tf.memory().numTensors, ids: tf.backend().numDataIds() };
    const fwd = countDispatches(() => fused(x, g, b));
    expect(fwd.dispatches).to.equal(1);
    const bwd = countDispatches(() => grad(fused)(x, dy));
    // tf.grad also runs the forward (1) and the gradient kernel (2); nothing else may dispatch
    expect(bwd.dispatches).to.equal(3);
    await Promise.all([fwd.result.data(), bwd.result.data()]);
    tf.dispose([fwd.result, bwd.result]);
    expect(tf.memory().numTensors).to.equal(before.tensors);
    expect(tf.backend().numDataIds()).to.equal(before.ids);
    const composite: GN = (a, gg, bb) => groupNormComposite(a, gg, bb, 8, 1e-5, true);
    const cf = countDispatches(() => composite(x, g, b));
    const cb = countDispatches(() => grad(composite)(x, dy));
    if (process.env.DIFFUSION_REPORT_ERRORS) {
      console.log(`      dispatches: fused forward ${fwd.dispatches}, forward+gradient ${bwd.dispatches}; composite ${cf.dispatches}, ${cb.dispatches}`);
    }
    tf.dispose([cf.result, cb.result, x, g, b, dy]);
  });
});
