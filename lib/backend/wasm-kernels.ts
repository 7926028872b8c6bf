/**
 * The course's kernels for the wasm backend, so that its models can TRAIN there:
 *   Conv2DBackpropFilter  missing from @tensorflow/tfjs-backend-wasm (gradient of conv2d w.r.t. its filter);
 *   Conv2DBackpropInput   shipped as a naive loop (≈ 70 % of a U-Net step): replaced by one XNNPACK convolution;
 *   UnsortedSegmentSum    missing (gradient of tf.gather, e.g. a class-embedding lookup);
 *   ResizeNearestNeighborGrad  shipped, but wrong with halfPixelCenters (gradient of nearest-neighbour upsampling);
 *   MaxPoolGrad           shipped, but sends some windows' gradient to the wrong pixel (digit classifier).
 * Everything else the course's models differentiate (strided/same/valid conv2d, nearest-neighbour upsampling,
 * group norm from reshape/mean/rsqrt, SiLU, softmax attention via matMul, gather, concat, dropout, Adam) was run
 * through tf.grads and an Adam step on wasm and compared with the cpu backend: it needs nothing more.
 *
 * When the optional native addon is built (kernels/native-blas.ts), convolutions (forward, fused with a bias, both
 * gradients), BatchMatMul, Sum, SplitV, Concat and a fused GroupNorm(+SiLU) are computed in C on the wasm heap
 * instead — a training step 5–7× faster per core (docs/benchmarks.md); the kernels above remain their fallback.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm'; // registers the 'wasm' backend and its kernels; selects nothing by itself
import { conv2DBackpropFilterKernel, conv2DBackpropInputKernel } from './kernels/conv2d-backprop';
import { maxPoolGradKernel } from './kernels/max-pool-grad';
import { loadBlasAddon, nativeKernels } from './kernels/native-blas';
import { resizeNearestNeighborGradWasmKernel } from './kernels/resize-nearest-grad';
import { unsortedSegmentSumKernel } from './kernels/unsorted-segment-sum';
import { originals } from './kernels/wasm-calls';

type CourseKernel = { name: string; kernelFunc: tf.KernelFunc };

const COURSE_KERNELS: readonly CourseKernel[] = [
  { name: 'Conv2DBackpropFilter', kernelFunc: conv2DBackpropFilterKernel },
  { name: 'Conv2DBackpropInput', kernelFunc: conv2DBackpropInputKernel },
  { name: 'UnsortedSegmentSum', kernelFunc: unsortedSegmentSumKernel },
  { name: 'ResizeNearestNeighborGrad', kernelFunc: resizeNearestNeighborGradWasmKernel },
  { name: 'MaxPoolGrad', kernelFunc: maxPoolGradKernel },
];

/** Names of the wasm-only course kernels, in registration order. */
export const courseKernelNames: readonly string[] = COURSE_KERNELS.map((k) => k.name);

let nativeTable: readonly CourseKernel[] | undefined;
/** Every kernel function this module may register, so that a re-registration never mistakes one for tfjs' own. */
const ours = new Set<tf.KernelFunc>(COURSE_KERNELS.map((k) => k.kernelFunc));

/** The native kernels (built once), or [] when the addon is not available. */
function nativeKernelTable(): readonly CourseKernel[] {
  if (nativeTable === undefined) {
    const lib = loadBlasAddon();
    nativeTable = lib ? nativeKernels(lib) : [];
    for (const k of nativeTable) ours.add(k.kernelFunc);
  }
  return nativeTable;
}

function table(native: boolean): CourseKernel[] {
  const byName = new Map(COURSE_KERNELS.map((k) => [k.name, k]));
  if (native) for (const k of nativeKernelTable()) byName.set(k.name, k);
  return [...byName.values()];
}

export interface RegisterWasmKernelsOptions {
  /** Use the native OpenBLAS kernels when the addon is built (default true); false: the wasm course kernels only. */
  native?: boolean;
}

/**
 * Register the course kernels on the 'wasm' backend and return their names (native ones included). Idempotent;
 * switching `native` on or off re-registers only what differs. Safe before or after the backend is initialised
 * (ours need no set-up; a replaced kernel's setupFunc is kept, so a later re-initialisation of wasm still sets up
 * the wasm functions the original kernel binds).
 */
export function registerWasmKernels(options: RegisterWasmKernelsOptions = {}): string[] {
  const wanted = table(options.native ?? true);
  const wantedNames = new Set(wanted.map((k) => k.name));
  // Kernels that a previous native registration replaced but this one does not: give tfjs' originals back.
  for (const k of nativeKernelTable()) {
    if (wantedNames.has(k.name)) continue;
    const current = tf.getKernel(k.name, 'wasm');
    const original = originals.get(k.name);
    if (current === undefined || current.kernelFunc === original?.kernelFunc) continue;
    tf.unregisterKernel(k.name, 'wasm');
    if (original) tf.registerKernel(original); // kernels new to wasm (the fused group norm) simply go away
  }
  for (const { name, kernelFunc } of wanted) {
    const current = tf.getKernel(name, 'wasm');
    if (current?.kernelFunc === kernelFunc) continue;
    if (current) {
      if (!ours.has(current.kernelFunc)) originals.set(name, current);
      tf.unregisterKernel(name, 'wasm'); // replace without tfjs' "already registered" warning
    }
    const setupFunc = current?.setupFunc ?? originals.get(name)?.setupFunc;
    tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc, setupFunc });
  }
  return wanted.map((k) => k.name);
}

/** Names of the native kernels registered now on 'wasm' ([] when the addon is absent or switched off). */
export function nativeKernelsRegistered(): string[] {
  return nativeKernelTable().filter((k) => tf.getKernel(k.name, 'wasm')?.kernelFunc === k.kernelFunc).map((k) => k.name);
}

/** True when every wasm course kernel (or its native replacement) is the one registered on 'wasm' now. */
export function wasmKernelsRegistered(): boolean {
  return courseKernelNames.every((name) => {
    const f = tf.getKernel(name, 'wasm')?.kernelFunc;
    return f !== undefined && ours.has(f);
  });
}
