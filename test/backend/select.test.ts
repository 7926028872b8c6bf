import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { BackendUnavailableError, InvalidArgumentError } from '../../lib/errors';
import {
  BackendLoaders, BackendName, currentBackendReport, defaultLoaders, initBackend, selectBackend,
} from '../../lib/backend';
import { loadTensorflowPackage } from '../../lib/backend/loaders';
import { loadBlasAddon } from '../../lib/backend/kernels/native-blas';
import {
  chooseWebGpuAdapter, CPU_ADAPTER_NAMES, cpuAdapterReason, dawnFlags, describeAdapter, loadDawnModule, WEBGPU_FIXES,
  type WebGpuHost,
} from '../../lib/backend/webgpu';
import type { GpuAdapterInfoLike, GpuAdapterLike } from '../../lib/backend/webgpu-types';
import { failure } from '../math/helpers';

/** Fake loaders: each either "loads" (returns a detail) or throws the given reason; calls are recorded in order. */
function fakeLoaders(fail: Partial<Record<BackendName, string>>): { loaders: BackendLoaders; calls: BackendName[] } {
  const calls: BackendName[] = [];
  const make = (name: BackendName) => async () => {
    calls.push(name);
    const why = fail[name];
    if (why !== undefined) throw new Error(`${why}\n    at some stack frame`);
    return { detail: `${name} detail`, kernels: name === 'wasm' ? ['Conv2DBackpropFilter'] : [] };
  };
  return { loaders: { gpu: make('gpu'), webgpu: make('webgpu'), node: make('node'), wasm: make('wasm'), cpu: make('cpu') }, calls };
}

describe('backend selection', () => {
  let previous: string;
  before(() => { previous = tf.getBackend(); });
  after(async () => { await tf.setBackend(previous); });

  it('gpu, webgpu and node absent → wasm, and the line says why each was skipped', async () => {
    const { loaders, calls } = fakeLoaders({
      gpu: 'not installed', webgpu: 'no GPU device', node: 'installed but failed to load: libcudart.so.11.0',
    });
    const r = await selectBackend(loaders, {});
    expect(r.name).to.equal('wasm');
    expect(calls).to.deep.equal(['gpu', 'webgpu', 'node', 'wasm']);
    expect(r.skipped).to.deep.equal([
      { name: 'gpu', why: 'not installed' },
      { name: 'webgpu', why: 'no GPU device' },
      { name: 'node', why: 'installed but failed to load: libcudart.so.11.0' },
    ]);
    expect(r.kernels).to.deep.equal(['Conv2DBackpropFilter']);
    expect(r.line).to.equal('[diffusion] backend: wasm (wasm detail) — skipped gpu: not installed; webgpu: no GPU device; '
      + 'node: installed but failed to load: libcudart.so.11.0');
    expect(r.line).to.not.include('\n');
  });

  it('a loading gpu is chosen first and nothing after it is tried', async () => {
    const { loaders, calls } = fakeLoaders({});
    const r = await selectBackend(loaders, {});
    expect(r.name).to.equal('gpu');
    expect(calls).to.deep.equal(['gpu']);
    expect(r.skipped).to.deep.equal([]);
    expect(r.line).to.equal('[diffusion] backend: gpu (gpu detail)');
  });

  it('webgpu comes second: after tfjs-node-gpu, before tfjs-node', async () => {
    const { loaders, calls } = fakeLoaders({ gpu: 'not installed' });
    const r = await selectBackend(loaders, {});
    expect(r.name).to.equal('webgpu');
    expect(calls).to.deep.equal(['gpu', 'webgpu']);
  });

  it('loaders learn whether they were forced (webgpu accepts a CPU adapter only then)', async () => {
    const seen: boolean[] = [];
    const { loaders } = fakeLoaders({ gpu: 'not installed' });
    loaders.webgpu = async (o) => { seen.push(o.forced); return { detail: 'x', kernels: [] }; };
    await selectBackend(loaders, {});
    await selectBackend(loaders, { DIFFUSION_BACKEND: 'webgpu' });
    expect(seen).to.deep.equal([false, true]);
  });

  it('falls through to cpu when wasm fails too', async () => {
    const { loaders } = fakeLoaders({ gpu: 'not installed', webgpu: 'no GPU device', node: 'not installed', wasm: "tf.setBackend('wasm') returned false" });
    const r = await selectBackend(loaders, {});
    expect(r.name).to.equal('cpu');
    expect(r.skipped.map((s) => s.name)).to.deep.equal(['gpu', 'webgpu', 'node', 'wasm']);
  });

  it('forced webgpu that cannot start → BackendUnavailableError naming the packages to install', async () => {
    const { loaders, calls } = fakeLoaders({ webgpu: 'no Vulkan loader (libvulkan.so.1 missing: apt-get install libvulkan1)' });
    const err = await failure(() => selectBackend(loaders, { DIFFUSION_BACKEND: 'webgpu' }));
    expect(err).to.be.instanceOf(BackendUnavailableError);
    expect(err.message).to.include('DIFFUSION_BACKEND=webgpu').and.include('apt-get install libvulkan1')
      .and.include('webgpu@0.6.2').and.include('nvidia_icd.json').and.include('libegl-mesa0');
    expect(calls).to.deep.equal(['webgpu']);
  });

  it('forced gpu that is absent → BackendUnavailableError with the install command and the CUDA/cuDNN versions', async () => {
    const { loaders, calls } = fakeLoaders({ gpu: 'not installed' });
    const err = await failure(() => selectBackend(loaders, { DIFFUSION_BACKEND: 'gpu' }));
    expect(err).to.be.instanceOf(BackendUnavailableError);
    expect(err.message).to.include('DIFFUSION_BACKEND=gpu').and.include('not installed')
      .and.include('npm install @tensorflow/tfjs-node-gpu@4.22.0').and.include('CUDA 11.2').and.include('cuDNN 8.1');
    expect(calls).to.deep.equal(['gpu']); // no silent fallback when a backend was asked for
  });

  it('forced node that is absent → BackendUnavailableError naming the tfjs-node install', async () => {
    const { loaders } = fakeLoaders({ node: 'not installed' });
    const err = await failure(() => selectBackend(loaders, { DIFFUSION_BACKEND: 'node' }));
    expect(err).to.be.instanceOf(BackendUnavailableError);
    expect(err.message).to.include('npm install @tensorflow/tfjs-node@4.22.0');
  });

  it('forced cpu works and skips the others; prefer overrides the environment', async () => {
    const a = fakeLoaders({});
    const r = await selectBackend(a.loaders, { DIFFUSION_BACKEND: ' CPU ' });
    expect(r.name).to.equal('cpu');
    expect(a.calls).to.deep.equal(['cpu']);
    expect(r.line).to.equal('[diffusion] backend: cpu (cpu detail) — forced by DIFFUSION_BACKEND=cpu');
    const b = fakeLoaders({});
    const r2 = await selectBackend(b.loaders, { DIFFUSION_BACKEND: 'cpu' }, 'wasm');
    expect(r2.name).to.equal('wasm');
    expect(r2.line).to.include("forced by initBackend({ prefer: 'wasm' })");
  });

  it('an unknown name is an InvalidArgumentError; an empty one means automatic', async () => {
    const { loaders, calls } = fakeLoaders({});
    const err = await failure(() => selectBackend(loaders, { DIFFUSION_BACKEND: 'cuda' }));
    expect(err).to.be.instanceOf(InvalidArgumentError);
    expect(err.message).to.include("'cuda'").and.include('gpu, webgpu, node, wasm, cpu');
    expect(calls).to.deep.equal([]);
    expect((await selectBackend(loaders, { DIFFUSION_BACKEND: '' })).name).to.equal('gpu');
  });

  it('every backend failing → BackendUnavailableError listing each reason', async () => {
    const { loaders } = fakeLoaders({ gpu: 'a', webgpu: 'w', node: 'b', wasm: 'c', cpu: 'd' });
    const err = await failure(() => selectBackend(loaders, {}));
    expect(err).to.be.instanceOf(BackendUnavailableError);
    expect(err.message).to.include('gpu: a; webgpu: w; node: b; wasm: c; cpu: d');
  });

  it('the real tfjs-node loaders tell "not installed" from "installed but broken"', () => {
    const missing = (id: string) => {
      const e = new Error(`Cannot find module '${id}'\nRequire stack: …`) as NodeJS.ErrnoException;
      e.code = 'MODULE_NOT_FOUND';
      throw e;
    };
    expect(() => loadTensorflowPackage('@tensorflow/tfjs-node-gpu', missing)).to.throw(/^not installed$/);
    const broken = () => {
      throw new Error('The Node.js native addon module (tfjs_binding.node) can not be found at path: /x\nmore');
    };
    expect(() => loadTensorflowPackage('@tensorflow/tfjs-node', broken))
      .to.throw(/^installed but failed to load: The Node.js native addon module \(tfjs_binding.node\) can not be found/);
    // Loads but registers nothing on our tfjs-core (a second copy of it): said plainly, not a silent cpu fallback.
    const registersNothing = () => ({});
    if (tf.findBackendFactory('tensorflow') == null) {
      expect(() => loadTensorflowPackage('@tensorflow/tfjs-node', registersNothing)).to.throw(/two copies of @tensorflow\/tfjs-core/);
    }
  });

  it('the real gpu loader reports "not installed" where the package is absent', async function () {
    try {
      require.resolve('@tensorflow/tfjs-node-gpu');
      this.skip(); // installed on this machine: nothing to check here
    } catch {
      const err = await failure(() => defaultLoaders().gpu({ forced: false }));
      expect(err.message).to.equal('not installed');
    }
  });

  it('the real cpu and wasm loaders activate their backend and describe it', async () => {
    const loaders = defaultLoaders();
    const cpu = await loaders.cpu({ forced: false });
    expect(tf.getBackend()).to.equal('cpu');
    expect(cpu.detail).to.match(/training will be very slow/);
    const wasm = await loaders.wasm({ forced: false });
    expect(tf.getBackend()).to.equal('wasm');
    expect(wasm.kernels).to.include('UnsortedSegmentSum');
    if (loadBlasAddon()) {
      expect(wasm.detail).to.match(/SIMD, \d+ threads?, native OpenBLAS kernels \(\w+, \d+ threads?\): Conv2D, FusedConv2D, .*; course kernels: UnsortedSegmentSum/);
      expect(wasm.kernels).to.include('Conv2D');
    } else {
      expect(wasm.detail).to.match(/SIMD, \d+ threads?, no native kernels \(.+\); course kernels: Conv2DBackpropFilter, Conv2DBackpropInput/);
    }
  });

  it('initBackend is idempotent, prints nothing the second time, and refuses a conflicting prefer', async () => {
    const log = console.log;
    const printed: unknown[] = [];
    console.log = (...a: unknown[]) => { printed.push(a); };
    try {
      const first = await initBackend();
      const again = await initBackend();
      expect(again).to.equal(first);
      expect(currentBackendReport()).to.equal(first);
      expect(await initBackend({ prefer: first.name })).to.equal(first);
      const other: BackendName = first.name === 'cpu' ? 'wasm' : 'cpu';
      const err = await failure(() => initBackend({ prefer: other }));
      expect(err).to.be.instanceOf(InvalidArgumentError);
      expect(err.message).to.include(`already chosen as '${first.name}'`);
      const bad = await failure(() => initBackend({ prefer: 'tpu' as BackendName }));
      expect(bad).to.be.instanceOf(InvalidArgumentError);
    } finally {
      console.log = log;
    }
    expect(printed).to.have.length(0);
  });
});

describe('webgpu: which adapter, and why not (fake machines and adapters)', () => {
  type Info = GpuAdapterInfoLike;
  const NVIDIA: Info = { vendor: 'nvidia', architecture: 'hopper', device: 'NVIDIA H200', description: 'NVIDIA: 570.86.15' };
  // What Dawn's OpenGL backend reported for Mesa llvmpipe on the course's CPU machine (compatibility mode).
  const LLVMPIPE_GL: Info = { vendor: '', architecture: '', device: 'llvmpipe-llvm-15-0-6-256-bits-', description: 'OpenGL version 4.5 (Core Profile) Mesa 22.3.6', isFallbackAdapter: false };
  const LAVAPIPE: Info = { vendor: 'mesa', architecture: '', device: 'llvmpipe (LLVM 17.0.6, 256 bits)', description: 'Mesa 24.0.5 lavapipe' };

  function adapter(info: Info, extra: Partial<GpuAdapterLike> = {}): GpuAdapterLike {
    return {
      info, features: { has: () => false }, limits: { maxStorageBuffersPerShaderStage: 8 },
      requestDevice: async () => { throw new Error('not in these tests'); }, ...extra,
    };
  }

  interface FakeMachine {
    platform?: string; env?: Record<string, string | undefined>; libs?: string[]; nodes?: string[];
    adapters?: Partial<Record<'vulkan' | 'opengl' | 'default', GpuAdapterLike | null>>; noDawn?: boolean;
  }
  function fakeHost(m: FakeMachine): { host: WebGpuHost; created: string[][]; requests: object[] } {
    const created: string[][] = [];
    const requests: object[] = [];
    const host: WebGpuHost = {
      platform: m.platform ?? 'linux',
      env: m.env ?? {},
      loadDawn: () => {
        if (m.noDawn) return loadDawnModule(() => { const e = new Error("Cannot find module 'webgpu'") as NodeJS.ErrnoException; e.code = 'MODULE_NOT_FOUND'; throw e; });
        return {
          globals: {},
          create: (flags: string[]) => {
            created.push(flags);
            const which = flags.find((f) => f.startsWith('backend='))?.slice(8) ?? 'default';
            return { requestAdapter: async (o?: object) => { requests.push(o ?? {}); return m.adapters?.[which as 'vulkan'] ?? null; } };
          },
        };
      },
      hasSharedLibrary: (name) => (m.libs ?? ['libvulkan.so.1', 'libEGL.so.1']).includes(name),
      gpuDeviceNodes: () => m.nodes ?? [],
    };
    return { host, created, requests };
  }

  it('the CPU-adapter rule: isFallbackAdapter, or a CPU rasterizer\'s name in vendor/architecture/device/description', () => {
    expect(cpuAdapterReason(adapter(NVIDIA))).to.equal(undefined);
    for (const gpu of [
      { vendor: 'apple', architecture: 'metal-3', device: '', description: '' },
      { vendor: 'intel', architecture: 'gen-12lp', device: '', description: 'Intel(R) UHD Graphics 770' },
      { vendor: 'amd', architecture: 'rdna-3', device: '', description: 'AMD Radeon RX 7900 XTX' },
    ]) expect(cpuAdapterReason(adapter(gpu)), gpu.vendor).to.equal(undefined);
    expect(cpuAdapterReason(adapter(LLVMPIPE_GL))).to.match(/CPU rasterizer \(device "llvmpipe-llvm-15-0-6-256-bits-" contains "llvmpipe"\)/);
    expect(cpuAdapterReason(adapter(LAVAPIPE))).to.match(/CPU rasterizer/);
    expect(cpuAdapterReason(adapter({ vendor: 'google', architecture: 'swiftshader', device: 'SwiftShader Device (Subzero)' }))).to.match(/swiftshader/);
    expect(cpuAdapterReason(adapter({ vendor: 'microsoft', description: 'Microsoft Basic Render Driver' }))).to.match(/basic render driver/);
    expect(cpuAdapterReason(adapter({ vendor: 'x', isFallbackAdapter: true }))).to.equal('a fallback (CPU) adapter');
    expect(cpuAdapterReason(adapter({ vendor: 'x' }, { isFallbackAdapter: true }))).to.equal('a fallback (CPU) adapter');
    expect(CPU_ADAPTER_NAMES).to.include.members(['llvmpipe', 'lavapipe', 'swiftshader']);
    expect(describeAdapter(NVIDIA)).to.equal('nvidia hopper, NVIDIA H200 (NVIDIA: 570.86.15)');
    expect(describeAdapter({})).to.equal('unnamed adapter');
  });

  it('Linux with an NVIDIA GPU: Vulkan, high-performance, chosen without being forced', async () => {
    const { host, created, requests } = fakeHost({ nodes: ['/dev/nvidia0'], adapters: { vulkan: adapter(NVIDIA) } });
    const c = await chooseWebGpuAdapter(false, host);
    expect(c.dawnBackend).to.equal('vulkan');
    expect(c.compatibility).to.equal(false);
    expect(c.cpuReason).to.equal(undefined);
    expect(created).to.deep.equal([['backend=vulkan']]);
    expect(requests).to.deep.equal([{ powerPreference: 'high-performance' }]);
  });

  it('no GPU device node: Vulkan is not even probed; not forced → the reason; forced → OpenGL compatibility on llvmpipe', async () => {
    const a = fakeHost({ adapters: { opengl: adapter(LLVMPIPE_GL) } });
    const err = await failure(() => chooseWebGpuAdapter(false, a.host));
    expect(err.message).to.equal(`${WEBGPU_FIXES.noDevice}; DIFFUSION_BACKEND=webgpu forces it`);
    expect(a.created).to.deep.equal([]);
    const c = await chooseWebGpuAdapter(true, a.host);
    expect(c.dawnBackend).to.equal('opengl');
    expect(c.compatibility).to.equal(true);
    expect(c.cpuReason).to.match(/llvmpipe/);
    expect(c.vulkanSkipped).to.equal(WEBGPU_FIXES.noDevice);
    expect(a.created).to.deep.equal([['backend=opengl']]);
    expect(a.requests).to.deep.equal([{ featureLevel: 'compatibility', powerPreference: 'high-performance' }]);
    expect(a.host.env.EGL_PLATFORM).to.equal('surfaceless');
    const b = fakeHost({ env: { EGL_PLATFORM: 'x11' }, adapters: { opengl: adapter(LLVMPIPE_GL) } });
    await chooseWebGpuAdapter(true, b.host);
    expect(b.host.env.EGL_PLATFORM, 'a value the user set is kept').to.equal('x11');
  });

  it('the reasons name the fix: Vulkan loader, the NVIDIA ICD, EGL, the npm package', async () => {
    const noLoader = fakeHost({ libs: ['libEGL.so.1'], nodes: ['/dev/nvidia0'] });
    expect((await failure(() => chooseWebGpuAdapter(false, noLoader.host))).message).to.include('apt-get install libvulkan1');
    const noIcd = fakeHost({ env: { VK_DRIVER_FILES: '/nowhere/nvidia_icd.json' }, adapters: { vulkan: null } });
    const e2 = await failure(() => chooseWebGpuAdapter(false, noIcd.host));
    expect(e2.message).to.include('no Vulkan adapter').and.include('VK_DRIVER_FILES').and.include('nvidia_icd.json');
    expect(noIcd.created, 'VK_DRIVER_FILES makes it probe Vulkan without a device node').to.deep.equal([['backend=vulkan']]);
    const noEgl = fakeHost({ libs: ['libvulkan.so.1'] });
    const e3 = await failure(() => chooseWebGpuAdapter(true, noEgl.host));
    expect(e3.message).to.include(WEBGPU_FIXES.noDevice).and.include('apt-get install libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri');
    const noGl = fakeHost({ adapters: { opengl: null } });
    expect((await failure(() => chooseWebGpuAdapter(true, noGl.host))).message).to.include('OpenGL backend found no adapter');
    const noDawn = fakeHost({ noDawn: true });
    expect((await failure(() => chooseWebGpuAdapter(false, noDawn.host))).message).to.match(/^not installed \(optional npm package webgpu@0\.6\.2/);
  });

  it('a CPU Vulkan adapter (lavapipe) is skipped unless forced', async () => {
    const m = { nodes: ['/dev/dri/renderD128'], adapters: { vulkan: adapter(LAVAPIPE) } };
    const err = await failure(() => chooseWebGpuAdapter(false, fakeHost(m).host));
    expect(err.message).to.match(/^CPU adapter only: mesa, llvmpipe \(LLVM 17\.0\.6, 256 bits\) \(Mesa 24\.0\.5 lavapipe\) is a CPU rasterizer .*; DIFFUSION_BACKEND=webgpu forces it$/);
    const c = await chooseWebGpuAdapter(true, fakeHost(m).host);
    expect(c.dawnBackend).to.equal('vulkan');
    expect(c.cpuReason).to.match(/CPU rasterizer/);
  });

  it('macOS / Windows: Dawn\'s default backend; DIFFUSION_WEBGPU_PROFILE=1 adds the timestamp-query toggle, only then', async () => {
    const mac = fakeHost({ platform: 'darwin', adapters: { default: adapter({ vendor: 'apple', architecture: 'metal-3' }) } });
    const c = await chooseWebGpuAdapter(false, mac.host);
    expect(c.dawnBackend).to.equal('default');
    expect(mac.created).to.deep.equal([[]]);
    const prof = fakeHost({ platform: 'win32', env: { DIFFUSION_WEBGPU_PROFILE: '1' }, adapters: { default: adapter(NVIDIA) } });
    await chooseWebGpuAdapter(false, prof.host);
    expect(prof.created).to.deep.equal([['enable-dawn-features=allow_unsafe_apis']]);
    expect(dawnFlags('vulkan', { DIFFUSION_WEBGPU_PROFILE: '0' })).to.deep.equal(['backend=vulkan']);
    const warp = fakeHost({ platform: 'win32', adapters: { default: adapter({ vendor: 'microsoft', description: 'Microsoft Basic Render Driver' }) } });
    expect((await failure(() => chooseWebGpuAdapter(false, warp.host))).message).to.match(/^CPU adapter only/);
  });

  it('the real webgpu loader, not forced, starts only on a real GPU and otherwise says why', async function () {
    this.timeout(60000);
    const previous = tf.getBackend();
    try {
      const r = await defaultLoaders().webgpu({ forced: false });
      expect(r.detail).to.not.match(/CPU adapter/); // it started: then on a real GPU
    } catch (err) {
      expect((err as Error).message).to.match(/not installed|no GPU device|no Vulkan|CPU adapter only|no WebGPU adapter|Dawn build/);
      console.log(`      (webgpu here: ${(err as Error).message})`);
    } finally {
      await tf.setBackend(previous);
    }
  });
});
