// The course's Conv2DBackpropFilter for webgpu (tiled implicit GEMM, split-K) against tfjs' cpu backend (its own
// kernel, not the course's faster cpu replacement). Runs in the webgpu process (scripts/test.sh); alone:
//   npx mocha test/backend/webgpu-conv-filter.test.ts
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { expectClose, onBackend as runOn, withTfjsCpuKernel } from './compare';
import { countDispatches, errors, normals } from './webgpu-cases';
import { useWebGpu } from './webgpu-setup';
import { chooseSplitK, setSplitK } from '../../lib/backend/kernels/webgpu/index';

type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];
interface Case { x: [number, number, number, number]; f: [number, number]; co: number; stride: number | [number, number]; pad: Pad }

const dyShape = (c: Case): [number, number, number, number] => {
  const info = tf.backend_util.computeConv2DInfo(c.x, [c.f[0], c.f[1], c.x[3], c.co], c.stride, 1,
    c.pad as 'same', undefined, false, 'channelsLast');
  return [c.x[0], info.outHeight, info.outWidth, c.co];
};

/** The kernel itself, as the gradient of conv2d calls it. */
const filterGrad = (c: Case, seed: number) => () => {
  const dys = dyShape(c);
  const x = tf.tensor4d(normals(c.x.reduce((a, b) => a * b), seed), c.x);
  const dy = tf.tensor4d(normals(dys.reduce((a, b) => a * b), seed + 1), dys);
  const pad = Array.isArray(c.pad) ? 'explicit' : c.pad;
  return [tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
    strides: c.stride, pad: Array.isArray(c.pad) ? c.pad : pad, dataFormat: 'NHWC', dimRoundingMode: undefined,
    filterShape: [c.f[0], c.f[1], c.x[3], c.co],
  } as unknown as tf.NamedAttrMap) as tf.Tensor];
};

// strides 1–3, same / valid / explicit pads, filters 1 / 3 / 5 (and a non-square one), batches 1–3, channel counts
// that are not multiples of the 32×32 tiles (and one that spans several tiles)
const cases: Array<[string, Case]> = [
  ['3×3 s1 same, 1→16 (first layer)', { x: [2, 9, 9, 1], f: [3, 3], co: 16, stride: 1, pad: 'same' }],
  ['3×3 s1 same, 5→7', { x: [3, 8, 7, 5], f: [3, 3], co: 7, stride: 1, pad: 'same' }],
  ['3×3 s2 same, 6→33', { x: [3, 17, 16, 6], f: [3, 3], co: 33, stride: 2, pad: 'same' }],
  ['3×3 s3 valid, 4→5', { x: [2, 20, 20, 4], f: [3, 3], co: 5, stride: 3, pad: 'valid' }],
  ['5×5 s1 valid, 3→9', { x: [2, 12, 12, 3], f: [5, 5], co: 9, stride: 1, pad: 'valid' }],
  ['5×5 s2 same, 2→3', { x: [3, 10, 9, 2], f: [5, 5], co: 3, stride: 2, pad: 'same' }],
  ['1×1 s1 valid, 40→24 (skip projection)', { x: [2, 6, 6, 40], f: [1, 1], co: 24, stride: 1, pad: 'valid' }],
  ['1×1 s2 same, 7→65', { x: [2, 13, 13, 7], f: [1, 1], co: 65, stride: 2, pad: 'same' }],
  ['3×3 s1 explicit pads (1,2)/(0,1), 3→6', { x: [2, 7, 8, 3], f: [3, 3], co: 6, stride: 1, pad: [[0, 0], [1, 2], [0, 1], [0, 0]] }],
  ['3×2 s(2,1) explicit pads 2, 4→10', { x: [2, 8, 6, 4], f: [3, 2], co: 10, stride: [2, 1], pad: [[0, 0], [2, 2], [2, 2], [0, 0]] }],
  ['3×3 s1 pad 1 (number), 8→8', { x: [3, 8, 8, 8], f: [3, 3], co: 8, stride: 1, pad: 1 }],
  ['3×3 s1 same, 36→70 (several tiles in M and N)', { x: [2, 7, 7, 36], f: [3, 3], co: 70, stride: 1, pad: 'same' }],
  ['3×3 s1 same, 16→32 at 28×28, batch 3 (many K slices)', { x: [3, 28, 28, 16], f: [3, 3], co: 32, stride: 1, pad: 'same' }],
];

describe('webgpu course kernels: Conv2DBackpropFilter (implicit GEMM, split-K)', function () {
  this.timeout(600000);
  let saved: ReturnType<typeof setSplitK> | undefined;
  useWebGpu();
  afterEach(() => { if (saved) setSplitK(saved.target, saved.minSteps); saved = undefined; });

  for (const [label, c] of cases) {
    // no split; and as many one-step (32) slices as K allows, so that every shape also takes the split-K path
    for (const [target, minSteps] of [[1, 4], [4096, 1]]) {
      const k = dyShape(c)[0] * dyShape(c)[1] * dyShape(c)[2];
      const split = chooseSplitK(c.f[0] * c.f[1] * c.x[3], c.co, k, target, minSteps);
      it(`${label}: equals the cpu backend (K = ${k} in ${split.slices} slice${split.slices > 1 ? 's' : ''})`, async () => {
        saved = setSplitK(target, minSteps);
        const want = await withTfjsCpuKernel('Conv2DBackpropFilter', () => runOn('cpu', filterGrad(c, 3), false));
        const got = await runOn('webgpu', filterGrad(c, 3));
        expect(got.shapes[0]).to.deep.equal(want.shapes[0]);
        expectClose(got.values[0], want.values[0], 'dw', 1e-4, 1e-4);
        const e = errors(got.values[0], want.values[0]);
        if (process.env.DIFFUSION_REPORT_ERRORS) console.log(`      max |Δ| ${e.abs.toExponential(2)}, relative to max |cpu| ${e.rel.toExponential(2)}`);
      });
    }
  }

  it('the split-K choice covers K exactly and gives a large GPU enough workgroups at the reference size', () => {
    for (const [m, n, k] of [[288, 32, 50176], [576, 64, 12544], [1152, 128, 3136], [9, 16, 25], [16, 16, 200704]]) {
      const s = chooseSplitK(m, n, k);
      expect(s.kPerSlice % 32).to.equal(0);
      expect((s.slices - 1) * s.kPerSlice).to.be.lessThan(k);
      expect(s.slices * s.kPerSlice).to.be.at.least(k);
    }
    const ref = chooseSplitK(288, 32, 64 * 28 * 28);
    expect(ref.slices * 9).to.be.at.least(256);
  });

  it('the gradient of conv2d through tf.grads uses it and matches cpu (NHWC, stride 2, same)', async () => {
    const f = () => {
      const x = tf.tensor4d(normals(2 * 8 * 8 * 3, 50), [2, 8, 8, 3]);
      const w = tf.tensor4d(normals(3 * 3 * 3 * 5, 51), [3, 3, 3, 5]);
      const r = tf.tensor4d(normals(2 * 4 * 4 * 5, 52), [2, 4, 4, 5]);
      const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'), r)))([x, w]);
      return [dx, dw];
    };
    const want = await withTfjsCpuKernel('Conv2DBackpropFilter', () => runOn('cpu', f, false));
    const got = await runOn('webgpu', f);
    expectClose(got.values[1], want.values[1], 'dw', 1e-4, 1e-4);
    expectClose(got.values[0], want.values[0], 'dx', 1e-4, 1e-4);
  });

  it('NCHW inputs are transposed and give the same as cpu', async () => {
    const f = () => {
      const x = tf.tensor4d(normals(2 * 3 * 6 * 7, 60), [2, 3, 6, 7]);
      const dy = tf.tensor4d(normals(2 * 4 * 6 * 7, 61), [2, 4, 6, 7]);
      return [tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
        strides: 1, pad: 'same', dataFormat: 'NCHW', filterShape: [3, 3, 3, 4],
      } as unknown as tf.NamedAttrMap) as tf.Tensor];
    };
    const want = await withTfjsCpuKernel('Conv2DBackpropFilter', () => runOn('cpu', f, false));
    const got = await runOn('webgpu', f);
    expectClose(got.values[0], want.values[0], 'dw', 1e-4, 1e-4);
  });

  it('two dispatches with split-K, one without; nothing left behind', async () => {
    await tf.setBackend('webgpu');
    const c = cases[cases.length - 1][1];
    const run = filterGrad(c, 3);
    const warm = tf.tidy(run);
    await warm[0].data();
    tf.dispose(warm);
    const before = { tensors: tf.memory().numTensors, ids: tf.backend().numDataIds() };
    for (const [target, expected] of [[512, 2], [1, 1]]) {
      saved = setSplitK(target);
      const { result, dispatches } = countDispatches(() => tf.tidy(run));
      expect(dispatches, `target ${target}`).to.equal(expected);
      await result[0].data();
      tf.dispose(result);
      setSplitK(saved.target, saved.minSteps);
      saved = undefined;
    }
    expect(tf.memory().numTensors).to.equal(before.tensors);
    expect(tf.backend().numDataIds()).to.equal(before.ids);
  });
});
