/**
 * Helpers for the backend tests: run the same computation on the cpu backend (the reference: tfjs' own pure-JS
 * kernels, independent of ours) and on wasm or webgpu with the course kernels, and compare elementwise.
 * Values are read with `await data()`: webgpu cannot read synchronously in Node.
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { silenceCpuBanner } from '../../lib/backend/loaders';
import { cpuOriginals, registerCpuKernels } from '../../lib/backend/cpu-kernels';
import { registerWasmKernels } from '../../lib/backend/wasm-kernels';
import { registerWebGpuKernels } from '../../lib/backend/webgpu-kernels';

export type Arrays = Float32Array[] | Int32Array[];

let nativeMode = true;
/** Whether onBackend('wasm') registers the native OpenBLAS kernels (when built) or the wasm course kernels only. */
export function useNativeKernels(native: boolean): void {
  nativeMode = native;
}

/**
 * Run `f` inside tf.tidy on `backend` and return its outputs as plain typed arrays (nothing stays allocated).
 * The course's kernels are registered first unless `register` is false (to run tfjs' originals swapped in by a test).
 */
export async function onBackend(
  backend: 'cpu' | 'wasm' | 'webgpu', f: () => tf.Tensor[], register = true,
): Promise<{ values: Arrays; shapes: number[][] }> {
  if (register) {
    if (backend === 'wasm') registerWasmKernels({ native: nativeMode });
    else if (backend === 'webgpu') registerWebGpuKernels();
    else registerCpuKernels(); // the reference, with its wrong ResizeNearestNeighborGrad corrected
  }
  if (!(await tf.setBackend(backend))) throw new Error(`test set-up: backend ${backend} did not start`);
  if (backend === 'cpu') silenceCpuBanner();
  const outs = tf.tidy(f);
  try {
    const values = (await Promise.all(outs.map((t) => t.data()))).map((v) => v.slice()) as Arrays;
    return { values, shapes: outs.map((t) => t.shape) };
  } finally {
    tf.dispose(outs);
  }
}

/** |got − want| ≤ atol + rtol·|want| elementwise; the message names the output and the worst element. */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, label: string, atol = 1e-4, rtol = 1e-4): void {
  expect(got.length, `${label}: length`).to.equal(want.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < want.length; i++) {
    const excess = Math.abs(got[i] - want[i]) - (atol + rtol * Math.abs(want[i]));
    if (!(excess <= worstExcess)) { worst = i; worstExcess = excess; } // also catches NaN
  }
  if (worst >= 0) {
    expect.fail(`${label}: element ${worst} is ${got[worst]}, cpu gives ${want[worst]} (atol ${atol}, rtol ${rtol})`);
  }
}

/** Compute on cpu, then on wasm, with the same seeded inputs built inside `f`; compare every output. */
export async function expectWasmMatchesCpu(label: string, f: () => tf.Tensor[], atol = 1e-4, rtol = 1e-4): Promise<void> {
  const want = await onBackend('cpu', f);
  const got = await onBackend('wasm', f);
  want.values.forEach((w, i) => {
    expect(got.shapes[i], `${label} output ${i} shape`).to.deep.equal(want.shapes[i]);
    expectClose(got.values[i], w, `${label} output ${i}`, atol, rtol);
  });
}

/** Tensors AND wasm heap buffers alive now (a kernel that forgets a temporary leaks only the latter). */
export function liveCounts(): { tensors: number; dataIds: number } {
  return { tensors: tf.memory().numTensors, dataIds: tf.backend().numDataIds() };
}

/**
 * Run `f` with tfjs' OWN cpu kernel `name` (lib/backend/cpu-kernels replaces a few with faster course versions; an
 * independent reference must be tfjs' original), then put the course's back. Inside, call onBackend('cpu', g, false):
 * registering would put the course's kernel back.
 */
export async function withTfjsCpuKernel<T>(name: string, f: () => Promise<T>): Promise<T> {
  registerCpuKernels();
  const original = cpuOriginals.get(name);
  if (!original) throw new Error(`test set-up: no tfjs original of cpu kernel ${name}`);
  tf.unregisterKernel(name, 'cpu');
  tf.registerKernel(original);
  try {
    return await f();
  } finally {
    tf.unregisterKernel(name, 'cpu');
    registerCpuKernels();
  }
}
