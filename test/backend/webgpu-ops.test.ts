/**
 * Every op family the course's U-Net uses, on webgpu (llvmpipe when there is no GPU) against the cpu backend, forward
 * and gradient, with the course's AddN registered (cases: ./webgpu-cases.ts). Also: what other device limits would stop.
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { WebGpuError } from '../../lib/errors';
import { addNInputsPerShader } from '../../lib/backend/kernels/add-n-webgpu';
import { defaultLoaders, selectBackend } from '../../lib/backend';
import { describeAdapter, REQUESTED_LIMITS } from '../../lib/backend/webgpu';
import { useTfjsWebGpuKernels, webGpuCourseKernelNames, webGpuKernelsRegistered, webgpuOriginals } from '../../lib/backend/webgpu-kernels';
import { webgpuKernelConfigs } from '../../lib/backend/kernels/webgpu/index';
import { onBackend } from './compare';
import { errors, oneCasePerFamily, opCases, rnd, type OpCase } from './webgpu-cases';
import { expectWebGpuMatchesCpu, printErrorTable, secondWebGpuBackend, useWebGpu } from './webgpu-setup';

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

  it('lib\'s selection, forced, reports the adapter and the Dawn backend; unforced it refuses a CPU adapter', async () => {
    const r = await selectBackend(defaultLoaders(), { DIFFUSION_BACKEND: 'webgpu' });
    expect(r.name).to.equal('webgpu');
    expect(r.line).to.match(/^\[diffusion\] backend: webgpu \(.+; Dawn (Vulkan|OpenGL, compatibility mode|)\b.*course kernels: AddN.*\) — forced by DIFFUSION_BACKEND=webgpu$/);
    expect(r.line).to.include(describeAdapter(gpu.started.chosen.adapter.info));
    if (gpu.started.chosen.cpuReason) {
      expect(r.line).to.include('CPU adapter');
      const err = await defaultLoaders().webgpu({ forced: false }).then(() => undefined, (e: Error) => e);
      expect(err?.message).to.match(/^CPU adapter only: /);
    }
    await tf.setBackend('webgpu');
  });

  it('starts with the course kernels registered and the adapter\'s storage-buffer limit', () => {
    expect(webGpuKernelsRegistered()).to.include('AddN');
    // the hook for the course's WGSL kernels: every config in lib/backend/kernels/webgpu/index.ts is the one registered
    for (const c of webgpuKernelConfigs) expect(tf.getKernel(c.kernelName, 'webgpu')?.kernelFunc, c.kernelName).to.equal(c.kernelFunc);
    expect(webGpuKernelsRegistered()).to.include.members(webgpuKernelConfigs.map((c) => c.kernelName));
    expect(tf.getBackend()).to.equal('webgpu');
    const limit = gpu.started.device.limits.maxStorageBuffersPerShaderStage!;
    expect(limit).to.be.at.least(8);
    expect(addNInputsPerShader(gpu.started.backend)).to.equal(limit - 1);
  });

  it('the one registry swaps tfjs\' originals in and the course kernels back (course-only kernels are removed meanwhile)', () => {
    const ours = new Map(webGpuCourseKernelNames().map((n) => [n, tf.getKernel(n, 'webgpu')?.kernelFunc]));
    const restore = useTfjsWebGpuKernels(['AddN', 'Conv2DBackpropFilter', 'CourseAdamUpdate']);
    try {
      expect(tf.getKernel('AddN', 'webgpu')?.kernelFunc).to.equal(webgpuOriginals.get('AddN')?.kernelFunc).and.not.equal(ours.get('AddN'));
      expect(tf.getKernel('Conv2DBackpropFilter', 'webgpu')?.kernelFunc).to.equal(webgpuOriginals.get('Conv2DBackpropFilter')?.kernelFunc)
        .and.not.equal(ours.get('Conv2DBackpropFilter'));
      expect(tf.getKernel('CourseAdamUpdate', 'webgpu'), 'tfjs has no fused Adam').to.equal(undefined);
      expect(tf.getKernel('CourseGroupNorm', 'webgpu')?.kernelFunc, 'not named: untouched').to.equal(ours.get('CourseGroupNorm'));
      expect(webGpuKernelsRegistered()).to.not.include.members(['AddN', 'Conv2DBackpropFilter', 'CourseAdamUpdate']);
    } finally {
      restore();
    }
    for (const [name, f] of ours) expect(tf.getKernel(name, 'webgpu')?.kernelFunc, name).to.equal(f);
  });

  // One test per op family; the cases (shapes, seeds, tolerances) are shared with scripts/gpu-check.ts.
  const families = new Map<string, OpCase[]>();
  for (const c of opCases()) families.set(c.family, [...(families.get(c.family) ?? []), c]);
  for (const [family, cases] of families) {
    it(`${family}: ${cases.map((c) => c.label).slice(0, 6).join('; ')}${cases.length > 6 ? ` … (${cases.length} cases)` : ''}`, async () => {
      for (const c of cases) await expectWebGpuMatchesCpu(c.family, c.label, c.f, c.atol, c.rtol);
    });
  }

  it('addN of 40 inputs (over the storage-buffer limit) leaves no tensor or GPU buffer behind', async () => {
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
      ...oneCasePerFamily().map((c): [string, () => tf.Tensor[]] => [c.family, c.f]),
      ['fused matMul + bias + relu', () => [tf.fused.matMul({ a: rnd([6, 32], 11), b: rnd([32, 16], 12), bias: rnd([16], 13), activation: 'relu' })]],
      ['batchNorm (5 inputs)', () => [tf.batchNorm(rnd([2, 4, 4, 8], 6), rnd([8], 7), tf.add(tf.abs(rnd([8], 8)), 1), rnd([8], 9), rnd([8], 10))]],
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
            lines.push(`        ${label.padEnd(38)} runs`);
          } catch (err) {
            if (!(err instanceof WebGpuError)) throw err; // anything but a named WebGPU error is a bug
            lines.push(`        ${label.padEnd(38)} STOPPED: ${err.message.replace(/^WebGPU validation error in /, '').slice(0, 120)}…`);
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
