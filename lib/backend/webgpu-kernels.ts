/**
 * The course's kernels for the webgpu backend, registered in one place (like wasm-kernels.ts for wasm):
 *   AddN   tfjs' binds every input as a storage buffer of one shader: > 7 inputs (at the default limit of 8) fail
 *          validation and read as zeros; replaced by a chunked sum within the device's limit (kernels/add-n-webgpu.ts);
 *   + every KernelConfig in kernels/webgpu/index.ts (the course's WGSL kernels).
 * The one registry for webgpu: lib's loader, tests and scripts all go through registerWebGpuKernels; a comparison with
 * what tfjs does without the course's kernels swaps tfjs' originals in with withTfjsWebGpuKernels.
 *
 * Audit of tfjs 4.22's webgpu kernels the course uses, for the same storage-buffer limit: only AddN and Concat bind a
 * number of inputs that grows with the call; Concat already splits itself at maxStorageBuffersPerShaderStage − 1
 * (tf.stack is built on it). Every other program binds at most 5 storage buffers + output (FusedConv2D / fused MatMul
 * with bias and PReLU weights: 5; BatchNorm: 6), within what lib requests: the adapter's own limit (16 on Mesa
 * llvmpipe in compatibility mode, where the default would be 4). test/backend/webgpu-ops.test.ts checks concat of
 * 1 … 40 inputs and AddN of 1 … 40 against the cpu backend.
 *
 * Registering only touches tfjs' kernel registry: it selects no backend and needs no GPU.
 */
import * as tf from '@tensorflow/tfjs';
import { chunkedAddN } from './kernels/add-n-webgpu';
import { webgpuKernelConfigs } from './kernels/webgpu/index';

/** tfjs' own webgpu kernels that a course kernel replaced (tests compare against them, and provoke their bugs). */
export const webgpuOriginals = new Map<string, tf.KernelConfig>();
const ours = new Set<tf.KernelFunc>();
let loaded = false;

/** Load tfjs' webgpu kernels (registers them, and no backend unless navigator.gpu already exists). */
function loadTfjsWebGpu(): void {
  if (loaded) return;
  require('@tensorflow/tfjs-backend-webgpu');
  loaded = true;
}

let addNKernel: tf.KernelFunc | undefined;

function courseConfigs(): tf.KernelConfig[] {
  if (!addNKernel) {
    const original = tf.getKernel('AddN', 'webgpu');
    if (!original) throw new Error('@tensorflow/tfjs-backend-webgpu registered no AddN kernel (expected version 4.22.0)');
    webgpuOriginals.set('AddN', original);
    addNKernel = chunkedAddN(original.kernelFunc);
  }
  return [
    { kernelName: 'AddN', backendName: 'webgpu', kernelFunc: addNKernel },
    ...webgpuKernelConfigs.map((c) => ({ ...c, backendName: 'webgpu' })),
  ];
}

/** Register the course kernels on 'webgpu' and return their names. Idempotent and silent. */
export function registerWebGpuKernels(): string[] {
  loadTfjsWebGpu();
  const configs = courseConfigs();
  for (const config of configs) {
    const current = tf.getKernel(config.kernelName, 'webgpu');
    if (current?.kernelFunc === config.kernelFunc) continue;
    if (current) {
      if (!ours.has(current.kernelFunc)) webgpuOriginals.set(config.kernelName, current);
      tf.unregisterKernel(config.kernelName, 'webgpu'); // replace without tfjs' "already registered" warning
    }
    ours.add(config.kernelFunc);
    tf.registerKernel({ ...config, setupFunc: config.setupFunc ?? current?.setupFunc, disposeFunc: config.disposeFunc ?? current?.disposeFunc });
  }
  return configs.map((c) => c.kernelName);
}

/** Names of the course kernels registered on 'webgpu' now. */
export function webGpuKernelsRegistered(): string[] {
  return webGpuCourseKernelNames()
    .filter((name) => {
      const f = tf.getKernel(name, 'webgpu')?.kernelFunc;
      return f !== undefined && ours.has(f);
    });
}

/** Every course kernel name for 'webgpu'. */
export function webGpuCourseKernelNames(): string[] {
  return [...new Set(['AddN', ...webgpuKernelConfigs.map((c) => c.kernelName)])];
}

/**
 * Put tfjs' own webgpu kernels back in place of the course's kernels `names` (default: all of them; a course kernel
 * that tfjs lacks, e.g. the fused Adam, is simply removed, so that its op falls back to the composite) and return
 * the function that registers the course's again. For comparisons in one process: tests, benchmarks.
 */
export function useTfjsWebGpuKernels(names: string[] = webGpuCourseKernelNames()): () => void {
  registerWebGpuKernels(); // so that tfjs' originals are known
  for (const name of names) {
    const current = tf.getKernel(name, 'webgpu');
    if (!current || !ours.has(current.kernelFunc)) continue;
    tf.unregisterKernel(name, 'webgpu');
    const original = webgpuOriginals.get(name);
    if (original) tf.registerKernel(original);
  }
  return () => { registerWebGpuKernels(); };
}

/** Run `f` with tfjs' own webgpu kernels in place of the course's `names` (default all), then put the course's back. */
export async function withTfjsWebGpuKernels<T>(f: () => T | Promise<T>, names?: string[]): Promise<T> {
  const restore = useTfjsWebGpuKernels(names);
  try {
    return await f();
  } finally {
    restore();
  }
}
