/**
 * The webgpu backend: tfjs' WebGPU kernels (@tensorflow/tfjs-backend-webgpu 4.22) on Dawn's Node binding (npm
 * `webgpu`, optional). Chosen automatically only on a real GPU adapter; DIFFUSION_BACKEND=webgpu forces it, also on
 * a CPU adapter (Mesa llvmpipe: how CI checks the kernels without a GPU).
 *
 * Which Dawn backend (decided in chooseWebGpuAdapter, measured in shared/notes/gpu.md):
 *   Linux    Vulkan, when the Vulkan loader (libvulkan.so.1) exists and a GPU device node does (/dev/dri/renderD*,
 *            /dev/nvidia*, /dev/dxg) or VK_DRIVER_FILES / VK_ICD_FILENAMES names a driver. Without a device node
 *            Vulkan is not probed: Mesa's ICDs would take ~4 s to find nothing but lavapipe, which Dawn rejects.
 *            Forced and no usable Vulkan GPU: Dawn's OpenGL backend in compatibility mode (Mesa's EGL; llvmpipe
 *            without a GPU), with EGL_PLATFORM=surfaceless unless set.
 *   macOS, Windows  Dawn's default (Metal, D3D12).
 *
 * The CPU-adapter rule (cpuAdapterReason): an adapter is a CPU one when it says isFallbackAdapter, or when its vendor,
 * architecture, device or description contains one of CPU_ADAPTER_NAMES (Mesa llvmpipe / softpipe, Mesa's Vulkan
 * lavapipe, Google SwiftShader, Microsoft's WARP "Basic Render Driver", "software rasterizer"). llvmpipe through
 * Dawn's OpenGL backend reports device "llvmpipe-llvm-15-0-6-256-bits-" and isFallbackAdapter false, so the names
 * are needed.
 *
 * Process-global changes, only once the backend starts (installGlobals): the `GPU*` classes and constants that Dawn
 * exports and tfjs' backend uses as globals (GPUBufferUsage, GPUMapMode, GPUBuffer …; existing ones are kept), and
 * `navigator.gpu` (tfjs' WebGPUBackend refuses to start without it; `navigator` is created on Node 20, extended on
 * Node ≥ 21). lib registers its own 'webgpu' factory instead of tfjs' (which tfjs registers only if navigator.gpu
 * existed when the package was first required): it picks the adapter, requests the adapter's own limits (tfjs leaves
 * the storage-buffer limit at its default, 4 in compatibility mode) and guards the device (webgpu-guard.ts).
 *
 * Dawn's instance flags live in dawnFlags() only. DIFFUSION_WEBGPU_PROFILE=1 adds
 * `enable-dawn-features=allow_unsafe_apis`, which exposes timestamp queries: tf.profile then reports kernel times.
 */
import * as fs from 'fs';
import { createRequire } from 'module';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { shortReason } from './select';
import { guardWebGpuBackend, type WebGpuGuard } from './webgpu-guard';
import { registerWebGpuKernels } from './webgpu-kernels';
import type { DawnModule, GpuAdapterInfoLike, GpuAdapterLike, GpuDeviceLike, GpuLike, WebGpuBackendLike } from './webgpu-types';

export const WEBGPU_PROFILE_ENV = 'DIFFUSION_WEBGPU_PROFILE';

/** Substrings (case-insensitive) that mark a CPU implementation of WebGPU / Vulkan / OpenGL. */
export const CPU_ADAPTER_NAMES: readonly string[] = [
  'llvmpipe', 'softpipe', 'lavapipe', 'swiftshader', 'basic render driver', 'software rasterizer',
];

export type DawnBackend = 'vulkan' | 'opengl' | 'default';

/** Dawn's instance flags (`create(flags)`), in one place. */
export function dawnFlags(backend: DawnBackend, env: Record<string, string | undefined>): string[] {
  const flags: string[] = [];
  if (backend !== 'default') flags.push(`backend=${backend}`);
  if (env[WEBGPU_PROFILE_ENV] === '1') flags.push('enable-dawn-features=allow_unsafe_apis');
  return flags;
}

/** Why this adapter is a CPU one (see the rule above), or undefined for a real GPU. */
export function cpuAdapterReason(adapter: Pick<GpuAdapterLike, 'info' | 'isFallbackAdapter'>): string | undefined {
  const info = adapter.info ?? {};
  if (info.isFallbackAdapter === true || adapter.isFallbackAdapter === true) return 'a fallback (CPU) adapter';
  for (const field of ['vendor', 'architecture', 'device', 'description'] as const) {
    const value = info[field] ?? '';
    const name = CPU_ADAPTER_NAMES.find((n) => value.toLowerCase().includes(n));
    if (name) return `a CPU rasterizer (${field} "${value}" contains "${name}")`;
  }
  return undefined;
}

/** "nvidia hopper, NVIDIA H200 (driver …)": what the adapter says about itself. */
export function describeAdapter(info: GpuAdapterInfoLike | undefined): string {
  const i = info ?? {};
  const who = [i.vendor, i.architecture].filter((s) => s).join(' ');
  const parts = [who, i.device].filter((s) => s);
  let text = parts.length > 0 ? parts.join(', ') : 'unnamed adapter';
  if (i.description && i.description !== i.device) text += ` (${i.description})`;
  return text;
}

/** What chooseWebGpuAdapter depends on, injectable so that tests can fake machines and adapters. */
export interface WebGpuHost {
  platform: string;
  env: Record<string, string | undefined>;
  /** require('webgpu'); throws when it is not installed. */
  loadDawn(): DawnModule;
  /** Whether the dynamic linker can find a library such as libvulkan.so.1 (Linux). */
  hasSharedLibrary(name: string): boolean;
  /** GPU device nodes present (Linux). */
  gpuDeviceNodes(): string[];
}

export interface ChosenAdapter {
  /** The Dawn instance (becomes navigator.gpu) and its adapter. */
  gpu: GpuLike;
  adapter: GpuAdapterLike;
  dawnBackend: DawnBackend;
  /** True for compatibility mode (Dawn's OpenGL backend). */
  compatibility: boolean;
  /** Set when it is a CPU adapter (only when forced). */
  cpuReason?: string;
  /** Why Vulkan was not used, when it was not (Linux). */
  vulkanSkipped?: string;
  /** The flags the Dawn instance was created with. */
  flags: string[];
}

/** Wording of the reasons, shared by the loader and the tests. */
export const WEBGPU_FIXES = {
  vulkanLoader: 'no Vulkan loader (libvulkan.so.1 missing: apt-get install libvulkan1)',
  noDevice: 'no GPU device (no /dev/dri/renderD*, /dev/nvidia*, /dev/dxg)',
  noVulkanAdapter: 'no Vulkan adapter (the GPU driver\'s Vulkan ICD is missing: for NVIDIA install the driver\'s Vulkan '
    + 'part and point VK_DRIVER_FILES at its nvidia_icd.json, e.g. /usr/share/vulkan/icd.d/nvidia_icd.json)',
  egl: 'Dawn\'s OpenGL backend needs EGL (libEGL.so.1 missing: apt-get install libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri)',
  noGlAdapter: 'Dawn\'s OpenGL backend found no adapter either (Mesa\'s EGL drivers: apt-get install libegl-mesa0 '
    + 'libgl1-mesa-dri)',
};

/**
 * Node's own require for this file. Inside a notebook, tslab's require resolves the bare name 'webgpu' to a lib file of
 * that name — this one (lib/backend/webgpu.ts) — instead of the npm package.
 */
const nodeRequire = createRequire(__filename);

/** Load Dawn's binding; "not installed" when the optional package is absent. */
export function loadDawnModule(requireFn: (id: string) => unknown = nodeRequire): DawnModule {
  try {
    return requireFn('webgpu') as DawnModule;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e?.code === 'MODULE_NOT_FOUND' && String(e.message).includes("'webgpu'")) {
      throw new Error('not installed (optional npm package webgpu@0.6.2, Dawn\'s Node binding: npm install webgpu@0.6.2)');
    }
    if (e?.code === 'MODULE_NOT_FOUND' || /dawn\.node/.test(String(e?.message))) {
      throw new Error(`the webgpu package has no Dawn build for ${process.platform}-${process.arch}: ${shortReason(err)}`);
    }
    throw new Error(`the webgpu package failed to load: ${shortReason(err)}`);
  }
}

/**
 * Find the adapter to run on (rule and order in the header). Throws an Error whose message is the reason webgpu is
 * not used here (shown in the backend line) and names the fix.
 */
export async function chooseWebGpuAdapter(forced: boolean, host: WebGpuHost): Promise<ChosenAdapter> {
  const dawn = host.loadDawn();
  const forcedHint = 'DIFFUSION_BACKEND=webgpu forces it';
  if (host.platform !== 'linux') {
    const flags = dawnFlags('default', host.env);
    const gpu = dawn.create(flags);
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) throw new Error('no WebGPU adapter (Dawn found no GPU)');
    const cpu = cpuAdapterReason(adapter);
    if (cpu && !forced) throw new Error(`CPU adapter only: ${describeAdapter(adapter.info)} is ${cpu}; ${forcedHint}`);
    return { gpu, adapter, dawnBackend: 'default', compatibility: false, cpuReason: cpu, flags };
  }

  let vulkanSkipped: string | undefined;
  const explicitIcd = host.env.VK_DRIVER_FILES || host.env.VK_ICD_FILENAMES;
  if (!host.hasSharedLibrary('libvulkan.so.1')) vulkanSkipped = WEBGPU_FIXES.vulkanLoader;
  else if (!explicitIcd && host.gpuDeviceNodes().length === 0) vulkanSkipped = WEBGPU_FIXES.noDevice;
  else {
    const flags = dawnFlags('vulkan', host.env);
    const gpu = dawn.create(flags);
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) vulkanSkipped = WEBGPU_FIXES.noVulkanAdapter;
    else {
      const cpu = cpuAdapterReason(adapter);
      if (!cpu || forced) return { gpu, adapter, dawnBackend: 'vulkan', compatibility: false, cpuReason: cpu, flags };
      vulkanSkipped = `CPU adapter only: ${describeAdapter(adapter.info)} is ${cpu}`;
    }
  }
  if (!forced) throw new Error(`${vulkanSkipped}; ${forcedHint}`);

  // Forced without a usable Vulkan GPU: Dawn's OpenGL backend, which needs compatibility mode on Mesa.
  if (!host.hasSharedLibrary('libEGL.so.1')) throw new Error(`${vulkanSkipped}; ${WEBGPU_FIXES.egl}`);
  host.env.EGL_PLATFORM ??= 'surfaceless'; // Mesa's EGL would otherwise look for an X11 / Wayland display
  const flags = dawnFlags('opengl', host.env);
  const gpu = dawn.create(flags);
  const adapter = await gpu.requestAdapter({ featureLevel: 'compatibility', powerPreference: 'high-performance' });
  if (!adapter) throw new Error(`${vulkanSkipped}; ${WEBGPU_FIXES.noGlAdapter} (EGL_PLATFORM=${host.env.EGL_PLATFORM})`);
  return { gpu, adapter, dawnBackend: 'opengl', compatibility: true, cpuReason: cpuAdapterReason(adapter), vulkanSkipped, flags };
}

const LIBRARY_DIRS = [
  '/usr/lib/x86_64-linux-gnu', '/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/lib/aarch64-linux-gnu',
  '/usr/lib64', '/lib64', '/usr/lib', '/lib', '/usr/local/lib',
];

/** The dynamic linker's view, approximately: LD_LIBRARY_PATH, then ld.so's cache, then the usual folders. */
export function hasSharedLibrary(name: string, env: Record<string, string | undefined> = process.env): boolean {
  const dirs = (env.LD_LIBRARY_PATH ?? '').split(':').filter((d) => d);
  if (dirs.some((d) => fs.existsSync(path.join(d, name)))) return true;
  try {
    if (fs.readFileSync('/etc/ld.so.cache').includes(name)) return true; // ldconfig's cache lists every library it knows by name
  } catch {
    // no cache (not glibc): look in the folders
  }
  return LIBRARY_DIRS.some((d) => fs.existsSync(path.join(d, name)));
}

export function gpuDeviceNodes(): string[] {
  const found: string[] = [];
  const list = (dir: string, re: RegExp) => {
    try {
      for (const f of fs.readdirSync(dir)) if (re.test(f)) found.push(path.join(dir, f));
    } catch {
      // folder absent
    }
  };
  list('/dev/dri', /^renderD\d+$/);
  list('/dev', /^(nvidia\d+|dxg)$/);
  return found;
}

export function realWebGpuHost(): WebGpuHost {
  return {
    platform: process.platform,
    env: process.env,
    loadDawn: () => loadDawnModule(),
    hasSharedLibrary: (name) => hasSharedLibrary(name),
    gpuDeviceNodes,
  };
}

/** The globals tfjs' webgpu backend expects (see the header). Returns their names. */
export function installGlobals(dawn: DawnModule, gpu: GpuLike): string[] {
  const g = globalThis as Record<string, unknown>;
  const added: string[] = [];
  for (const [name, value] of Object.entries(dawn.globals)) {
    if (!(name in g)) {
      g[name] = value;
      added.push(name);
    }
  }
  const nav = g.navigator as { gpu?: unknown } | undefined;
  if (nav === undefined) g.navigator = { gpu };
  else if (!nav.gpu) Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true, enumerable: true });
  added.push('navigator.gpu');
  return added;
}

/** Limits lib asks the device for: the adapter's own values, not WebGPU's defaults (see the header). */
export const REQUESTED_LIMITS: readonly string[] = [
  // the six tfjs itself requests
  'maxComputeWorkgroupStorageSize', 'maxComputeWorkgroupsPerDimension', 'maxStorageBufferBindingSize', 'maxBufferSize',
  'maxComputeWorkgroupSizeX', 'maxComputeInvocationsPerWorkgroup',
  // and what tfjs leaves at the default: AddN, Concat and fused ops bind several storage buffers
  'maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupSizeY', 'maxComputeWorkgroupSizeZ',
];

export interface StartedWebGpu {
  backend: WebGpuBackendLike;
  device: GpuDeviceLike;
  guard: WebGpuGuard;
  chosen: ChosenAdapter;
  /** Shown in the backend line. */
  detail: string;
  kernels: string[];
}

let started: StartedWebGpu | undefined;

/** The running webgpu backend that lib started, if any. */
export function startedWebGpu(): StartedWebGpu | undefined {
  return started;
}

/**
 * Start (once per process) and activate the webgpu backend. Not forced: only on a real GPU adapter; forced: on any
 * adapter Dawn can open. Throws with the reason (and fix) when it cannot.
 */
export async function loadWebGpu(options: { forced?: boolean } = {}, host: WebGpuHost = realWebGpuHost()): Promise<StartedWebGpu> {
  if (started && tf.findBackend('webgpu') === (started.backend as unknown)) {
    if (started.chosen.cpuReason && !options.forced) {
      throw new Error(`CPU adapter only: ${describeAdapter(started.chosen.adapter.info)} is ${started.chosen.cpuReason}`);
    }
    if (!(await tf.setBackend('webgpu'))) throw new Error("tf.setBackend('webgpu') returned false");
    return started;
  }
  const chosen = await chooseWebGpuAdapter(options.forced === true, host);
  const { adapter } = chosen;
  const requiredLimits: Record<string, number> = {};
  for (const name of REQUESTED_LIMITS) {
    const v = adapter.limits[name];
    if (typeof v === 'number') requiredLimits[name] = v;
  }
  const requiredFeatures = adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
  let device: GpuDeviceLike;
  try {
    device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'diffusion-course' });
  } catch (err) {
    throw new Error(`the adapter (${describeAdapter(adapter.info)}) refused a device: ${shortReason(err)}`);
  }
  installGlobals(host.loadDawn(), chosen.gpu);
  const kernels = registerWebGpuKernels(); // loads tfjs' webgpu kernels first, then replaces / adds ours
  const { WebGPUBackend } = require('@tensorflow/tfjs-backend-webgpu') as {
    WebGPUBackend: new (device: GpuDeviceLike, info?: GpuAdapterInfoLike) => WebGpuBackendLike;
  };
  const backend = new WebGPUBackend(device, adapter.info);
  const guard = guardWebGpuBackend(backend, device);
  // Ours replaces tfjs' factory, if tfjs registered one (it does when navigator.gpu existed before it was required).
  if (tf.findBackendFactory('webgpu') != null) tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', () => backend as unknown as tf.KernelBackend, 0 /* never tfjs' implicit choice */);
  if (!(await tf.setBackend('webgpu'))) throw new Error("tf.setBackend('webgpu') returned false");

  const dawnName = chosen.dawnBackend === 'vulkan' ? 'Dawn Vulkan'
    : chosen.dawnBackend === 'opengl' ? 'Dawn OpenGL, compatibility mode' : 'Dawn';
  const storage = device.limits.maxStorageBuffersPerShaderStage;
  let detail = `${describeAdapter(adapter.info)}; ${dawnName}; ${storage} storage buffers per shader`;
  if (chosen.cpuReason) detail += `; CPU adapter — ${chosen.cpuReason}: slow, for tests`;
  if (chosen.vulkanSkipped) detail += `; not Vulkan: ${chosen.vulkanSkipped}`;
  if (requiredFeatures.length > 0) detail += '; timestamp queries';
  detail += `; course kernels: ${kernels.join(', ')}`;
  started = { backend, device, guard, chosen, detail, kernels };
  return started;
}
