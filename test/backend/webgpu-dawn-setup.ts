/**
 * Starts tfjs' webgpu backend in Node through Dawn (npm `webgpu`), until lib/backend has its own loader for it.
 *
 * Without a GPU (CI, the course machines) Dawn's OpenGL backend on Mesa's llvmpipe runs the WGSL on the CPU: set by
 * default here (`backend=opengl`, compatibility feature level, EGL_PLATFORM=surfaceless). On a machine with a GPU set
 * DIFFUSION_DAWN_ARGS= (empty: Dawn's default, Vulkan) and DIFFUSION_WEBGPU_FEATURE_LEVEL=core.
 *
 * A webgpu test must run in its own mocha process, without test/hooks.ts (which selects one backend per process), and
 * says so with DIFFUSION_WEBGPU_TESTS=1; inside the whole suite (npx mocha 'test/**\/*.test.ts') they skip themselves:
 *   scripts/test-webgpu.sh   (= DIFFUSION_WEBGPU_TESTS=1 npx mocha --no-config -r ts-node/register 'test/backend/webgpu-*.test.ts')
 */
import * as tf from '@tensorflow/tfjs';
import { BackendUnavailableError } from '../../lib/errors';
import { cpuOriginals, registerCpuKernels } from '../../lib/backend/cpu-kernels';
import { silenceCpuBanner } from '../../lib/backend/loaders';
import type { GpuDevice } from '../../lib/backend/kernels/webgpu/program';

interface DawnModule { create(args: string[]): { requestAdapter(o?: object): Promise<unknown>; wgslLanguageFeatures?: unknown }; globals: object }

/**
 * Call first in a webgpu test file's top-level `before`: skips the file's tests unless this process was started for
 * them (DIFFUSION_WEBGPU_TESTS=1), so that the suite's shared process never switches to webgpu under other tests.
 */
export function onlyInWebGPUProcess(ctx: Mocha.Context): void {
  if (process.env.DIFFUSION_WEBGPU_TESTS !== '1') ctx.skip();
}

/** Validation / out-of-memory errors the device reported since start (WebGPU only logs them otherwise). */
export const gpuErrors: string[] = [];

let started: Promise<GpuDevice> | undefined;

export function webgpuStarted(): boolean {
  return started !== undefined;
}

/** Register and activate the webgpu backend once per process; returns its device. */
export function startWebGPU(): Promise<GpuDevice> {
  started ??= (async () => {
    process.env.EGL_PLATFORM ??= 'surfaceless'; // Mesa's EGL without a display; read when Dawn opens EGL
    const g = globalThis as unknown as { navigator?: { gpu?: unknown } };
    if (!g.navigator?.gpu) {
      let dawn: DawnModule;
      try {
        dawn = require('webgpu') as DawnModule;
      } catch (err) {
        throw new BackendUnavailableError(`webgpu tests: npm package 'webgpu' (Dawn for Node) failed to load: ${String(err)}`);
      }
      Object.assign(globalThis, dawn.globals);
      const args = (process.env.DIFFUSION_DAWN_ARGS ?? 'backend=opengl').split(',').filter((s) => s !== '');
      const featureLevel = process.env.DIFFUSION_WEBGPU_FEATURE_LEVEL ?? 'compatibility';
      const gpu = dawn.create(args);
      const nav = {
        gpu: {
          requestAdapter: (o?: object) => gpu.requestAdapter({ ...(o ?? {}), featureLevel }),
          getPreferredCanvasFormat: () => 'rgba8unorm',
          wgslLanguageFeatures: gpu.wgslLanguageFeatures,
        },
      };
      Object.defineProperty(globalThis, 'navigator', { value: nav, configurable: true, writable: true });
    }
    // the package registers 'webgpu' only if navigator.gpu exists when it is first required
    require('@tensorflow/tfjs-backend-webgpu');
    registerCpuKernels();
    if (!(await tf.setBackend('webgpu'))) throw new BackendUnavailableError('webgpu tests: tf.setBackend(\'webgpu\') returned false');
    const device = (tf.backend() as unknown as { device: GpuDevice & { addEventListener?: Function; onuncapturederror?: unknown } }).device;
    const record = (e: { error?: { message?: string } }) => gpuErrors.push(e.error?.message ?? String(e));
    if (typeof device.addEventListener === 'function') device.addEventListener('uncapturederror', record);
    else device.onuncapturederror = record;
    return device;
  })();
  return started;
}

/**
 * Run `f` on `backend` inside tf.tidy and read every output with `await data()` (dataSync throws on webgpu in Node).
 * Nothing stays allocated. On webgpu, a validation error raised meanwhile fails the call.
 */
export async function runOn(backend: 'cpu' | 'webgpu', f: () => tf.Tensor[]): Promise<{ values: Float32Array[]; shapes: number[][] }> {
  if (backend === 'webgpu') await startWebGPU();
  if (!(await tf.setBackend(backend))) throw new BackendUnavailableError(`backend ${backend} did not start`);
  if (backend === 'cpu') silenceCpuBanner();
  const before = gpuErrors.length;
  const outs = tf.tidy(f);
  try {
    const values = (await Promise.all(outs.map((t) => t.data()))).map((v) => Float32Array.from(v as ArrayLike<number>));
    if (gpuErrors.length > before) throw new Error(`WebGPU reported: ${gpuErrors.slice(before).join(' | ')}`);
    return { values, shapes: outs.map((t) => t.shape) };
  } finally {
    tf.dispose(outs);
  }
}

/** Largest |a−b| and the largest |a−b|/max(|b|, floor) — the figures the report quotes. */
export function errorStats(got: ArrayLike<number>, want: ArrayLike<number>, floor = 1e-3): { maxAbs: number; maxRel: number } {
  let maxAbs = 0;
  let maxRel = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= maxAbs)) maxAbs = d; // NaN sticks
    const r = d / Math.max(Math.abs(want[i]), floor);
    if (!(r <= maxRel)) maxRel = r;
  }
  return { maxAbs, maxRel };
}

/** Seeded standard normals as a plain array (the same values on every backend). */
export function normals(n: number, seed: number, scale = 1, shift = 0): Float32Array {
  // a small LCG + Box–Muller: independent of any backend's RNG
  let s = (seed * 2654435761 + 12345) >>> 0;
  const next = () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return (s + 0.5) / 4294967296; };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = Math.sqrt(-2 * Math.log(next()));
    out[i] = shift + scale * r * Math.cos(2 * Math.PI * next());
  }
  return out;
}

/**
 * The number of compute dispatches `f` records (every kernel's, tfjs' and ours: the patched Dawn encoder counts), and
 * how many per pipeline label (tfjs labels a pipeline with its program's class name, ours with the kernel's name).
 */
export function countDispatches<T>(f: () => T): { result: T; dispatches: number; byProgram: Map<string, number> } {
  const proto = (globalThis as unknown as { GPUComputePassEncoder: { prototype: { dispatchWorkgroups: Function; setPipeline: Function } } })
    .GPUComputePassEncoder.prototype;
  const { dispatchWorkgroups, setPipeline } = proto;
  let dispatches = 0;
  let current = '?';
  const byProgram = new Map<string, number>();
  proto.setPipeline = function (this: unknown, p: { label?: string }) {
    current = p?.label || '?';
    return setPipeline.call(this, p);
  };
  proto.dispatchWorkgroups = function (this: unknown, ...args: unknown[]) {
    dispatches++;
    byProgram.set(current, (byProgram.get(current) ?? 0) + 1);
    return dispatchWorkgroups.apply(this, args);
  };
  try {
    return { result: f(), dispatches, byProgram };
  } finally {
    proto.dispatchWorkgroups = dispatchWorkgroups;
    proto.setPipeline = setPipeline;
  }
}

/**
 * Run `f` with tfjs' OWN cpu kernel `name` (lib/backend/cpu-kernels replaces a few with faster course versions; an
 * independent reference must be tfjs' original), then put the course's back.
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
