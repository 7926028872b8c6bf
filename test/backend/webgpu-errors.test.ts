/**
 * WebGPU errors become thrown WebGpuErrors (lib/backend/webgpu-guard.ts), provoked for real on the device (tfjs' own
 * AddN over the storage-buffer limit, a WGSL kernel that does not compile, a destroyed device), plus the guard's
 * bookkeeping on a fake device (out-of-memory, errors that arrive between calls, device loss).
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { WebGpuError } from '../../lib/errors';
import { UNet, type UNetConfig } from '../../lib/models';
import { WebGpuGuard } from '../../lib/backend/webgpu-guard';
import { useTfjsWebGpuKernels } from '../../lib/backend/webgpu-kernels';
import type { DataId, GpuDeviceLike, GpuDeviceLostInfoLike, GpuErrorLike, TensorInfoLike, WebGpuBackendLike } from '../../lib/backend/webgpu-types';
import { expectClose, onBackend } from './compare';
import { secondWebGpuBackend, useWebGpu } from './webgpu-setup';

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the promise to reject');
}

function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected it to throw');
}

/** A WGSL kernel with a compile error, in tfjs' program format (as a course kernel with a bug would be). */
function brokenProgram(shape: number[]) {
  const { webgpu_util: util } = require('@tensorflow/tfjs-backend-webgpu') as {
    webgpu_util: { flatDispatchLayout(s: number[]): { x: number[] }; computeDispatch(l: object, s: number[], w: number[]): number[] };
  };
  const workgroupSize: [number, number, number] = [64, 1, 1];
  const dispatchLayout = util.flatDispatchLayout(shape);
  return new (class CourseTestBrokenProgram {
    variableNames = ['x'];
    outputShape = shape;
    workgroupSize = workgroupSize;
    dispatchLayout = dispatchLayout;
    dispatch = util.computeDispatch(dispatchLayout, shape, workgroupSize);
    size = true;
    shaderKey = 'courseTestBroken';
    getUserCode() { return 'fn main(index : i32) { let y = notDefinedAnywhere + 1.0; }'; }
  })();
}

// A tiny conditional U-Net with every layer kind (as in test/models/unet.test.ts).
const TINY: UNetConfig = {
  kind: 'unet', imageSize: 8, channels: 1, widths: [8, 16], blocksPerLevel: 1, attentionResolutions: [4], groups: 4,
  embDim: 16, timeSinDim: 8, midBlocks: 1, numClasses: 10, dropout: 0, predictionType: 'epsilon', seed: 1,
};

describe('webgpu: errors are thrown, never silent (real device)', function () {
  this.timeout(300000);
  const gpu = useWebGpu();
  let cpuForward: boolean;
  before(() => {
    cpuForward = tf.env().getBool('WEBGPU_CPU_FORWARD');
    tf.env().set('WEBGPU_CPU_FORWARD', false); // every op on the GPU, so that they share command buffers
  });
  after(() => tf.env().set('WEBGPU_CPU_FORWARD', cpuForward));

  it('tfjs\' own AddN over the storage-buffer limit: a WebGpuError from that op; results recorded with it throw when read or used; later ops are right', async () => {
    await tf.setBackend('webgpu');
    const limit = gpu.started.device.limits.maxStorageBuffersPerShaderStage!;
    const n = limit + 2;
    const xs = Array.from({ length: n }, (_, i) => tf.fill([4], i + 1));
    const base = tf.tensor1d([1, 2, 3, 4]);
    // Submit whatever was queued (what follows shares one command buffer), and leave two 16-byte buffers in tfjs'
    // pool: reusing one, the upload of `fresh` below goes through a staging copy queued in that command buffer.
    const flushed = [tf.add(base, 0), tf.add(base, 1)];
    for (const t of flushed) await t.data();
    tf.dispose(flushed);
    const fresh = tf.tensor1d([5, 6, 7, 8]);
    const alsoBefore = tf.mul(fresh, 2);
    const before = tf.add(base, 10); // recorded, not yet submitted
    const restore = useTfjsWebGpuKernels(['AddN']); // tfjs' own AddN, from lib's registry
    let err: Error;
    try {
      err = thrown(() => tf.addN(xs));
    } finally {
      restore();
    }
    expect(err).to.be.instanceOf(WebGpuError);
    expect((err as WebGpuError).kind).to.equal('validation');
    expect(err.message).to.match(/WebGPU validation error in AddNPackedProgram: The number of storage buffers \(\d+\) in the Compute stage exceeds the maximum per-stage limit/);
    expect(err.message).to.match(/other results? (was|were) recorded in the same command buffer and (is|are) lost/);
    console.log(`      thrown: ${err.message.slice(0, 240)}…`);

    const lost = await rejection(before.data());
    expect(lost).to.be.instanceOf(WebGpuError);
    expect((lost as WebGpuError).kind).to.equal('lost-result');
    expect(lost.message).to.include('AddNPackedProgram');
    expect((await rejection(alsoBefore.data())).message).to.match(/value was lost/);
    // Unguarded, this read returned [2, 3, 4, 5]: a recycled staging buffer's old contents.
    expect((await rejection(fresh.data())).message, 'an upload queued in the lost buffer is lost too').to.match(/value was lost/);
    expect(thrown(() => tf.add(before, 1))).to.be.instanceOf(WebGpuError);

    const sum = tf.addN(xs); // the course's AddN, after the error: right
    const again = tf.add(base, 10);
    expect(Array.from(await sum.data())).to.deep.equal(Array(4).fill((n * (n + 1)) / 2));
    expect(Array.from(await again.data())).to.deep.equal([11, 12, 13, 14]);
    tf.dispose([...xs, base, before, fresh, alsoBefore, sum, again]);
  });

  it('a WGSL kernel that does not compile: WebGpuError naming the program; its output is released', async () => {
    await tf.setBackend('webgpu');
    const x = tf.randomNormal([300], 0, 1, 'float32', 3);
    const backend = gpu.started.backend;
    const ids = tf.backend().numDataIds();
    const err = thrown(() => backend.runWebGPUProgram(brokenProgram([300]), [x as unknown as TensorInfoLike], 'float32'));
    expect(err).to.be.instanceOf(WebGpuError);
    expect(err.message).to.match(/WebGPU validation error in CourseTestBrokenProgram: .*notDefinedAnywhere/);
    expect(tf.backend().numDataIds()).to.equal(ids);
    const again = thrown(() => backend.runWebGPUProgram(brokenProgram([300]), [x as unknown as TensorInfoLike], 'float32'));
    expect(again.message, 'a retry names the cause again (the invalid pipeline is not cached)').to.match(/notDefinedAnywhere/);
    const y = tf.mul(x, 2);
    expectClose(await y.data(), (await x.data()).map((v) => 2 * v), 'x·2 after the error');
    tf.dispose([x, y]);
  });

  it('after those errors a U-Net forward on webgpu still equals the cpu backend\'s', async () => {
    const f = () => {
      const m = new UNet(TINY);
      try {
        const x = tf.randomNormal([2, 8, 8, 1], 0, 1, 'float32', 5);
        return [m.apply(x, tf.tensor1d([3, 900], 'int32'), tf.tensor1d([2, 10], 'int32'))];
      } finally {
        m.dispose();
      }
    };
    const want = await onBackend('cpu', f);
    const got = await onBackend('webgpu', f);
    expectClose(got.values[0], want.values[0], 'U-Net forward after errors', 1e-4, 1e-4);
  });

  it('a lost device: the next op and the next read throw a device-lost WebGpuError (on a second device)', async () => {
    const second = await secondWebGpuBackend('webgpu-loss-test', { maxStorageBuffersPerShaderStage: gpu.started.device.limits.maxStorageBuffersPerShaderStage! });
    try {
      await tf.setBackend(second.name);
      const x = tf.randomNormal([1200], 0, 1, 'float32', 4);
      const y = tf.mul(x, 3);
      expect((await y.data()).length).to.equal(1200);
      const z = tf.mul(x, 5); // computed, not read, when the device goes
      second.device.destroy();
      await second.device.lost;
      await new Promise((r) => setImmediate(r));
      const e1 = thrown(() => tf.mul(x, 3));
      expect(e1).to.be.instanceOf(WebGpuError);
      expect((e1 as WebGpuError).kind).to.equal('device-lost');
      expect(e1.message).to.match(/the GPU device was lost \(destroyed/);
      expect(((await rejection(z.data())) as WebGpuError).kind).to.equal('device-lost');
      tf.dispose([x, y, z]);
    } finally {
      await tf.setBackend('webgpu');
      second.dispose();
    }
  });
});

/** A fake backend + device: enough of WebGPUBackend for the guard's bookkeeping. */
function fakeGpu() {
  const tensorMap = new Map<DataId, { values: unknown; resource: unknown }>();
  let loseDevice: (info: GpuDeviceLostInfoLike) => void = () => undefined;
  const device: GpuDeviceLike = {
    limits: {}, features: { has: () => false },
    lost: new Promise<GpuDeviceLostInfoLike>((r) => { loseDevice = r; }),
    onuncapturederror: null,
    pushErrorScope: () => undefined, popErrorScope: async () => null, destroy: () => undefined,
  };
  const report = (error: GpuErrorLike) => device.onuncapturederror?.({ error });
  const backend: WebGpuBackendLike & { failNext?: GpuErrorLike } = {
    device, commandEncoder: null, stagingPendingDisposal: [], tensorMap, pipelineCache: {},
    makeTensorInfo: (shape, dtype) => {
      const dataId = {};
      tensorMap.set(dataId, { values: null, resource: null });
      return { dataId, shape, dtype };
    },
    runWebGPUProgram(program, inputs, dtype, uniforms, output) {
      const out = output ?? backend.makeTensorInfo(program.outputShape, dtype);
      tensorMap.get(out.dataId)!.resource = 'buffer';
      backend.commandEncoder = 'encoder';
      if (backend.failNext) report(backend.failNext);
      backend.failNext = undefined;
      return out;
    },
    uploadToGPU: () => undefined,
    submitQueue() { backend.commandEncoder = null; },
    endComputePassEncoder: () => undefined,
    read: async () => new Float32Array([1]),
    readSync: (id) => tensorMap.get(id)?.values,
    disposeData: (id) => tensorMap.delete(id),
    dispose: () => undefined,
  };
  return { backend, device, report, loseDevice };
}

class GPUOutOfMemoryError { constructor(readonly message: string) {} }
class GPUValidationError { constructor(readonly message: string) {} }
const program = { outputShape: [4], variableNames: ['x'], constructor: { name: 'FakeProgram' } };

describe('webgpu: the error guard\'s bookkeeping (fake device)', () => {
  it('out-of-memory is kind out-of-memory; the buffer\'s earlier result is lost, the failing output released', async () => {
    const { backend } = fakeGpu();
    new WebGpuGuard(backend, backend.device);
    const a = backend.runWebGPUProgram(program, [], 'float32');
    backend.failNext = new GPUOutOfMemoryError('Out of memory: could not allocate 2 GiB');
    const size = (backend.tensorMap as Map<DataId, unknown>).size;
    const err = thrown(() => backend.runWebGPUProgram(program, [a], 'float32'));
    expect(err).to.be.instanceOf(WebGpuError);
    expect((err as WebGpuError).kind).to.equal('out-of-memory');
    expect(err.message).to.match(/^WebGPU out-of-memory error in FakeProgram: Out of memory: could not allocate 2 GiB\. 1 other result was recorded/);
    expect((backend.tensorMap as Map<DataId, unknown>).size).to.equal(size);
    expect(((await rejection(backend.read(a.dataId))) as WebGpuError).kind).to.equal('lost-result');
    expect(() => backend.readSync(a.dataId)).to.throw(WebGpuError, /value was lost/);
    expect(() => backend.runWebGPUProgram(program, [a], 'float32')).to.throw(WebGpuError, /FakeProgram: input 0 \[4\]: this value was lost/);
    const b = backend.runWebGPUProgram(program, [], 'float32');
    backend.submitQueue();
    expect(await backend.read(b.dataId)).to.deep.equal(new Float32Array([1]));
    // an output the caller allocated and passed in stays with the caller, marked lost
    const own = backend.makeTensorInfo([4], 'float32');
    backend.failNext = new GPUValidationError('Binding size is larger than the maximum binding size');
    expect(() => backend.runWebGPUProgram(program, [], 'float32', undefined, own)).to.throw(WebGpuError);
    expect(backend.tensorMap.has(own.dataId)).to.equal(true);
    expect(((await rejection(backend.read(own.dataId))) as WebGpuError).kind).to.equal('lost-result');
  });

  it('an error that arrives between calls throws at the next op (or read); a submitted result stays valid', async () => {
    const { backend, report } = fakeGpu();
    new WebGpuGuard(backend, backend.device);
    const a = backend.runWebGPUProgram(program, [], 'float32');
    backend.submitQueue();
    report(new GPUValidationError('Buffer is destroyed.\n - While calling [Queue].Submit'));
    expect(() => backend.runWebGPUProgram(program, [a], 'float32')).to.throw(WebGpuError, /in an operation before FakeProgram: Buffer is destroyed\. - While calling \[Queue\]\.Submit/);
    expect(await backend.read(a.dataId)).to.deep.equal(new Float32Array([1]));
    report(new GPUValidationError('late'));
    expect(((await rejection(backend.read(a.dataId))) as Error).message).to.match(/before this read: late/);
  });

  it('device loss: every later op, read and submit throws device-lost', async () => {
    const { backend, loseDevice } = fakeGpu();
    const guard = new WebGpuGuard(backend, backend.device);
    const a = backend.runWebGPUProgram(program, [], 'float32');
    loseDevice({ reason: 'unknown', message: 'GPU hung' });
    await new Promise((r) => setImmediate(r));
    expect(guard.lostDevice?.kind).to.equal('device-lost');
    expect(() => backend.runWebGPUProgram(program, [], 'float32')).to.throw(WebGpuError, /device was lost \(unknown: GPU hung\)/);
    expect(() => backend.submitQueue()).to.throw(WebGpuError, /device was lost/);
    expect(((await rejection(backend.read(a.dataId))) as WebGpuError).kind).to.equal('device-lost');
  });
});
