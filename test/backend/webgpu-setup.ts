/**
 * For test files that run on webgpu (test/backend/webgpu-*.test.ts, which scripts/test.sh runs in a process of their
 * own): `const gpu = useWebGpu();` inside a describe starts lib's webgpu backend FORCED (so Mesa llvmpipe through
 * Dawn's OpenGL backend on a machine without a GPU), once per process, prints its line, and gives the previous
 * backend back afterwards. It skips, with the reason printed, only where this machine cannot run Dawn at all (not
 * Linux without a GPU adapter, or no Dawn build for this platform); on Linux a failure to start is a test failure.
 *
 *   describe('my webgpu kernel', () => {
 *     const gpu = useWebGpu();
 *     it('matches cpu', async () => { await expectWebGpuMatchesCpu('label', () => [...]); });
 *   });
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { loadWebGpu, startedWebGpu, type StartedWebGpu } from '../../lib/backend/webgpu';
import { guardWebGpuBackend, type WebGpuGuard } from '../../lib/backend/webgpu-guard';
import type { GpuDeviceLike, WebGpuBackendLike } from '../../lib/backend/webgpu-types';
import { expectClose, onBackend } from './compare';
import { errors } from './webgpu-cases';

export { errors } from './webgpu-cases';

let printed = false;

function cannotRunHere(reason: string): boolean {
  if (/has no Dawn build for/.test(reason)) return true;
  return process.platform !== 'linux' && /not installed|no WebGPU adapter/.test(reason);
}

export function useWebGpu(): { readonly started: StartedWebGpu } {
  let previous = '';
  const handle = {
    get started(): StartedWebGpu {
      const s = startedWebGpu();
      if (!s) throw new Error('useWebGpu: the webgpu backend has not started (did its before hook fail?)');
      return s;
    },
  };
  before(async function () {
    this.timeout(120000);
    previous = tf.getBackend();
    let s: StartedWebGpu;
    try {
      s = await loadWebGpu({ forced: true });
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      if (cannotRunHere(why)) {
        console.log(`      SKIPPED: webgpu cannot run on this machine (${process.platform}-${process.arch}): ${why}`);
        this.skip();
      }
      throw new Error(`webgpu did not start: ${why}`);
    }
    if (!printed) {
      printed = true;
      const l = s.device.limits;
      console.log(`      [webgpu] ${s.detail}`);
      console.log(`      [webgpu] device limits: ${l.maxStorageBuffersPerShaderStage} storage buffers per shader, `
        + `${l.maxStorageBufferBindingSize} bytes per binding, ${l.maxComputeInvocationsPerWorkgroup} invocations and `
        + `${l.maxComputeWorkgroupStorageSize} bytes of workgroup memory per workgroup`
        + `${s.chosen.compatibility ? ' (compatibility mode: the adapter\'s limits, requested explicitly)' : ''}`);
    }
  });
  after(async () => {
    if (previous) await tf.setBackend(previous);
  });
  return handle;
}

/** Worst errors seen per label, printed by printErrorTable. */
const worst = new Map<string, { abs: number; rel: number }>();

export function recordError(label: string, e: { abs: number; rel: number }): void {
  const w = worst.get(label) ?? { abs: 0, rel: 0 };
  worst.set(label, { abs: Math.max(w.abs, e.abs), rel: Math.max(w.rel, e.rel) });
}

/**
 * Same seeded computation on cpu and on webgpu; every output compared elementwise (|Δ| ≤ atol + rtol·|cpu|) and its
 * errors recorded under `family` for the table.
 */
export async function expectWebGpuMatchesCpu(
  family: string, label: string, f: () => tf.Tensor[], atol = 1e-4, rtol = 1e-4,
): Promise<void> {
  const want = await onBackend('cpu', f);
  const got = await onBackend('webgpu', f);
  expect(got.values.length, `${label}: outputs`).to.equal(want.values.length);
  want.values.forEach((w, i) => {
    expect(got.shapes[i], `${label} output ${i} shape`).to.deep.equal(want.shapes[i]);
    recordError(family, errors(got.values[i], w));
    expectClose(got.values[i], w, `${label} output ${i}`, atol, rtol);
  });
}

/** Print the worst errors per family (test output, so that the report can quote it). */
export function printErrorTable(title: string): void {
  if (worst.size === 0) return;
  console.log(`      ${title}`);
  for (const [label, e] of worst) {
    console.log(`        ${label.padEnd(38)} max |Δ| ${e.abs.toExponential(1).padStart(8)}   max |Δ| / max |cpu| ${e.rel.toExponential(1)}`);
  }
  worst.clear();
}

export interface SecondWebGpu {
  name: string;
  backend: WebGpuBackendLike;
  device: GpuDeviceLike;
  guard: WebGpuGuard;
  /** Remove the backend (destroys its device) and its kernel copies. */
  dispose(): void;
}

/**
 * A second, separately named webgpu backend on its own device (lib's guard installed, tfjs' and the course's webgpu
 * kernels copied to its name): for tests that must not disturb 'webgpu' — losing a device, or other limits.
 * `requiredLimits` undefined = WebGPU's defaults (what tfjs' own factory leaves most limits at).
 */
export async function secondWebGpuBackend(name: string, requiredLimits?: Record<string, number>): Promise<SecondWebGpu> {
  const s = startedWebGpu();
  if (!s) throw new Error('secondWebGpuBackend: start webgpu first (useWebGpu)');
  // A WebGPU adapter hands out one device: ask Dawn for the adapter again.
  const adapter = await s.chosen.gpu.requestAdapter(
    s.chosen.compatibility ? { featureLevel: 'compatibility' } : { powerPreference: 'high-performance' });
  if (!adapter) throw new Error('secondWebGpuBackend: Dawn gave no second adapter');
  const device = await adapter.requestDevice(requiredLimits ? { requiredLimits } : {});
  const { WebGPUBackend } = require('@tensorflow/tfjs-backend-webgpu') as {
    WebGPUBackend: new (d: GpuDeviceLike, info?: object) => WebGpuBackendLike;
  };
  const backend = new WebGPUBackend(device, adapter.info);
  const guard = guardWebGpuBackend(backend, device);
  const kernels = tf.getKernelsForBackend('webgpu');
  for (const k of kernels) tf.registerKernel({ ...k, backendName: name });
  tf.registerBackend(name, () => backend as unknown as tf.KernelBackend, 0);
  return {
    name, backend, device, guard,
    dispose: () => {
      if (tf.getBackend() === name) throw new Error(`switch away from ${name} before disposing it`);
      tf.removeBackend(name);
      for (const k of kernels) tf.unregisterKernel(k.kernelName, name);
    },
  };
}
