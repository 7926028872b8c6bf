/**
 * Every op family the course's U-Net uses, on webgpu (llvmpipe when there is no GPU) against the cpu backend, forward
 * and gradient, with the course's AddN registered. Small shapes: llvmpipe is slow.
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { groupNormComposite } from '../../lib/nn/group-norm';
import { addNInputsPerShader } from '../../lib/backend/kernels/add-n-webgpu';
import { webGpuKernelsRegistered } from '../../lib/backend/webgpu-kernels';
import { REQUESTED_LIMITS } from '../../lib/backend/webgpu';
import { onBackend } from './compare';
import { WebGpuError } from '../../lib/errors';
import { errors, expectWebGpuMatchesCpu, printErrorTable, secondWebGpuBackend, useWebGpu } from './webgpu-setup';

const rnd = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);

/** y = op(x, w) and the gradients of Σ y·r w.r.t. every input (a random r: a wrong index cannot cancel out). */
function withGrads(inputs: () => tf.Tensor[], op: (...xs: tf.Tensor[]) => tf.Tensor): () => tf.Tensor[] {
  return () => {
    const xs = inputs();
    const y = op(...xs);
    const r = rnd(y.shape, 99);
    const grads = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(op(...a), r)))(xs);
    return [y, ...grads];
  };
}

describe('webgpu: the U-Net\'s op families against the cpu backend', function () {
  this.timeout(300000);
  const gpu = useWebGpu();
  // tfjs computes small ops whose inputs are still in JS memory on the CPU (WEBGPU_CPU_FORWARD): off here, so that
  // every op below runs its WGSL kernel. (The U-Net test keeps tfjs' default.)
  let cpuForward: boolean;
  before(() => {
    cpuForward = tf.env().getBool('WEBGPU_CPU_FORWARD');
    tf.env().set('WEBGPU_CPU_FORWARD', false);
  });
  after(() => {
    tf.env().set('WEBGPU_CPU_FORWARD', cpuForward);
    printErrorTable('webgpu vs cpu, worst error per op family (forward and gradients):');
  });

  it('starts with the course kernels registered and the adapter\'s storage-buffer limit', () => {
    expect(webGpuKernelsRegistered()).to.include('AddN');
    expect(tf.getBackend()).to.equal('webgpu');
    const limit = gpu.started.device.limits.maxStorageBuffersPerShaderStage!;
    expect(limit).to.be.at.least(8);
    expect(addNInputsPerShader(gpu.started.backend)).to.equal(limit - 1);
  });

  const convCases: Array<[string, number[], number[], number, 'same' | 'valid']> = [
    ['conv 3×3 stride 1 same', [2, 8, 8, 4], [3, 3, 4, 6], 1, 'same'],
    ['conv 1×1 (ResBlock skip)', [2, 7, 7, 6], [1, 1, 6, 4], 1, 'same'],
    ['conv 3×3 stride 2 same (even)', [2, 8, 8, 4], [3, 3, 4, 5], 2, 'same'],
    ['conv 3×3 stride 2 same (odd, 7 → 4)', [2, 7, 7, 4], [3, 3, 4, 5], 2, 'same'],
    ['conv 3×3 valid', [1, 6, 6, 3], [3, 3, 3, 2], 1, 'valid'],
  ];
  for (const [label, xs, ws, stride, pad] of convCases) {
    it(`${label}: y, dx, dw`, async () => {
      await expectWebGpuMatchesCpu('conv2d (+ dx, dw)', label, withGrads(
        () => [rnd(xs, 1), rnd(ws, 2)],
        (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, stride, pad)));
    });
  }

  it('fused conv2d + bias (lib\'s conv layer), 3×3 and stride 2: y, dx, dw, db', async () => {
    for (const [xs, ws, stride] of [[[2, 8, 8, 4], [3, 3, 4, 8], 1], [[2, 14, 14, 8], [3, 3, 8, 8], 2]] as Array<[number[], number[], number]>) {
      await expectWebGpuMatchesCpu('fused conv2d + bias (+ grads)', `fused ${xs} stride ${stride}`, withGrads(
        () => [rnd(xs, 3), rnd(ws, 4), rnd([ws[3]], 5)],
        (x, w, b) => tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: stride, pad: 'same', bias: b })));
    }
  });

  it('nearest resize ×2 (both pixel-centre conventions) + gradient, and lib\'s concat-based upsampling', async () => {
    for (const halfPixelCenters of [false, true]) {
      await expectWebGpuMatchesCpu('nearest resize ×2 (+ grad)', `resize half-pixel ${halfPixelCenters}`, withGrads(
        () => [rnd([2, 7, 7, 3], 6)],
        (x) => tf.image.resizeNearestNeighbor(x as tf.Tensor4D, [14, 14], false, halfPixelCenters)));
    }
    await expectWebGpuMatchesCpu('nearest resize ×2 (+ grad)', 'concat + reshape upsampling', withGrads(
      () => [rnd([2, 7, 7, 3], 6)],
      (x) => {
        const [b, h, w, c] = x.shape;
        const wide = tf.reshape(tf.concat([x, x], 3), [b, h, 2 * w, c]);
        return tf.reshape(tf.concat([wide, wide], 2), [b, 2 * h, 2 * w, c]);
      }));
  });

  it('batched matmul (attention: q·kᵀ, weights·v) and 2-D matmul (dense) + gradients', async () => {
    await expectWebGpuMatchesCpu('matmul (+ grads)', 'batched q·kᵀ', withGrads(
      () => [rnd([2, 49, 16], 7), rnd([2, 49, 16], 8)], (q, k) => tf.matMul(q, k, false, true)));
    await expectWebGpuMatchesCpu('matmul (+ grads)', 'batched w·v', withGrads(
      () => [rnd([2, 49, 49], 9), rnd([2, 49, 16], 10)], (w, v) => tf.matMul(w, v)));
    await expectWebGpuMatchesCpu('matmul (+ grads)', 'dense', withGrads(
      () => [rnd([6, 32], 11), rnd([32, 128], 12)], (x, w) => tf.matMul(x, w)));
  });

  it('softmax over the last axis + gradient', async () => {
    await expectWebGpuMatchesCpu('softmax (+ grad)', 'softmax', withGrads(() => [tf.mul(rnd([2, 49, 49], 13), 3)], (x) => tf.softmax(x)));
  });

  it('moments over (H·W, C/G) as in GroupNorm, and lib\'s GroupNorm(+SiLU) composite + gradients', async () => {
    await expectWebGpuMatchesCpu('moments, GroupNorm (+ grads)', 'moments', withGrads(
      () => [rnd([2, 49, 4, 4], 14)],
      (x) => {
        const { mean, variance } = tf.moments(x, [1, 3], true);
        return tf.add(tf.mul(mean, 2), variance);
      }));
    for (const silu of [false, true]) {
      await expectWebGpuMatchesCpu('moments, GroupNorm (+ grads)', `group norm silu=${silu}`, withGrads(
        () => [rnd([2, 7, 7, 16], 15), tf.add(rnd([16], 16), 1), rnd([16], 17)],
        (x, g, b) => groupNormComposite(x as tf.Tensor4D, g, b, 4, 1e-5, silu)));
    }
  });

  it('concat along channels and width (U-Net skips), and of 1 … 40 inputs (Concat splits at the storage-buffer limit)', async () => {
    await expectWebGpuMatchesCpu('concat (+ grad)', 'skip concat', withGrads(
      () => [rnd([2, 7, 7, 8], 18), rnd([2, 7, 7, 16], 19)], (a, b) => tf.concat([a, b], 3)));
    await expectWebGpuMatchesCpu('concat (+ grad)', 'width concat', withGrads(
      () => [rnd([2, 7, 7, 8], 18), rnd([2, 7, 7, 8], 19)], (a, b) => tf.concat([a, b], 2)));
    for (const n of [1, 2, 7, 8, 15, 16, 17, 31, 40]) {
      await expectWebGpuMatchesCpu('concat (+ grad)', `concat of ${n}`, withGrads(
        () => Array.from({ length: n }, (_, i) => rnd([3, 5], 100 + i)), (...xs) => tf.concat(xs, 1)));
    }
  });

  it('gather rows (embedding lookup) + its gradient (UnsortedSegmentSum), with repeated indices', async () => {
    await expectWebGpuMatchesCpu('gather (+ grad: UnsortedSegmentSum)', 'gather', () => {
      const table = rnd([11, 16], 20);
      const idx = tf.tensor1d([3, 10, 3, 0, 7, 3], 'int32');
      const r = rnd([6, 16], 21);
      const [g] = tf.grads((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, idx), r)))([table]);
      return [tf.gather(table, idx), g];
    });
    await expectWebGpuMatchesCpu('gather (+ grad: UnsortedSegmentSum)', 'unsortedSegmentSum', () => [
      tf.unsortedSegmentSum(rnd([8, 5], 22), tf.tensor1d([0, 2, 2, 1, 4, 0, 2, 3], 'int32'), 5),
    ]);
  });

  it('sin / cos of the timestep embedding\'s arguments (t up to 999) + gradient', async () => {
    await expectWebGpuMatchesCpu('sin, cos (+ grad)', 'sin/cos', withGrads(
      () => [tf.mul(tf.tensor2d([0, 1, 17, 250, 511, 999], [6, 1]), tf.tensor2d(Float32Array.from({ length: 16 }, (_, i) => Math.exp(-Math.log(10000) * i / 16)), [1, 16]))],
      (a) => tf.concat([tf.sin(a), tf.cos(a)], 1)), 2e-4, 1e-4);
  });

  it('x·sigmoid(x) (SiLU) + gradient', async () => {
    await expectWebGpuMatchesCpu('x·sigmoid(x) (+ grad)', 'silu', withGrads(() => [tf.mul(rnd([2, 7, 7, 16], 23), 4)], (x) => tf.mul(x, tf.sigmoid(x))));
  });

  it('addN of 1 … 40 inputs equals the cpu sum (tfjs\' own fails above the storage-buffer limit) and leaks nothing', async () => {
    for (let n = 1; n <= 40; n++) {
      await expectWebGpuMatchesCpu('addN (course kernel, chunked)', `addN of ${n}`, () => [
        tf.addN(Array.from({ length: n }, (_, i) => rnd([3, 4], 200 + i))),
      ]);
    }
    // as lib/train/adam.ts uses it: the global norm of many gradients
    await expectWebGpuMatchesCpu('addN (course kernel, chunked)', 'global norm of 30', () => [
      tf.sqrt(tf.addN(Array.from({ length: 30 }, (_, i) => tf.sum(tf.square(rnd([5, 3], 300 + i)))))),
    ]);
    await tf.setBackend('webgpu');
    const before = { tensors: tf.memory().numTensors, ids: tf.backend().numDataIds() };
    const xs = Array.from({ length: 40 }, (_, i) => tf.fill([4], i + 1));
    const s = tf.addN(xs);
    expect(Array.from(await s.data())).to.deep.equal([820, 820, 820, 820]);
    tf.dispose([s, ...xs]);
    expect({ tensors: tf.memory().numTensors, ids: tf.backend().numDataIds() }).to.deep.equal(before);
  });

  it('reads with await data(); dataSync of a GPU result is a named error, not "OffscreenCanvas is not defined"', async () => {
    await tf.setBackend('webgpu');
    const x = tf.tensor1d([1, 2, 3]);
    expect(Array.from(x.dataSync()), 'values still in JS memory read synchronously').to.deep.equal([1, 2, 3]);
    const y = tf.mul(x, 2); // on the GPU (CPU forwarding is off in this suite)
    expect(() => y.dataSync()).to.throw(/await tensor\.data\(\)/);
    expect(Array.from(await y.data())).to.deep.equal([2, 4, 6]);
    expect(Array.from(y.dataSync()), 'after an async read the values are cached').to.deep.equal([2, 4, 6]);
    tf.dispose([x, y]);
    const { values } = await onBackend('webgpu', () => [tf.range(0, 5)]);
    expect(Array.from(values[0])).to.deep.equal([0, 1, 2, 3, 4]);
  });

  it('with WebGPU\'s default limits, and with only the six tfjs\' own factory requests: each family throws a WebGpuError or matches cpu (list printed)', async () => {
    const cases: Array<[string, () => tf.Tensor[]]> = [
      ['conv 3×3 + dx, dw', withGrads(() => [rnd([2, 8, 8, 4], 1), rnd([3, 3, 4, 6], 2)], (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'))],
      ['fused conv2d + bias + grads', withGrads(() => [rnd([2, 8, 8, 4], 3), rnd([3, 3, 4, 8], 4), rnd([8], 5)],
        (x, w, b) => tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: 1, pad: 'same', bias: b }))],
      ['fused matMul + bias + relu', () => [tf.fused.matMul({ a: rnd([6, 32], 11), b: rnd([32, 16], 12), bias: rnd([16], 13), activation: 'relu' })]],
      ['batchNorm (5 inputs)', () => [tf.batchNorm(rnd([2, 4, 4, 8], 6), rnd([8], 7), tf.add(tf.abs(rnd([8], 8)), 1), rnd([8], 9), rnd([8], 10))]],
      ['nearest resize + grad', withGrads(() => [rnd([2, 7, 7, 3], 6)], (x) => tf.image.resizeNearestNeighbor(x as tf.Tensor4D, [14, 14]))],
      ['batched matmul + grads', withGrads(() => [rnd([2, 49, 16], 7), rnd([2, 49, 16], 8)], (q, k) => tf.matMul(q, k, false, true))],
      ['softmax + grad', withGrads(() => [rnd([2, 49, 49], 13)], (x) => tf.softmax(x))],
      ['GroupNorm+SiLU composite + grads', withGrads(() => [rnd([2, 7, 7, 16], 15), tf.add(rnd([16], 16), 1), rnd([16], 17)],
        (x, g, b) => groupNormComposite(x as tf.Tensor4D, g, b, 4, 1e-5, true))],
      ['concat of 12 + grad', withGrads(() => Array.from({ length: 12 }, (_, i) => rnd([3, 5], 100 + i)), (...xs) => tf.concat(xs, 1))],
      ['gather + grad', withGrads(() => [rnd([11, 16], 20)], (t) => tf.gather(t, tf.tensor1d([3, 10, 3, 0], 'int32')))],
      ['addN of 12 (course kernel)', () => [tf.addN(Array.from({ length: 12 }, (_, i) => rnd([3, 4], 200 + i)))]],
    ];
    const adapterLimits = gpu.started.chosen.adapter.limits;
    const tfjsOwn: Record<string, number> = {};
    for (const k of REQUESTED_LIMITS.slice(0, 6)) tfjsOwn[k] = adapterLimits[k]!;
    const mode = gpu.started.chosen.compatibility ? ' (compatibility mode)' : '';
    for (const [title, limits] of [[`WebGPU's default limits${mode}`, undefined], [`only the limits tfjs' own factory requests${mode}`, tfjsOwn]] as const) {
      const second = await secondWebGpuBackend('webgpu-other-limits', limits);
      const lines: string[] = [];
      try {
        for (const [label, f] of cases) {
          const want = await onBackend('cpu', f);
          await tf.setBackend(second.name);
          let outs: tf.Tensor[] = [];
          try {
            outs = tf.tidy(f);
            const got = await Promise.all(outs.map((t) => t.data()));
            const worst = Math.max(...got.map((g, i) => errors(g, want.values[i]).rel));
            expect(worst, `${label} with ${title}`).to.be.at.most(1e-4);
            lines.push(`        ${label.padEnd(34)} runs`);
          } catch (err) {
            if (!(err instanceof WebGpuError)) throw err; // anything but a named WebGPU error is a bug
            lines.push(`        ${label.padEnd(34)} STOPPED: ${err.message.replace(/^WebGPU validation error in /, '').slice(0, 120)}…`);
          } finally {
            tf.dispose(outs);
          }
        }
      } finally {
        await tf.setBackend('webgpu');
        second.dispose();
      }
      const l = second.device.limits;
      console.log(`      With ${title}: ${l.maxStorageBuffersPerShaderStage} storage buffers per shader, workgroups of at most `
        + `${l.maxComputeInvocationsPerWorkgroup} invocations, ${l.maxComputeWorkgroupSizeX}×${l.maxComputeWorkgroupSizeY}×${l.maxComputeWorkgroupSizeZ} `
        + `(lib requests the adapter's ${adapterLimits.maxStorageBuffersPerShaderStage}, ${adapterLimits.maxComputeInvocationsPerWorkgroup}, `
        + `${adapterLimits.maxComputeWorkgroupSizeX}×${adapterLimits.maxComputeWorkgroupSizeY}×${adapterLimits.maxComputeWorkgroupSizeZ}):`);
      for (const line of lines) console.log(line);
    }
  });
});
