/**
 * Corrections for the pure-JS cpu backend, which is both the last-resort backend and a reference in tests:
 *   ResizeNearestNeighborGrad  wrong for batch > 1 (see kernels/resize-nearest-grad.ts);
 *   Conv2DBackpropFilter       correct but ~4 min for one realistic layer (see kernels/conv2d-filter-grad-js.ts).
 * Registering a kernel selects no backend; lib/backend registers these as soon as it is imported.
 */
import * as tf from '@tensorflow/tfjs';
import { conv2DBackpropFilterCpuKernel } from './kernels/conv2d-filter-grad-js';
import { resizeNearestNeighborGradCpuKernel } from './kernels/resize-nearest-grad';

const CPU_KERNELS: ReadonlyArray<{ name: string; kernelFunc: tf.KernelFunc }> = [
  { name: 'ResizeNearestNeighborGrad', kernelFunc: resizeNearestNeighborGradCpuKernel },
  { name: 'Conv2DBackpropFilter', kernelFunc: conv2DBackpropFilterCpuKernel },
];

/** tfjs' own cpu kernels that ours replaced (tests compare against them). */
export const cpuOriginals = new Map<string, tf.KernelConfig>();

/** Register the cpu corrections. Idempotent and silent (replaces without tfjs' "already registered" warning). */
export function registerCpuKernels(): string[] {
  for (const { name, kernelFunc } of CPU_KERNELS) {
    const current = tf.getKernel(name, 'cpu');
    if (current?.kernelFunc === kernelFunc) continue;
    if (current) {
      cpuOriginals.set(name, current);
      tf.unregisterKernel(name, 'cpu');
    }
    tf.registerKernel({ kernelName: name, backendName: 'cpu', kernelFunc, setupFunc: current?.setupFunc });
  }
  return CPU_KERNELS.map((k) => k.name);
}
