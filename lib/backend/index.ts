/**
 * Chooses the TensorFlow.js backend once per process and says which, in one line:
 *   gpu  (@tensorflow/tfjs-node-gpu) → webgpu (Dawn, only on a real GPU adapter) → node (@tensorflow/tfjs-node)
 *   → wasm (+ the course's training kernels) → cpu.
 * DIFFUSION_BACKEND=gpu|webgpu|node|wasm|cpu (or initBackend({ prefer })) forces one and fails clearly if it cannot
 * load; forced webgpu also runs on a CPU adapter (Mesa llvmpipe: CI). webgpu details: ./webgpu.ts (selection, Dawn),
 * ./webgpu-guard.ts (WebGPU errors become thrown WebGpuErrors), ./webgpu-kernels.ts (the course's webgpu kernels).
 *
 *   import { initBackend } from './lib/backend';
 *   await initBackend();   // prints e.g. "[diffusion] backend: wasm (…) — skipped gpu: not installed; webgpu: no GPU device …"
 */
import { InvalidArgumentError } from '../errors';
import { registerCpuKernels } from './cpu-kernels';
import { defaultLoaders } from './loaders';
import { BackendName, BackendReport, parseBackendName, selectBackend } from './select';

export type { BackendLoader, BackendLoaders, BackendName, BackendReport, LoadedBackend, SkippedBackend } from './select';
export { BACKEND_ENV_VAR, BACKEND_ORDER, INSTALL_HINTS, parseBackendName, selectBackend } from './select';
export { defaultLoaders } from './loaders';
export { courseKernelNames, registerWasmKernels, wasmKernelsRegistered } from './wasm-kernels';
export { registerCpuKernels } from './cpu-kernels';
export { registerWebGpuKernels, webGpuKernelsRegistered } from './webgpu-kernels';
export { cpuAdapterReason, startedWebGpu, type StartedWebGpu } from './webgpu';

// The cpu backend is used as a fallback and as the reference in tests, whichever backend is selected: correct it now.
registerCpuKernels();

export interface InitBackendOptions {
  /** Force this backend (overrides DIFFUSION_BACKEND). Only the first call chooses. */
  prefer?: BackendName;
  /** Don't print the report line. */
  quiet?: boolean;
}

let pending: Promise<BackendReport> | undefined;
let report: BackendReport | undefined;

/**
 * Select, activate and report the backend. Idempotent: later calls return the same report without printing again
 * (a failed first attempt is not cached, so it can be retried after fixing the cause).
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendReport> {
  const prefer = parseBackendName(options.prefer, 'initBackend({ prefer })');
  if (!pending) {
    pending = selectBackend(defaultLoaders(), process.env, prefer).then(
      (r) => {
        report = r;
        if (!options.quiet) console.log(r.line);
        return r;
      },
      (err: unknown) => {
        pending = undefined;
        throw err;
      },
    );
  }
  const r = await pending;
  if (prefer !== undefined && prefer !== r.name) {
    throw new InvalidArgumentError(
      `initBackend({ prefer: '${prefer}' }): the backend was already chosen as '${r.name}' earlier in this process; `
      + `pass prefer to the first initBackend call, or set DIFFUSION_BACKEND=${prefer} before starting`);
  }
  return r;
}

/** The report of the backend chosen by initBackend, or undefined before it has finished. */
export function currentBackendReport(): BackendReport | undefined {
  return report;
}
