import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { cpuOriginals, registerCpuKernels } from '../../lib/backend/cpu-kernels';
import { expectClose, onBackend } from './compare';

/** Run `f` on cpu with tfjs' own kernel `name` instead of ours, then put ours back. */
async function withOriginalCpuKernel(name: string, f: () => tf.Tensor[]) {
  registerCpuKernels();
  const original = cpuOriginals.get(name);
  if (!original) throw new Error(`test set-up: no original cpu kernel '${name}' was captured`);
  const ours = tf.getKernel(name, 'cpu')!;
  tf.unregisterKernel(name, 'cpu');
  tf.registerKernel(original);
  try {
    return await onBackend('cpu', f, false);
  } finally {
    tf.unregisterKernel(name, 'cpu');
    tf.registerKernel(ours);
  }
}

describe('cpu backend corrections', () => {
  let previous: string;
  before(() => { previous = tf.getBackend(); });
  after(async () => { await tf.setBackend(previous); });

  it('registers idempotently and keeps tfjs\' originals', () => {
    expect(registerCpuKernels()).to.deep.equal(['ResizeNearestNeighborGrad', 'Conv2DBackpropFilter']);
    registerCpuKernels();
    expect(cpuOriginals.get('Conv2DBackpropFilter')?.kernelFunc).to.be.a('function');
    expect(tf.getKernel('Conv2DBackpropFilter', 'cpu')?.kernelFunc).to.not.equal(cpuOriginals.get('Conv2DBackpropFilter')?.kernelFunc);
  });

  // Filter gradient: ours against tfjs' own cpu kernel (an independent, slow implementation).
  const cases: Array<[number[], number[], number | [number, number], 'same' | 'valid' | number]> = [
    [[2, 9, 7, 3], [3, 3, 3, 5], 1, 'same'], [[2, 9, 7, 3], [3, 3, 3, 5], 2, 'same'],
    [[3, 8, 8, 4], [1, 1, 4, 2], 2, 'valid'], [[2, 10, 11, 2], [5, 5, 2, 3], 1, 'valid'],
    [[2, 10, 11, 2], [5, 5, 2, 3], 2, 'same'], [[2, 7, 10, 2], [3, 2, 2, 3], [1, 3], 'same'], [[1, 6, 6, 2], [3, 3, 2, 2], 2, 1],
  ];
  for (const [xShape, fShape, strides, pad] of cases) {
    it(`Conv2DBackpropFilter x${JSON.stringify(xShape)} f${JSON.stringify(fShape)} stride ${JSON.stringify(strides)} ${pad} equals tfjs' own`, async () => {
      const f = () => {
        const x = tf.randomNormal(xShape as [number, number, number, number], 0, 1, 'float32', 1) as tf.Tensor4D;
        const w = tf.randomNormal(fShape as [number, number, number, number], 0, 1, 'float32', 2) as tf.Tensor4D;
        const r = tf.randomNormal(tf.conv2d(x, w, strides, pad as 'same').shape, 0, 1, 'float32', 3);
        return [tf.grad((b: tf.Tensor) => tf.conv2d(x, b as tf.Tensor4D, strides, pad as 'same').mul(r).sum())(w)];
      };
      const want = await withOriginalCpuKernel('Conv2DBackpropFilter', f);
      const got = await onBackend('cpu', f);
      expectClose(got.values[0], want.values[0], 'dw', 1e-4, 1e-4);
    });
  }
});
