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
 * (Routing 2-D BatchMatMul through a 1×1 Conv2D was measured too: no consistent gain, so it is not done.)
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm'; // registers the 'wasm' backend and its kernels; selects nothing by itself
import { conv2DBackpropFilterKernel, conv2DBackpropInputKernel } from './kernels/conv2d-backprop';
import { maxPoolGradKernel } from './kernels/max-pool-grad';
import { resizeNearestNeighborGradWasmKernel } from './kernels/resize-nearest-grad';
import { unsortedSegmentSumKernel } from './kernels/unsorted-segment-sum';
import { originals } from './kernels/wasm-calls';

const COURSE_KERNELS: ReadonlyArray<{ name: string; kernelFunc: tf.KernelFunc }> = [
  { name: 'Conv2DBackpropFilter', kernelFunc: conv2DBackpropFilterKernel },
  { name: 'Conv2DBackpropInput', kernelFunc: conv2DBackpropInputKernel },
  { name: 'UnsortedSegmentSum', kernelFunc: unsortedSegmentSumKernel },
  { name: 'ResizeNearestNeighborGrad', kernelFunc: resizeNearestNeighborGradWasmKernel },
  { name: 'MaxPoolGrad', kernelFunc: maxPoolGradKernel },
];

/** Names of the kernels this module registers on 'wasm', in registration order. */
export const courseKernelNames: readonly string[] = COURSE_KERNELS.map((k) => k.name);

/**
 * Register the course kernels on the 'wasm' backend. Idempotent: a second call changes nothing.
 * Safe before or after the backend is initialised (ours need no set-up; a replaced kernel's setupFunc is kept,
 * so a later re-initialisation of wasm still sets up the wasm functions the original kernel binds).
 */
export function registerWasmKernels(): string[] {
  for (const { name, kernelFunc } of COURSE_KERNELS) {
    const current = tf.getKernel(name, 'wasm');
    if (current?.kernelFunc === kernelFunc) continue;
    if (current) {
      originals.set(name, current);
      tf.unregisterKernel(name, 'wasm'); // replace without tfjs' "already registered" warning
    }
    tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc, setupFunc: current?.setupFunc });
  }
  return [...courseKernelNames];
}

/** True when every course kernel is the one registered on 'wasm' now. */
export function wasmKernelsRegistered(): boolean {
  return COURSE_KERNELS.every(({ name, kernelFunc }) => tf.getKernel(name, 'wasm')?.kernelFunc === kernelFunc);
}
