import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../../lib/errors';
import {
  addonPath, currentCpuFlags, defaultBlasThreads, loadBlasAddon, missingCpuFlags, nativeUnavailableReason, setBlasThreads,
} from '../../lib/backend/kernels/native-blas';
import {
  courseKernelNames, nativeKernelsRegistered, registerWasmKernels, wasmKernelsRegistered,
} from '../../lib/backend/wasm-kernels';
import { expectClose, expectWasmMatchesCpu, liveCounts, onBackend, useNativeKernels } from './compare';

const NATIVE_NAMES = ['Conv2D', 'FusedConv2D', 'Conv2DBackpropFilter', 'Conv2DBackpropInput', 'BatchMatMul', 'Sum', 'SplitV', 'Concat', 'CourseGroupNorm', 'CourseGroupNormGrad'];

type Pad = 'same' | 'valid';
const rnd = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);

/** conv2d forward, and the gradients w.r.t. input and filter of a loss Σ conv·r with a random r (so every
 *  output position gets a different weight and a wrong index cannot cancel out). */
function convForwardAndGrads(xShape: number[], fShape: number[], strides: number | [number, number], pad: Pad | number) {
  return () => {
    const x = rnd(xShape, 1) as tf.Tensor4D;
    const w = rnd(fShape, 2) as tf.Tensor4D;
    const y = tf.conv2d(x, w, strides, pad as Pad);
    const r = rnd(y.shape, 3);
    const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, strides, pad as Pad).mul(r).sum())([x, w]);
    return [y, dx, dw];
  };
}

describe('native OpenBLAS kernels (optional addon)', () => {
  it('is built and loads wherever OpenBLAS and Node\'s headers are installed (so CI checks it)', function () {
    const hasBlas = ['/usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h', '/usr/include/aarch64-linux-gnu/openblas-pthread/cblas.h']
      .some((f) => fs.existsSync(f));
    const nodeHeaders = [path.join(path.dirname(path.dirname(process.execPath)), 'include/node/node_api.h'), '/usr/include/node/node_api.h']
      .some((f) => fs.existsSync(f));
    if (!hasBlas || !nodeHeaders || process.env.DIFFUSION_NATIVE === '0') this.skip(); // then setup.sh said why it did not build
    expect(loadBlasAddon(), `addon not loaded: ${nativeUnavailableReason()}`).to.not.equal(null);
    expect(loadBlasAddon()!.config()).to.match(/OpenBLAS/);
  });

  it('registers over wasm\'s kernels and gives them back when switched off', function () {
    if (!loadBlasAddon()) this.skip();
    const originalConv = tf.getKernel('Conv2D', 'wasm')!.kernelFunc;
    registerWasmKernels({ native: false });
    expect(nativeKernelsRegistered()).to.deep.equal([]);
    const wasmConv = tf.getKernel('Conv2D', 'wasm')!.kernelFunc;
    registerWasmKernels({ native: true });
    expect(nativeKernelsRegistered()).to.deep.equal(NATIVE_NAMES);
    expect(tf.getKernel('Conv2D', 'wasm')!.kernelFunc).to.not.equal(wasmConv);
    registerWasmKernels({ native: false });
    expect(tf.getKernel('Conv2D', 'wasm')!.kernelFunc).to.equal(wasmConv);
    expect(tf.getKernel('CourseGroupNorm', 'wasm'), 'the fused group norm has no wasm original: it goes').to.equal(undefined);
    expect(wasmKernelsRegistered()).to.equal(true);
    registerWasmKernels();
    expect(originalConv).to.be.a('function');
  });

  it('gives the same convolutions on 1, 2 and 3 threads of its own (chunks of whole images; partial filter gradients)', async function () {
    if (!loadBlasAddon()) this.skip();
    const want = await onBackend('cpu', convForwardAndGrads([5, 12, 12, 8], [3, 3, 8, 6], 1, 'same'));
    const wantS2 = await onBackend('cpu', convForwardAndGrads([5, 12, 12, 8], [1, 1, 8, 6], 2, 'valid'));
    try {
      for (const threads of [1, 2, 3]) {
        setBlasThreads(threads);
        expect(loadBlasAddon()!.threads()).to.equal(threads);
        const got = await onBackend('wasm', convForwardAndGrads([5, 12, 12, 8], [3, 3, 8, 6], 1, 'same'));
        const gotS2 = await onBackend('wasm', convForwardAndGrads([5, 12, 12, 8], [1, 1, 8, 6], 2, 'valid'));
        want.values.forEach((w, i) => expectClose(got.values[i], w, `${threads} threads, output ${i}`, 1e-4, 1e-4));
        wantS2.values.forEach((w, i) => expectClose(gotS2.values[i], w, `${threads} threads, 1×1 stride 2, output ${i}`, 1e-4, 1e-4));
      }
    } finally {
      setBlasThreads(defaultBlasThreads());
    }
  });

  it('refuses an addon built (-march=native) on a CPU with instructions this one lacks', function () {
    expect(missingCpuFlags('sse2 avx2 avx512f avx512bw', 'sse2 avx2 fma')).to.deep.equal(['avx512f', 'avx512bw']);
    expect(missingCpuFlags('sse2 avx2', 'sse2 avx2 avx512f')).to.deep.equal([]); // a newer CPU is fine
    expect(missingCpuFlags('sse2 avx2', '')).to.deep.equal([]); // unknown here (not Linux): no check
    if (!loadBlasAddon()) this.skip();
    // the addon in use was built here: set-up recorded this CPU's flags beside it
    const recorded = fs.readFileSync(addonPath().replace(/\.node$/, '.cpu'), 'utf8');
    expect(missingCpuFlags(recorded, currentCpuFlags())).to.deep.equal([]);
  });

  it('DIFFUSION_BLAS_THREADS: an integer in 1…64, else a named error; unset: one per core on the main thread', () => {
    const saved = process.env.DIFFUSION_BLAS_THREADS;
    try {
      process.env.DIFFUSION_BLAS_THREADS = '3';
      expect(defaultBlasThreads()).to.equal(3);
      for (const bad of ['abc', '0', '1.5', '-2', '100']) {
        process.env.DIFFUSION_BLAS_THREADS = bad;
        expect(() => defaultBlasThreads(), bad).to.throw(InvalidArgumentError, /DIFFUSION_BLAS_THREADS = '.*' is not a thread count/);
      }
      delete process.env.DIFFUSION_BLAS_THREADS;
      expect(defaultBlasThreads()).to.equal(os.availableParallelism?.() ?? os.cpus().length);
    } finally {
      if (saved === undefined) delete process.env.DIFFUSION_BLAS_THREADS;
      else process.env.DIFFUSION_BLAS_THREADS = saved;
    }
  });

  it('rejects a call whose tensors lie outside the heap with a named error (no out-of-bounds write)', function () {
    const lib = loadBlasAddon();
    if (!lib) this.skip();
    const heap = new ArrayBuffer(1024);
    expect(() => lib!.matmul(heap, Float64Array.from([0, 0, 1000, 1, 1, 4, 4, 4, 0, 0]))).to.throw(/outside the wasm heap/);
    expect(() => lib!.matmul(heap, Float64Array.from([0, 0, 0]))).to.throw(/Float64Array/);
    expect(() => lib!.conv2d(heap, new Float64Array(19))).to.throw(/>= 1/);
  });
});

for (const native of [false, true]) describe(`wasm course kernels${native ? ' + native OpenBLAS kernels' : ' (no native kernels)'} (checked against the cpu backend)`, () => {
  let previous: string;
  before(function () {
    if (native && !loadBlasAddon()) this.skip();
    previous = tf.getBackend();
    useNativeKernels(native);
  });
  after(async () => {
    useNativeKernels(true);
    registerWasmKernels();
    if (previous) await tf.setBackend(previous);
  });

  it('registers idempotently, without warnings, and reports its kernels', () => {
    const warn = console.warn;
    const warnings: unknown[] = [];
    console.warn = (...a: unknown[]) => { warnings.push(a); };
    const base = ['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'UnsortedSegmentSum', 'ResizeNearestNeighborGrad', 'MaxPoolGrad'];
    try {
      const names = registerWasmKernels({ native });
      expect([...names].sort()).to.deep.equal((native ? [...new Set([...base, ...NATIVE_NAMES])] : base).sort());
      registerWasmKernels({ native });
    } finally { console.warn = warn; }
    expect(warnings).to.have.length(0);
    expect(wasmKernelsRegistered()).to.equal(true);
    expect(nativeKernelsRegistered()).to.deep.equal(native ? NATIVE_NAMES : []);
    expect(courseKernelNames).to.include('Conv2DBackpropFilter');
    // The replaced wasm kernel's set-up is kept, so re-initialising wasm still binds its C function.
    expect(tf.getKernel('Conv2DBackpropInput', 'wasm')?.setupFunc).to.be.a('function');
  });

  it('batched matMul with transposes and a broadcast side (attention and dense layers)', async () => {
    for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
      await expectWasmMatchesCpu(`matMul ta=${ta} tb=${tb}`, () => {
        const a = rnd(ta ? [3, 5, 4] : [3, 4, 5], 70);
        const b = rnd(tb ? [3, 6, 5] : [3, 5, 6], 71);
        const b1 = rnd(tb ? [1, 6, 5] : [1, 5, 6], 72);
        const [da, db] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y, ta, tb).square().sum())([a, b]);
        return [tf.matMul(a, b, ta, tb), tf.matMul(a, b1, ta, tb), da, db, tf.matMul(a.reshape([-1, a.shape[2]!]), rnd([a.shape[2]!, 3], 73))];
      });
    }
    // Independent numbers: [[1,2],[3,4]]·[[5,6],[7,8]] = [[19,22],[43,50]].
    const { values } = await onBackend('wasm', () => [tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5, 6], [7, 8]]))]);
    expect(Array.from(values[0])).to.deep.equal([19, 22, 43, 50]);
  });

  it('sum over leading, middle, trailing, non-contiguous and all axes, keepDims, ints (bias and norm gradients)', async () => {
    await expectWasmMatchesCpu('sum', () => {
      const x = rnd([4, 5, 6, 7], 80);
      return [
        x.sum([0, 1, 2]), x.sum([1, 2]), x.sum(3), x.sum([2, 3], true), x.sum([0, 2]), x.sum(), x.sum(-1),
        x.sum([1], true), tf.tensor2d([[1, 2], [3, 4]], [2, 2], 'int32').sum(0),
      ];
    }, 1e-4, 1e-5);
    // Independent numbers: column sums of [[1,2],[3,4],[5,6]] are [9, 12], row sums [3, 7, 11].
    const { values } = await onBackend('wasm', () => {
      const m = tf.tensor2d([[1, 2], [3, 4], [5, 6]]);
      return [m.sum(0), m.sum(1)];
    });
    expect(Array.from(values[0])).to.deep.equal([9, 12]);
    expect(Array.from(values[1])).to.deep.equal([3, 7, 11]);
  });

  it('concat and split along every axis, unequal sizes, and their gradients (skip connections, attention qkv)', async () => {
    await expectWasmMatchesCpu('concat/split', () => {
      const a = rnd([2, 3, 4, 5], 90);
      const b = rnd([2, 3, 4, 2], 91);
      const r = rnd([2, 3, 4, 7], 92);
      const outs: tf.Tensor[] = [tf.concat([a, b], 3), tf.concat([a, a, a], 0), tf.concat([a, rnd([2, 1, 4, 5], 93)], 1)];
      for (const axis of [0, 1, 2, 3]) outs.push(...tf.split(rnd([4, 6, 2, 6], 94), 2, axis));
      outs.push(...tf.split(rnd([3, 10], 95), [2, 5, 3], 1), ...tf.split(rnd([3, 10], 96), [3, -1], -1));
      const [da, db] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.concat([x, y], 3).mul(r).sum())([a, b]);
      const dsplit = tf.grad((x: tf.Tensor) => { const [p, q] = tf.split(x, [3, 4], 3); return p.mul(2).sum().add(q.square().sum()); })(r);
      return [...outs, da, db, dsplit];
    }, 1e-5, 1e-5);
    // Independent numbers
    const { values } = await onBackend('wasm', () => {
      const [p, q] = tf.split(tf.tensor2d([[1, 2, 3], [4, 5, 6]]), [1, 2], 1);
      return [p, q, tf.concat([tf.tensor2d([[1], [2]]), tf.tensor2d([[3, 4], [5, 6]])], 1)];
    });
    expect(Array.from(values[0])).to.deep.equal([1, 4]);
    expect(Array.from(values[1])).to.deep.equal([2, 3, 5, 6]);
    expect(Array.from(values[2])).to.deep.equal([1, 3, 4, 2, 5, 6]);
  });

  it('fused conv2d + bias (the course\'s conv layer) and its gradients; other activations fall back', async () => {
    for (const [xShape, fShape, stride] of [[[3, 9, 9, 4], [3, 3, 4, 5], 1], [[2, 8, 7, 3], [3, 3, 3, 6], 2], [[2, 5, 5, 6], [1, 1, 6, 2], 1]] as const) {
      await expectWasmMatchesCpu(`fused conv ${JSON.stringify(xShape)}`, () => {
        const x = rnd([...xShape], 100);
        const w = rnd([...fShape], 101);
        const b = rnd([fShape[3]], 102);
        const f = (a: tf.Tensor, c: tf.Tensor, d: tf.Tensor, activation: 'linear' | 'relu' = 'linear') =>
          tf.fused.conv2d({ x: a as tf.Tensor4D, filter: c as tf.Tensor4D, strides: stride, pad: 'same', bias: d, activation });
        const y = f(x, w, b);
        const r = rnd(y.shape, 103);
        return [y, f(x, w, b, 'relu'), ...tf.grads((a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => f(a, c, d).mul(r).sum())([x, w, b])];
      });
    }
  });

  // Channel counts divisible by 16 take the native direct convolution (forward; input gradient at stride 1): odd image
  // sizes leave partial pixel blocks, 80 = 64 + 16 output channels needs two channel blocks, pad 3 > k − 1 falls back.
  const directShapes: Array<[number[], number[], number, Pad | number]> = [
    [[3, 9, 11, 16], [3, 3, 16, 16], 1, 'same'], [[2, 10, 7, 32], [3, 3, 32, 48], 1, 'valid'],
    [[2, 9, 9, 16], [3, 3, 16, 32], 2, 'same'], [[2, 8, 8, 3], [3, 3, 3, 80], 1, 'same'],
    [[2, 7, 7, 64], [5, 5, 64, 16], 1, 'same'], [[2, 6, 6, 16], [3, 3, 16, 16], 1, 3], [[2, 6, 5, 16], [1, 1, 16, 32], 1, 'same'],
  ];
  for (const [xShape, fShape, stride, pad] of directShapes) {
    it(`conv2d x${JSON.stringify(xShape)} f${JSON.stringify(fShape)} stride ${stride} pad ${pad} (direct path): forward, dx, dw`, async () => {
      await expectWasmMatchesCpu('direct conv', convForwardAndGrads(xShape, fShape, stride, pad), 2e-4, 2e-4);
    });
  }

  it('a U-Net-sized 3×3 conv (batch 4, 28×28, 128→8 channels: two chunks of the native im2col): forward, dx, dw', async () => {
    await expectWasmMatchesCpu('big conv', convForwardAndGrads([4, 28, 28, 128], [3, 3, 128, 8], 1, 'same'), 2e-3, 1e-3);
  });

  // Batch > 1, several channel counts, odd and non-square sizes, filter sizes 1/3/5, strides 1/2, same/valid.
  const shapes: Array<[number[], number[]]> = [
    [[2, 9, 7, 3], [3, 3, 3, 5]],
    [[3, 8, 8, 4], [1, 1, 4, 2]],
    [[2, 10, 11, 2], [5, 5, 2, 3]],
    [[2, 6, 6, 1], [3, 3, 1, 8]],
  ];
  for (const [xShape, fShape] of shapes) {
    for (const strides of [1, 2]) {
      for (const pad of ['same', 'valid'] as Pad[]) {
        it(`conv2d x${JSON.stringify(xShape)} f${JSON.stringify(fShape)} stride ${strides} ${pad}: forward, dx, dw`, async () => {
          await expectWasmMatchesCpu('conv2d', convForwardAndGrads(xShape, fShape, strides, pad));
        });
      }
    }
  }

  it('conv2d with unequal strides [1, 3] and stride 3: dx, dw', async () => {
    await expectWasmMatchesCpu('strides [1,3]', convForwardAndGrads([2, 7, 10, 2], [3, 2, 2, 3], [1, 3], 'same'));
    await expectWasmMatchesCpu('stride 3', convForwardAndGrads([2, 11, 11, 2], [3, 3, 2, 2], 3, 'valid'));
  });

  it('conv2d with explicit numeric padding, including one wider than the filter (falls back to wasm\'s own loop)', async () => {
    await expectWasmMatchesCpu('pad 1', convForwardAndGrads([2, 6, 6, 2], [3, 3, 2, 3], 2, 1));
    await expectWasmMatchesCpu('pad 3 > k-1', convForwardAndGrads([1, 5, 5, 2], [3, 3, 2, 2], 1, 3));
  });

  it('filter gradient of an all-ones 3×3 "same" conv counts the taps that stay inside the image', async () => {
    // Independent hand count: on a 3×3 image a corner tap is inside for 4 output pixels, an edge tap for 6, the centre for 9.
    const { values } = await onBackend('wasm', () => {
      const x = tf.ones([1, 3, 3, 1]) as tf.Tensor4D;
      return [tf.grad((w: tf.Tensor) => tf.conv2d(x, w as tf.Tensor4D, 1, 'same').sum())(tf.ones([3, 3, 1, 1]))];
    });
    expect(Array.from(values[0])).to.deep.equal([4, 6, 4, 6, 9, 6, 4, 6, 4]);
  });

  it('UnsortedSegmentSum with repeated, unused and out-of-range ids (float and int, 2-D and 3-D x)', async () => {
    await expectWasmMatchesCpu('segment sum', () => [
      tf.unsortedSegmentSum(rnd([6, 3], 4), tf.tensor1d([2, 0, 2, 2, 5, 0], 'int32'), 4), // id 5 ≥ 4: dropped
      tf.unsortedSegmentSum(rnd([5, 2, 3], 5), tf.tensor1d([1, 1, 1, 0, 1], 'int32'), 3),
      tf.unsortedSegmentSum(tf.tensor2d([[1, 2], [3, 4], [5, 6]], [3, 2], 'int32'), tf.tensor1d([1, 1, 0], 'int32'), 2),
    ]);
    // Independent numbers: rows 0 and 1 of [[1,2],[3,4],[5,6]] go to segment 1, row 2 to segment 0.
    const { values } = await onBackend('wasm', () =>
      [tf.unsortedSegmentSum(tf.tensor2d([[1, 2], [3, 4], [5, 6]]), tf.tensor1d([1, 1, 0], 'int32'), 2)]);
    expect(Array.from(values[0])).to.deep.equal([5, 6, 4, 6]);
  });

  // Nearest-neighbour resize gradient: the adjoint identity <resize(x), dy> = <x, grad(dy)> holds for the true
  // gradient whatever the resize is, so it checks both backends independently of each other.
  for (const backend of ['cpu', 'wasm'] as const) {
    it(`ResizeNearestNeighborGrad on ${backend} is the adjoint of the forward resize (batch 3, up/down sizes, flags)`, async () => {
      const cases: Array<[number[], [number, number], boolean, boolean]> = [
        [[3, 4, 4, 5], [8, 8], false, false], [[3, 5, 3, 2], [11, 7], false, false], [[2, 7, 6, 3], [3, 4], false, false],
        [[3, 4, 5, 2], [9, 10], true, false], [[3, 4, 5, 2], [9, 10], false, true],
      ];
      for (const [shape, size, alignCorners, halfPixelCenters] of cases) {
        const { values } = await onBackend(backend, () => {
          const x = rnd(shape, 40);
          const dy = rnd([shape[0], size[0], size[1], shape[3]], 41);
          const resize = (a: tf.Tensor) => tf.image.resizeNearestNeighbor(a as tf.Tensor4D, size, alignCorners, halfPixelCenters);
          const dx = tf.grad((a: tf.Tensor) => resize(a).mul(dy).sum())(x);
          return [resize(x).mul(dy).sum(), x.mul(dx).sum()];
        });
        expectClose([values[1][0]], [values[0][0]], `${backend} ${JSON.stringify([shape, size, alignCorners, halfPixelCenters])}`, 1e-3, 1e-4);
      }
    });
  }

  it('2× nearest upsampling: the gradient is the sum of dy over each 2×2 block (both backends)', async () => {
    for (const backend of ['cpu', 'wasm'] as const) {
      const { values } = await onBackend(backend, () => {
        const dy = rnd([3, 8, 8, 4], 42);
        const dx = tf.grad((a: tf.Tensor) => tf.image.resizeNearestNeighbor(a as tf.Tensor4D, [8, 8]).mul(dy).sum())(rnd([3, 4, 4, 4], 43));
        return [dx, dy.reshape([3, 4, 2, 4, 2, 4]).sum([2, 4])];
      });
      expectClose(values[0], values[1], `${backend} block sums`, 1e-5, 1e-5);
    }
  });

  it('gradient of tf.gather (class-embedding lookup) with repeated labels', async () => {
    await expectWasmMatchesCpu('gather grad', () => {
      const table = rnd([11, 8], 7);
      const labels = tf.tensor1d([3, 3, 10, 0, 3, 7], 'int32');
      const r = rnd([6, 8], 8);
      return [tf.grad((t: tf.Tensor) => tf.gather(t, labels).mul(r).sum())(table)];
    });
  });

  it('a tiny conditional conv net: every parameter gradient on wasm equals cpu\'s', async () => {
    // conv s1 → group norm → SiLU → conv s2 → attention (matMul/softmax) → 2× nearest upsampling → concat skip
    // → 1×1 conv, plus a class embedding (gather) and dropout with a fixed seed.
    await expectWasmMatchesCpu('net grads', () => {
      const x = rnd([3, 8, 8, 1], 10) as tf.Tensor4D;
      const labels = tf.tensor1d([1, 4, 1], 'int32');
      const params = [rnd([3, 3, 1, 8], 11).mul(0.3), rnd([3, 3, 8, 8], 12).mul(0.2), rnd([1, 1, 9, 1], 13).mul(0.3),
        rnd([5, 8], 14), rnd([8, 8], 15).mul(0.3)];
      const groupNorm = (h: tf.Tensor, groups: number) => {
        const [b, hh, ww, c] = h.shape;
        const g = h.reshape([b, hh, ww, groups, c / groups]);
        const mean = g.mean([1, 2, 4], true);
        const d = g.sub(mean);
        return d.mul(d.square().mean([1, 2, 4], true).add(1e-5).rsqrt()).reshape(h.shape);
      };
      const silu = (h: tf.Tensor) => h.mul(tf.sigmoid(h));
      const loss = (w1: tf.Tensor, w2: tf.Tensor, w3: tf.Tensor, emb: tf.Tensor, wq: tf.Tensor) => {
        let h = silu(groupNorm(tf.conv2d(x, w1 as tf.Tensor4D, 1, 'same'), 2));
        h = h.add(tf.gather(emb, labels).reshape([3, 1, 1, 8]));
        h = silu(tf.conv2d(h as tf.Tensor4D, w2 as tf.Tensor4D, 2, 'same')); // [3, 4, 4, 8]
        const seq = h.reshape([3, 16, 8]);
        const q = tf.matMul(seq.reshape([48, 8]), wq).reshape([3, 16, 8]);
        const att = tf.softmax(tf.matMul(q, seq, false, true).div(Math.sqrt(8)));
        h = h.add(tf.matMul(att, seq).reshape([3, 4, 4, 8]));
        h = tf.dropout(tf.image.resizeNearestNeighbor(h as tf.Tensor4D, [8, 8]), 0.2, undefined, 42);
        const out = tf.conv2d(tf.concat([h, x], 3) as tf.Tensor4D, w3 as tf.Tensor4D, 1, 'valid');
        return out.sub(x).square().mean() as tf.Scalar;
      };
      const { value, grads } = tf.valueAndGrads(loss)(params);
      return [value, ...grads];
    }, 1e-5, 1e-3);
  });

  it('MaxPoolGrad sends dy to each window\'s maximum (independent loop; sizes, strides, same/valid, batch 2)', async () => {
    const cases: Array<[number[], number, number, Pad]> = [
      [[2, 6, 6, 4], 2, 2, 'valid'], [[2, 7, 5, 3], 3, 2, 'same'], [[2, 5, 5, 2], 2, 1, 'valid'], [[1, 9, 9, 1], 3, 3, 'same'],
    ];
    for (const [shape, k, s, pad] of cases) {
      const { values } = await onBackend('cpu', () => [rnd(shape, 60)]);
      const xs = values[0];
      const [, h, w, ch] = shape;
      // Independent reference: for every window, 1 on its (first) maximum; out-of-image taps never win.
      const outH = pad === 'same' ? Math.ceil(h / s) : Math.floor((h - k) / s) + 1;
      const outW = pad === 'same' ? Math.ceil(w / s) : Math.floor((w - k) / s) + 1;
      const padTop = pad === 'same' ? Math.floor(Math.max((outH - 1) * s + k - h, 0) / 2) : 0;
      const padLeft = pad === 'same' ? Math.floor(Math.max((outW - 1) * s + k - w, 0) / 2) : 0;
      const want = new Float32Array(xs.length);
      for (let b = 0; b < shape[0]; b++) for (let oy = 0; oy < outH; oy++) for (let ox = 0; ox < outW; ox++) for (let c = 0; c < ch; c++) {
        let best = -Infinity;
        let at = -1;
        for (let fy = 0; fy < k; fy++) for (let fx = 0; fx < k; fx++) {
          const y = oy * s - padTop + fy;
          const x = ox * s - padLeft + fx;
          if (y < 0 || y >= h || x < 0 || x >= w) continue;
          const i = ((b * h + y) * w + x) * ch + c;
          if (xs[i] > best) { best = xs[i]; at = i; }
        }
        want[at] += 1;
      }
      for (const backend of ['cpu', 'wasm'] as const) {
        const got = await onBackend(backend, () =>
          [tf.grad((a: tf.Tensor) => tf.maxPool(a as tf.Tensor4D, k, s, pad).sum())(tf.tensor(xs, shape))]);
        expectClose(got.values[0], want, `${backend} maxPool grad ${JSON.stringify([shape, k, s, pad])}`, 1e-6, 0);
      }
    }
  });

  it('other gradients the course uses (max pool, logSumExp, split/stack, clip, minimum, moments, relu, sin/cos) agree', async () => {
    // Not ours, but wasm's own: two of its resize gradients turned out wrong, so check what the course relies on.
    await expectWasmMatchesCpu('misc grads', () => {
      const x = rnd([2, 6, 6, 4], 50);
      const r = rnd([2, 6, 6, 4], 51);
      const loss = (a: tf.Tensor) => {
        const pooled = tf.maxPool(a as tf.Tensor4D, 2, 2, 'valid'); // [2, 3, 3, 4]
        const [p, q] = tf.split(a, 2, 3);
        const { mean, variance } = tf.moments(a, [1, 2], true);
        return tf.addN([
          pooled.square().sum(),
          tf.logSumExp(a.reshape([72, 4]), 1).sum(),
          tf.stack([p, q]).mul(tf.stack([q, p])).sum(),
          tf.clipByValue(a, -0.5, 0.5).mul(r).sum(),
          tf.minimum(a, r).sum(),
          tf.squaredDifference(a, r).mean(),
          a.sub(mean).div(variance.add(1e-5).sqrt()).mul(r).sum(),
          tf.relu(a).mul(r).sum(),
          tf.sin(a).add(tf.cos(a)).mul(r).sum(),
        ]) as tf.Scalar;
      };
      return [tf.grad(loss)(x)];
    }, 1e-4, 1e-4);
  });

  it('two Adam steps on a strided conv + embedding model give the same weights on wasm as on cpu', async () => {
    await expectWasmMatchesCpu('adam', () => {
      const x = rnd([4, 6, 6, 2], 20) as tf.Tensor4D;
      const w = tf.variable(rnd([3, 3, 2, 3], 21).mul(0.3));
      const emb = tf.variable(rnd([4, 3], 22));
      const labels = tf.tensor1d([0, 2, 2, 3], 'int32');
      const opt = tf.train.adam(0.05);
      for (let step = 0; step < 2; step++) {
        opt.minimize(() => tf.conv2d(x, w as unknown as tf.Tensor4D, 2, 'valid')
          .add(tf.gather(emb, labels).reshape([4, 1, 1, 3])).square().mean() as tf.Scalar);
      }
      const out = [w.clone(), emb.clone()];
      opt.dispose();
      w.dispose();
      emb.dispose();
      return out;
    }, 1e-5, 1e-4);
  });

  it('leaks no tensors and no wasm buffers (temporaries inside the kernels are freed)', async () => {
    registerWasmKernels();
    await tf.setBackend('wasm');
    const x = rnd([2, 9, 9, 3], 30) as tf.Tensor4D;
    const w = rnd([3, 3, 3, 4], 31) as tf.Tensor4D;
    const table = rnd([5, 4], 32);
    const step = () => {
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor, t: tf.Tensor) => {
        const h = tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'valid'); // [2, 4, 4, 4]
        const up = tf.image.resizeNearestNeighbor(tf.maxPool(h, 2, 2, 'valid'), [4, 4]);
        return up.sum().add(h.sum()).add(tf.gather(t, [1, 1, 3]).sum());
      })([x, w, table]);
      tf.dispose(g);
    };
    step(); // burn-in: lets tfjs create anything it keeps for good
    const before = liveCounts();
    step();
    step();
    expect(liveCounts()).to.deep.equal(before);
    tf.dispose([x, w, table]);
  });

  it('expectClose itself fails on a wrong value and on NaN (so the checks above can fail)', () => {
    expect(() => expectClose([1, 2.01], [1, 2], 'probe', 1e-4, 1e-4)).to.throw(/element 1/);
    expect(() => expectClose([1, NaN], [1, 2], 'probe')).to.throw(/element 1/);
    expect(() => expectClose([1, 2 + 1e-6], [1, 2], 'probe')).to.not.throw();
  });
});
