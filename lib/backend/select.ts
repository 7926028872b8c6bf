/**
 * Backend selection, kept free of real packages so that tests can inject loaders that simulate a missing or broken
 * tfjs-node-gpu / tfjs-node / WebGPU. Order: gpu → webgpu → node → wasm → cpu; DIFFUSION_BACKEND (or `prefer`)
 * forces one.
 */
import { BackendUnavailableError, InvalidArgumentError } from '../errors';

export type BackendName = 'gpu' | 'webgpu' | 'node' | 'wasm' | 'cpu';
export const BACKEND_ORDER: readonly BackendName[] = ['gpu', 'webgpu', 'node', 'wasm', 'cpu'];
export const BACKEND_ENV_VAR = 'DIFFUSION_BACKEND';

/** What a loader reports after it has made its backend the active one. */
export interface LoadedBackend {
  /** Shown in parentheses after the name, e.g. 'SIMD, 1 thread, course kernels: …'. */
  detail: string;
  /** Kernels the course registered for this backend (wasm, webgpu). */
  kernels: string[];
}

/**
 * Loads one backend and makes it the active tfjs backend; throws when it cannot (the error's first line becomes the
 * reason shown to the user). A loader must not leave another backend active when it fails. `forced` is true when
 * the user asked for this backend (webgpu then accepts a CPU adapter).
 */
export type BackendLoader = (options: { forced: boolean }) => Promise<LoadedBackend>;
export type BackendLoaders = Record<BackendName, BackendLoader>;

export interface SkippedBackend { name: BackendName; why: string }

export interface BackendReport {
  name: BackendName;
  /** The one line printed at start-up, e.g. `[diffusion] backend: wasm (…) — skipped gpu: not installed; node: …`. */
  line: string;
  skipped: SkippedBackend[];
  kernels: string[];
}

/** How to get each backend, for the error raised when a forced one cannot load. */
export const INSTALL_HINTS: Record<BackendName, string> = {
  gpu: 'install it with `npm install @tensorflow/tfjs-node-gpu@4.22.0` on a machine with internet access '
    + '(its install downloads libtensorflow); it needs Linux x64, an NVIDIA GPU, CUDA 11.2 and cuDNN 8.1 '
    + '(CUDA 12 does not work with tfjs-node-gpu 4.22)',
  webgpu: 'it needs the optional npm package webgpu@0.6.2 (Dawn\'s Node binding; `npm ci` installs it) and, on Linux, '
    + 'a GPU with its Vulkan driver: `apt-get install libvulkan1` plus the driver\'s Vulkan ICD (NVIDIA: nvidia_icd.json, '
    + 'e.g. VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json); without a GPU, Mesa\'s llvmpipe '
    + 'through Dawn\'s OpenGL backend: `apt-get install libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri`',
  node: 'install it with `npm install @tensorflow/tfjs-node@4.22.0` on a machine with internet access '
    + '(its install downloads libtensorflow)',
  wasm: 'reinstall the dependencies with `npm ci` (@tensorflow/tfjs-backend-wasm 4.22.0 is a dependency)',
  cpu: 'reinstall the dependencies with `npm ci` (@tensorflow/tfjs is a dependency)',
};

/** Parse a backend name; '' or undefined means "not forced". Unknown names are an InvalidArgumentError. */
export function parseBackendName(value: string | undefined, source: string): BackendName | undefined {
  if (value === undefined) return undefined;
  const v = value.trim().toLowerCase();
  if (v === '') return undefined;
  if ((BACKEND_ORDER as readonly string[]).includes(v)) return v as BackendName;
  throw new InvalidArgumentError(
    `${source} = '${value}' is not a backend: expected one of ${BACKEND_ORDER.join(', ')} (or unset for automatic choice)`);
}

/** The first line of an error, without the stack, shortened: enough to say why a backend was skipped. */
export function shortReason(err: unknown, max = 140): string {
  const text = err instanceof Error ? err.message : String(err);
  const first = text.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? 'unknown error';
  return first.length > max ? `${first.slice(0, max - 1)}…` : first;
}

function formatLine(name: BackendName, loaded: LoadedBackend, skipped: SkippedBackend[], forcedBy?: string): string {
  let line = `[diffusion] backend: ${name}`;
  if (loaded.detail) line += ` (${loaded.detail})`;
  if (forcedBy) line += ` — forced by ${forcedBy}`;
  if (skipped.length > 0) line += ` — skipped ${skipped.map((s) => `${s.name}: ${s.why}`).join('; ')}`;
  return line;
}

/**
 * Try the backends in order (or only the forced one) and return the report of the first that loads.
 * `env` is where DIFFUSION_BACKEND is read (process.env in real use); `prefer` overrides it.
 */
export async function selectBackend(
  loaders: BackendLoaders,
  env: Record<string, string | undefined>,
  prefer?: BackendName,
): Promise<BackendReport> {
  const forced = prefer !== undefined
    ? parseBackendName(prefer, 'initBackend({ prefer })')
    : parseBackendName(env[BACKEND_ENV_VAR], BACKEND_ENV_VAR);
  if (forced !== undefined) {
    const forcedBy = prefer !== undefined ? `initBackend({ prefer: '${forced}' })` : `${BACKEND_ENV_VAR}=${forced}`;
    let loaded: LoadedBackend;
    try {
      loaded = await loaders[forced]({ forced: true });
    } catch (err) {
      throw new BackendUnavailableError(
        `backend '${forced}' was requested by ${forcedBy} but cannot be used here: ${shortReason(err, 400)}. `
        + `To fix: ${INSTALL_HINTS[forced]}; or unset ${BACKEND_ENV_VAR} to let the course choose.`);
    }
    return { name: forced, line: formatLine(forced, loaded, [], forcedBy), skipped: [], kernels: loaded.kernels };
  }
  const skipped: SkippedBackend[] = [];
  for (const name of BACKEND_ORDER) {
    try {
      const loaded = await loaders[name]({ forced: false });
      return { name, line: formatLine(name, loaded, skipped), skipped, kernels: loaded.kernels };
    } catch (err) {
      skipped.push({ name, why: shortReason(err) });
    }
  }
  throw new BackendUnavailableError(
    `no TensorFlow.js backend could be loaded (${skipped.map((s) => `${s.name}: ${s.why}`).join('; ')}). `
    + `To fix: ${INSTALL_HINTS.cpu}.`);
}
