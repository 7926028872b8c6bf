/**
 * The real loaders behind selectBackend: each loads its package, makes its backend the active one (checking the
 * boolean tf.setBackend returns: tf.getBackend() can still name a backend that failed) and describes it.
 */
import * as tf from '@tensorflow/tfjs';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import type { BackendLoaders, LoadedBackend } from './select';
import { shortReason } from './select';
import { registerCpuKernels } from './cpu-kernels';
import { loadBlasAddon, nativeUnavailableReason } from './kernels/native-blas';
import { nativeKernelsRegistered, registerWasmKernels } from './wasm-kernels';
import { loadWebGpu } from './webgpu';

/** True when `require(pkg)` failed because the package itself is absent (not because something inside it broke). */
function isNotInstalled(err: unknown, pkg: string): boolean {
  const e = err as NodeJS.ErrnoException;
  return e?.code === 'MODULE_NOT_FOUND' && typeof e.message === 'string' && e.message.includes(`'${pkg}'`);
}

/** Require a tfjs-node flavour. Both register the backend 'tensorflow' on the shared tfjs-core when they load. */
export function loadTensorflowPackage(pkg: string, requireFn: (id: string) => unknown = require): void {
  try {
    requireFn(pkg);
  } catch (err) {
    if (isNotInstalled(err, pkg)) throw new Error('not installed');
    throw new Error(`installed but failed to load: ${shortReason(err)}`);
  }
  if (tf.findBackendFactory('tensorflow') == null) {
    throw new Error(`${pkg} loaded but registered no 'tensorflow' backend on this @tensorflow/tfjs `
      + '(two copies of @tensorflow/tfjs-core? pin every @tensorflow/* package to 4.22.0)');
  }
}

async function activate(tfName: string): Promise<void> {
  let ok = false;
  try {
    ok = await tf.setBackend(tfName);
  } catch (err) {
    throw new Error(`tf.setBackend('${tfName}') failed: ${shortReason(err)}`);
  }
  if (!ok) throw new Error(`tf.setBackend('${tfName}') returned false (its initialisation failed; see the warning above)`);
}

async function loadTensorflow(pkg: string): Promise<LoadedBackend> {
  // libtensorflow logs start-up chatter (CPU features, CUDA libraries) to stderr; keep warnings and errors only.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  loadTensorflowPackage(pkg);
  await activate('tensorflow');
  return { detail: `${pkg}, native TensorFlow`, kernels: [] };
}

async function loadWasm(): Promise<LoadedBackend> {
  // Register before activating, so the kernels exist from the first op; registration is idempotent.
  const kernels = registerWasmKernels();
  await activate('wasm');
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const threads = getThreadsCount();
  const native = nativeKernelsRegistered();
  const lib = loadBlasAddon();
  const nativePart = lib && native.length > 0
    ? `native OpenBLAS kernels (${lib.corename()}, ${lib.threads()} thread${lib.threads() === 1 ? '' : 's'}): ${native.join(', ')}; `
    : `no native kernels (${nativeUnavailableReason() || 'not registered'}); `;
  const wasmOnly = kernels.filter((k) => !native.includes(k));
  const detail = `${simd ? 'SIMD' : 'no SIMD'}, ${threads} thread${threads === 1 ? '' : 's'}, ${nativePart}`
    + `course kernels: ${wasmOnly.join(', ')}`;
  return { detail, kernels };
}

/**
 * tfjs' cpu backend prints a multi-line "install tfjs-node" banner on its first tensor; the report line already says
 * what matters. (Sets a private flag of the cpu backend instance; harmless if a later tfjs renames it.)
 */
export function silenceCpuBanner(): void {
  const cpu = tf.findBackend('cpu') as unknown as { firstUse?: boolean } | null;
  if (cpu) cpu.firstUse = false;
}

async function loadCpu(): Promise<LoadedBackend> {
  registerCpuKernels();
  await activate('cpu');
  silenceCpuBanner();
  return { detail: 'pure JavaScript: training will be very slow, expect minutes per step', kernels: [] };
}

async function loadWebGpuBackend(options: { forced: boolean }): Promise<LoadedBackend> {
  const started = await loadWebGpu(options);
  return { detail: started.detail, kernels: started.kernels };
}

export function defaultLoaders(): BackendLoaders {
  return {
    gpu: () => loadTensorflow('@tensorflow/tfjs-node-gpu'),
    webgpu: loadWebGpuBackend,
    node: () => loadTensorflow('@tensorflow/tfjs-node'),
    wasm: loadWasm,
    cpu: loadCpu,
  };
}
