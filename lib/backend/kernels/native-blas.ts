/**
 * Optional native kernels for the wasm backend, computed directly on the wasm heap (native/blas_kernels.c, built by
 * scripts/build-native.sh into build/native/): Conv2D / FusedConv2D and both gradients (direct kernels where they pay,
 * else im2col + OpenBLAS sgemm), BatchMatMul by OpenBLAS; Sum over a block of axes; SplitV and Concat as strided copies;
 * and a fused GroupNorm(+SiLU) with its gradient (lib/nn/group-norm.ts).
 *
 * Why: wasm's 128-bit SIMD convolutions run at ~20–45 GFLOP/s per core; native code at 100–265 (measured in
 * docs/benchmarks.md). tfjs-node would give native speed too, but it cannot be installed without internet access.
 * When the addon is missing (not built, no OpenBLAS, another OS, Node's permission model) the course kernels in
 * conv2d-backprop.ts and wasm's own kernels are used, with the same results up to float rounding.
 * DIFFUSION_NATIVE=0 turns the addon off; DIFFUSION_BLAS_THREADS=N sets the threads each native convolution uses.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { isMainThread } from 'worker_threads';
import * as tf from '@tensorflow/tfjs';
import { conv2DBackpropFilterKernel, conv2DBackpropInputKernel } from './conv2d-backprop';
import { InvalidArgumentError } from '../../errors';
import { BackendWasm, Info, heap, originals } from './wasm-calls';

/** The addon's interface (see native/blas_kernels.c for the parameter order). */
export interface BlasAddon {
  conv2d(heap: ArrayBuffer, params: Float64Array): void;
  conv2dBackpropInput(heap: ArrayBuffer, params: Float64Array): void;
  conv2dBackpropFilter(heap: ArrayBuffer, params: Float64Array): void;
  matmul(heap: ArrayBuffer, params: Float64Array): void;
  groupNorm(heap: ArrayBuffer, params: Float64Array): void;
  groupNormGrad(heap: ArrayBuffer, params: Float64Array): void;
  sum(heap: ArrayBuffer, params: Float64Array): void;
  copyBlocks(heap: ArrayBuffer, params: Float64Array): void;
  setThreads(n: number): void;
  /** false: im2col + sgemm for every convolution (the direct kernels are on by default where they pay). */
  setDirect(on: boolean): void;
  threads(): number;
  config(): string;
  /** The kernel set OpenBLAS chose at load time (e.g. 'Haswell', 'SkylakeX'). */
  corename(): string;
}

export const NATIVE_ENV_VAR = 'DIFFUSION_NATIVE';
export const BLAS_THREADS_ENV_VAR = 'DIFFUSION_BLAS_THREADS';

/** build/native/blas_kernels.node of this checkout (lib may be reached through the notebooks' symlink). */
export function addonPath(): string {
  return path.resolve(fs.realpathSync(__dirname), '..', '..', '..', 'build', 'native', 'blas_kernels.node');
}

let addon: BlasAddon | null | undefined;
let whyNot = '';

/** Loads the addon once; null (with `nativeUnavailableReason()`) when it is switched off, not built or broken. */
export function loadBlasAddon(): BlasAddon | null {
  if (addon !== undefined) return addon;
  const flag = (process.env[NATIVE_ENV_VAR] ?? '').trim().toLowerCase();
  if (flag === '0' || flag === 'false' || flag === 'off') {
    whyNot = `${NATIVE_ENV_VAR}=${flag}`;
    return (addon = null);
  }
  const file = addonPath();
  try {
    if (!fs.existsSync(file)) {
      whyNot = 'not built (run scripts/build-native.sh; needs a C compiler and libopenblas-dev)';
      return (addon = null);
    }
    const missing = missingCpuFlags(readBuildCpuFlags(file), currentCpuFlags());
    if (missing.length > 0) {
      // built with -march=native on another CPU: loading it could crash the process with an illegal instruction
      whyNot = `built on a CPU with instructions this one lacks (${missing.slice(0, 4).join(', ')}): run scripts/build-native.sh`;
      return (addon = null);
    }
    chooseBlasCore();
    addon = require(file) as BlasAddon;
    // The thread count is one setting for the whole process: the main thread owns it (a worker setting it on load would
    // silently slow the main thread down if a data-parallel group then failed to start).
    if (isMainThread) addon.setThreads(defaultBlasThreads());
    // DIFFUSION_NATIVE_DIRECT=0: convolutions as im2col + sgemm only (to compare; the results agree up to rounding)
    addon.setDirect(!['0', 'false', 'off'].includes((process.env.DIFFUSION_NATIVE_DIRECT ?? '').trim().toLowerCase()));
  } catch (err) {
    whyNot = `failed to load: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
    addon = null;
  }
  return addon;
}

/** The CPU flags scripts/build-native.sh recorded beside the addon ('' when unknown, e.g. not Linux). */
function readBuildCpuFlags(addonFile: string): string {
  try {
    return fs.readFileSync(addonFile.replace(/\.node$/, '.cpu'), 'utf8');
  } catch {
    return '';
  }
}

/** This CPU's flags from /proc/cpuinfo ('' when unknown). */
export function currentCpuFlags(): string {
  try {
    const line = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    return line ? line.split(':')[1].trim() : '';
  } catch {
    return '';
  }
}

/** Flags the build CPU had and this one lacks (none when either list is unknown). */
export function missingCpuFlags(built: string, current: string): string[] {
  const now = new Set(current.trim().split(/\s+/).filter(Boolean));
  if (now.size === 0) return [];
  return built.trim().split(/\s+/).filter((f) => f !== '' && !now.has(f));
}

/**
 * OpenBLAS 0.3.21 (Debian 12) does not recognise recent AMD CPUs and falls back to its AVX2 'Haswell' kernels even when
 * the CPU has AVX-512; its 'SkylakeX' kernels measured 1.4–1.9× faster sgemm on such a machine (docs/benchmarks.md).
 * OpenBLAS reads OPENBLAS_CORETYPE once, when the library loads: set it before the first load, unless the user did.
 */
function chooseBlasCore(): void {
  if (process.env.OPENBLAS_CORETYPE || process.platform !== 'linux' || process.arch !== 'x64') return;
  const flags = currentCpuFlags().split(/\s+/);
  if (['avx512f', 'avx512bw', 'avx512dq', 'avx512vl', 'avx512cd'].every((f) => flags.includes(f))) {
    process.env.OPENBLAS_CORETYPE = 'SkylakeX';
  }
}

export function nativeUnavailableReason(): string {
  return whyNot;
}

/**
 * Threads per native convolution: DIFFUSION_BLAS_THREADS if set, else one per core on the main thread and 1 in worker
 * threads (lib/parallel already puts a JS thread on every core). A malformed value is an InvalidArgumentError (when the
 * addon loads, its message becomes the reason shown in the backend line).
 */
export function defaultBlasThreads(): number {
  const raw = process.env[BLAS_THREADS_ENV_VAR];
  if (raw !== undefined && raw.trim() !== '') {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > 64) {
      throw new InvalidArgumentError(`${BLAS_THREADS_ENV_VAR} = '${raw}' is not a thread count: expected an integer in 1…64`);
    }
    return n;
  }
  return isMainThread ? (os.availableParallelism?.() ?? os.cpus().length) : 1;
}

/**
 * Sets the native kernels' threads per call for this process (all JS threads share it). lib/parallel sets 1 while a
 * data-parallel group runs, so that N JS threads × M native threads do not oversubscribe the cores. No-op without the
 * addon.
 */
export function setBlasThreads(n: number): void {
  loadBlasAddon()?.setThreads(n);
}

/** Back to defaultBlasThreads() (no-op without the addon). */
export function restoreDefaultBlasThreads(): void {
  if (loadBlasAddon()) setBlasThreads(defaultBlasThreads());
}

// ------------------------------------------------------------------------------------------------------ kernels

/** Byte offset of a tensor's data in the wasm heap (from the backend's own heap view). */
function offset(be: BackendWasm, t: Info): number {
  return heap(be, t).byteOffset;
}

/** The wasm heap itself. Take it after the kernel's last allocation: a heap growth replaces the buffer. */
function heapBuffer(be: BackendWasm, anyTensor: Info): ArrayBuffer {
  return heap(be, anyTensor).buffer as ArrayBuffer;
}

function fallback(name: string, args: Parameters<tf.KernelFunc>[0]): ReturnType<tf.KernelFunc> {
  if (name === 'Conv2DBackpropFilter') return conv2DBackpropFilterKernel(args);
  if (name === 'Conv2DBackpropInput') return conv2DBackpropInputKernel(args);
  const original = originals.get(name);
  if (!original) throw new Error(`${name}: the wasm package kernel was not captured`);
  return original.kernelFunc(args);
}

/** The parameters of native/blas_kernels.c's conv calls (the CONV_* slots, in order). */
function convParams(info: tf.backend_util.Conv2DInfo, xOff: number, wOff: number, yOff: number, biasOff = -1): Float64Array {
  return Float64Array.from([
    xOff, wOff, yOff,
    info.batchSize, info.inHeight, info.inWidth, info.inChannels,
    info.outHeight, info.outWidth, info.outChannels,
    info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth,
    info.dilationHeight, info.dilationWidth, info.padInfo.top, info.padInfo.left, biasOff,
  ]);
}

type ConvAttrs = tf.Conv2DAttrs & { filterShape?: number[]; inputShape?: number[] };

/** Conv info for NHWC float32 convolutions the addon handles, or null (→ fallback). */
function nativeConvInfo(
  xShape: number[], filterShape: number[], attrs: ConvAttrs, dtypes: string[],
): tf.backend_util.Conv2DInfo | null {
  if (attrs.dataFormat !== 'NHWC' || dtypes.some((d) => d !== 'float32')) return null;
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number], filterShape as [number, number, number, number],
    attrs.strides, attrs.dilations ?? 1, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast');
  if (info.padInfo.top < 0 || info.padInfo.left < 0) return null;
  return info;
}

/**
 * The three convolution kernels share one shape: work out the conv geometry (x shape, filter shape), allocate the
 * output, hand (first input, second input, output) to the addon — or fall back for what it does not cover.
 *   Conv2D                inputs x, filter   → y   [geometry: x.shape, filter.shape]
 *   Conv2DBackpropInput   inputs dy, filter  → dx  [geometry: attrs.inputShape, filter.shape]
 *   Conv2DBackpropFilter  inputs x, dy       → dw  [geometry: x.shape, attrs.filterShape]
 */
type ConvKernelName = 'Conv2D' | 'Conv2DBackpropInput' | 'Conv2DBackpropFilter';

function makeConvKernel(lib: BlasAddon, name: ConvKernelName): tf.KernelFunc {
  const call = name === 'Conv2D' ? lib.conv2d : name === 'Conv2DBackpropInput' ? lib.conv2dBackpropInput : lib.conv2dBackpropFilter;
  return (args) => {
    const be = args.backend as BackendWasm;
    const inputs = args.inputs as Record<string, Info>;
    const attrs = args.attrs as unknown as ConvAttrs;
    const [first, second] = name === 'Conv2D' ? [inputs.x, inputs.filter]
      : name === 'Conv2DBackpropInput' ? [inputs.dy, inputs.filter] : [inputs.x, inputs.dy];
    const xShape = name === 'Conv2DBackpropInput' ? attrs.inputShape as number[] : first.shape;
    const filterShape = name === 'Conv2DBackpropFilter' ? attrs.filterShape as number[] : second.shape;
    // tfjs has no gradients of dilated convolutions, so the gradient kernels always see dilation 1
    const info = nativeConvInfo(xShape, filterShape, name === 'Conv2D' ? attrs : { ...attrs, dilations: 1 },
      [first.dtype, second.dtype]);
    if (!info) return fallback(name, args);
    const outShape = name === 'Conv2D' ? info.outShape : name === 'Conv2DBackpropInput' ? xShape : filterShape;
    const out = be.makeOutput(outShape, 'float32');
    if (tf.util.sizeFromShape(outShape) > 0) {
      call.call(lib, heapBuffer(be, out), convParams(info, offset(be, first), offset(be, second), offset(be, out)));
    }
    return out;
  };
}

/** conv2d + bias (tf.fused.conv2d with a per-channel bias and no activation): the bias is added inside the product. */
function makeFusedConv2D(lib: BlasAddon): tf.KernelFunc {
  return (args) => {
    const be = args.backend as BackendWasm;
    const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, Info | undefined>;
    const attrs = args.attrs as unknown as ConvAttrs & { activation?: string };
    if (!x || !filter || preluActivationWeights || (attrs.activation ?? 'linear') !== 'linear') return fallback('FusedConv2D', args);
    const info = nativeConvInfo(x.shape, filter.shape, attrs, [x.dtype, filter.dtype, bias?.dtype ?? 'float32']);
    if (!info || (bias && tf.util.sizeFromShape(bias.shape) !== info.outChannels)) return fallback('FusedConv2D', args);
    const out = be.makeOutput(info.outShape, 'float32');
    if (tf.util.sizeFromShape(info.outShape) > 0) {
      lib.conv2d(heapBuffer(be, out), convParams(info, offset(be, x), offset(be, filter), offset(be, out), bias ? offset(be, bias) : -1));
    }
    return out;
  };
}

function makeBatchMatMul(lib: BlasAddon): tf.KernelFunc {
  return (args) => {
    const be = args.backend as BackendWasm;
    const { a, b } = args.inputs as { a: Info; b: Info };
    const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return fallback('BatchMatMul', args);
    const ra = a.shape.length;
    const rb = b.shape.length;
    const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
    const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    const batchA = tf.util.sizeFromShape(a.shape.slice(0, -2));
    const batchB = tf.util.sizeFromShape(b.shape.slice(0, -2));
    const outer = tf.backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const batch = tf.util.sizeFromShape(outer);
    // The addon broadcasts only a whole side of size 1; anything else (and shape errors) goes to wasm's kernel.
    if (k !== kb || (batchA !== batchB && batchA !== 1 && batchB !== 1) || batch !== Math.max(batchA, batchB)) {
      return fallback('BatchMatMul', args);
    }
    const out = be.makeOutput([...outer, m, n], 'float32');
    if (batch * m * n === 0) return out;
    if (k === 0) {
      heap(be, out).fill(0);
      return out;
    }
    lib.matmul(heapBuffer(be, out), Float64Array.from([
      offset(be, a), offset(be, b), offset(be, out), batchA, batchB, m, n, k, transposeA ? 1 : 0, transposeB ? 1 : 0,
    ]));
    return out;
  };
}

function makeSum(lib: BlasAddon): tf.KernelFunc {
  return (args) => {
    const be = args.backend as BackendWasm;
    const { x } = args.inputs as { x: Info };
    const { axis, keepDims } = args.attrs as unknown as tf.SumAttrs;
    const rank = x.shape.length;
    const axes = [...new Set(tf.util.parseAxisParam(axis, x.shape))].sort((a, b) => a - b);
    // one contiguous block of axes [first, last] → x viewed as [outer, mid, inner]; anything else: wasm's kernel
    if (x.dtype !== 'float32' || axes.length === 0 || axes[axes.length - 1] - axes[0] !== axes.length - 1) {
      return fallback('Sum', args);
    }
    const outer = tf.util.sizeFromShape(x.shape.slice(0, axes[0]));
    const mid = tf.util.sizeFromShape(x.shape.slice(axes[0], axes[axes.length - 1] + 1));
    const inner = tf.util.sizeFromShape(x.shape.slice(axes[axes.length - 1] + 1));
    const outShape = keepDims
      ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d))
      : x.shape.filter((_, i) => !axes.includes(i));
    if (outer * mid * inner === 0 || rank === 0) return fallback('Sum', args);
    const out = be.makeOutput(outShape, 'float32');
    lib.sum(heapBuffer(be, out), Float64Array.from([offset(be, x), offset(be, out), outer, mid, inner]));
    return out;
  };
}

/** x viewed as [outer, rowLength] around `axis`: outer = Π shape[:axis], rowLength = Π shape[axis:]. */
function rows(shape: number[], axis: number): { outer: number; row: number } {
  return { outer: tf.util.sizeFromShape(shape.slice(0, axis)), row: tf.util.sizeFromShape(shape.slice(axis)) };
}

function makeSplitV(lib: BlasAddon): tf.KernelFunc {
  return (args) => {
    const be = args.backend as BackendWasm;
    const { x } = args.inputs as { x: Info };
    const { numOrSizeSplits, axis } = args.attrs as unknown as tf.SplitVAttrs;
    if (x.dtype !== 'float32' || tf.util.sizeFromShape(x.shape) === 0) return fallback('SplitV', args);
    const ax = tf.util.parseAxisParam(axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, numOrSizeSplits, ax);
    const inner = tf.util.sizeFromShape(x.shape.slice(ax + 1));
    const { outer, row } = rows(x.shape, ax);
    const outs = sizes.map((size) => be.makeOutput(x.shape.map((d, i) => (i === ax ? size : d)), 'float32'));
    const heapNow = heapBuffer(be, x);
    let at = 0;
    outs.forEach((out, k) => {
      const n = sizes[k] * inner;
      if (n > 0) lib.copyBlocks(heapNow, Float64Array.from([offset(be, x), offset(be, out), outer, n, row, n, at, 0]));
      at += n;
    });
    return outs;
  };
}

function makeConcat(lib: BlasAddon): tf.KernelFunc {
  return (args) => {
    const be = args.backend as BackendWasm;
    const parts = (Array.isArray(args.inputs) ? args.inputs : Object.values(args.inputs)) as Info[];
    const { axis } = args.attrs as unknown as tf.ConcatAttrs;
    if (parts.length === 0 || parts.some((t) => t.dtype !== 'float32' || tf.util.sizeFromShape(t.shape) === 0)) {
      return fallback('Concat', args);
    }
    const ax = tf.util.parseAxisParam(axis, parts[0].shape)[0];
    tf.backend_util.assertParamsConsistent(parts.map((t) => t.shape), ax);
    const outShape = tf.backend_util.computeOutShape(parts.map((t) => t.shape), ax);
    const out = be.makeOutput(outShape, 'float32');
    const { outer, row } = rows(outShape, ax);
    const heapNow = heapBuffer(be, out);
    let at = 0;
    for (const t of parts) {
      const n = rows(t.shape, ax).row;
      lib.copyBlocks(heapNow, Float64Array.from([offset(be, t), offset(be, out), outer, n, n, row, 0, at]));
      at += n;
    }
    return out;
  };
}

/** Attributes of the fused group norm kernels (lib/nn/fused-group-norm.ts). */
export interface GroupNormAttrs { groups: number; eps: number; silu: boolean }

function groupNormParams(
  be: BackendWasm, x: Info, gamma: Info, beta: Info, attrs: GroupNormAttrs,
  outs: { out?: Info; dy?: Info; dx?: Info; dgamma?: Info; dbeta?: Info },
): Float64Array {
  const c = x.shape[x.shape.length - 1];
  const b = x.shape[0];
  const pixels = tf.util.sizeFromShape(x.shape) / (b * c);
  const off = (t: Info | undefined) => (t ? offset(be, t) : 0);
  // the GN_* slots of native/blas_kernels.c
  return Float64Array.from([
    offset(be, x), offset(be, gamma), offset(be, beta), off(outs.out), off(outs.dy), off(outs.dx), off(outs.dgamma),
    off(outs.dbeta), b, pixels, c, attrs.groups, attrs.eps, attrs.silu ? 1 : 0,
  ]);
}

function makeGroupNorm(lib: BlasAddon): tf.KernelFunc {
  return (args) => {
    const be = args.backend as BackendWasm;
    const { x, gamma, beta } = args.inputs as { x: Info; gamma: Info; beta: Info };
    const attrs = args.attrs as unknown as GroupNormAttrs;
    const out = be.makeOutput(x.shape, 'float32');
    lib.groupNorm(heapBuffer(be, out), groupNormParams(be, x, gamma, beta, attrs, { out }));
    return out;
  };
}

function makeGroupNormGrad(lib: BlasAddon): tf.KernelFunc {
  return (args) => {
    const be = args.backend as BackendWasm;
    const { x, gamma, beta, dy } = args.inputs as { x: Info; gamma: Info; beta: Info; dy: Info };
    const attrs = args.attrs as unknown as GroupNormAttrs;
    const dx = be.makeOutput(x.shape, 'float32');
    const dgamma = be.makeOutput(gamma.shape, 'float32');
    const dbeta = be.makeOutput(beta.shape, 'float32');
    lib.groupNormGrad(heapBuffer(be, dx), groupNormParams(be, x, gamma, beta, attrs, { dy, dx, dgamma, dbeta }));
    return [dx, dgamma, dbeta];
  };
}

export const GROUP_NORM_KERNEL = 'CourseGroupNorm';
export const GROUP_NORM_GRAD_KERNEL = 'CourseGroupNormGrad';

/** The native kernels, by kernel name, built around a loaded addon. */
export function nativeKernels(lib: BlasAddon): { name: string; kernelFunc: tf.KernelFunc }[] {
  return [
    { name: 'Conv2D', kernelFunc: makeConvKernel(lib, 'Conv2D') },
    { name: 'FusedConv2D', kernelFunc: makeFusedConv2D(lib) },
    { name: 'Conv2DBackpropFilter', kernelFunc: makeConvKernel(lib, 'Conv2DBackpropFilter') },
    { name: 'Conv2DBackpropInput', kernelFunc: makeConvKernel(lib, 'Conv2DBackpropInput') },
    { name: 'BatchMatMul', kernelFunc: makeBatchMatMul(lib) },
    { name: 'Sum', kernelFunc: makeSum(lib) },
    { name: 'SplitV', kernelFunc: makeSplitV(lib) },
    { name: 'Concat', kernelFunc: makeConcat(lib) },
    { name: GROUP_NORM_KERNEL, kernelFunc: makeGroupNorm(lib) },
    { name: GROUP_NORM_GRAD_KERNEL, kernelFunc: makeGroupNormGrad(lib) },
  ];
}
