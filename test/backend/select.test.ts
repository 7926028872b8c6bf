import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { BackendUnavailableError, InvalidArgumentError } from '../../lib/errors';
import {
  BackendLoaders, BackendName, currentBackendReport, defaultLoaders, initBackend, selectBackend,
} from '../../lib/backend';
import { loadTensorflowPackage } from '../../lib/backend/loaders';
import { loadBlasAddon } from '../../lib/backend/kernels/native-blas';

/** Fake loaders: each either "loads" (returns a detail) or throws the given reason; calls are recorded in order. */
function fakeLoaders(fail: Partial<Record<BackendName, string>>): { loaders: BackendLoaders; calls: BackendName[] } {
  const calls: BackendName[] = [];
  const make = (name: BackendName) => async () => {
    calls.push(name);
    const why = fail[name];
    if (why !== undefined) throw new Error(`${why}\n    at some stack frame`);
    return { detail: `${name} detail`, kernels: name === 'wasm' ? ['Conv2DBackpropFilter'] : [] };
  };
  return { loaders: { gpu: make('gpu'), node: make('node'), wasm: make('wasm'), cpu: make('cpu') }, calls };
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the promise to reject');
}

describe('backend selection', () => {
  let previous: string;
  before(() => { previous = tf.getBackend(); });
  after(async () => { await tf.setBackend(previous); });

  it('gpu and node absent → wasm, and the line says why each was skipped', async () => {
    const { loaders, calls } = fakeLoaders({ gpu: 'not installed', node: 'installed but failed to load: libcudart.so.11.0' });
    const r = await selectBackend(loaders, {});
    expect(r.name).to.equal('wasm');
    expect(calls).to.deep.equal(['gpu', 'node', 'wasm']);
    expect(r.skipped).to.deep.equal([
      { name: 'gpu', why: 'not installed' },
      { name: 'node', why: 'installed but failed to load: libcudart.so.11.0' },
    ]);
    expect(r.kernels).to.deep.equal(['Conv2DBackpropFilter']);
    expect(r.line).to.equal('[diffusion] backend: wasm (wasm detail) — skipped gpu: not installed; '
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

  it('falls through to cpu when wasm fails too', async () => {
    const { loaders } = fakeLoaders({ gpu: 'not installed', node: 'not installed', wasm: "tf.setBackend('wasm') returned false" });
    const r = await selectBackend(loaders, {});
    expect(r.name).to.equal('cpu');
    expect(r.skipped.map((s) => s.name)).to.deep.equal(['gpu', 'node', 'wasm']);
  });

  it('forced gpu that is absent → BackendUnavailableError with the install command and the CUDA/cuDNN versions', async () => {
    const { loaders, calls } = fakeLoaders({ gpu: 'not installed' });
    const err = await rejection(selectBackend(loaders, { DIFFUSION_BACKEND: 'gpu' }));
    expect(err).to.be.instanceOf(BackendUnavailableError);
    expect(err.message).to.include('DIFFUSION_BACKEND=gpu').and.include('not installed')
      .and.include('npm install @tensorflow/tfjs-node-gpu@4.22.0').and.include('CUDA 11.2').and.include('cuDNN 8.1');
    expect(calls).to.deep.equal(['gpu']); // no silent fallback when a backend was asked for
  });

  it('forced node that is absent → BackendUnavailableError naming the tfjs-node install', async () => {
    const { loaders } = fakeLoaders({ node: 'not installed' });
    const err = await rejection(selectBackend(loaders, { DIFFUSION_BACKEND: 'node' }));
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
    const err = await rejection(selectBackend(loaders, { DIFFUSION_BACKEND: 'cuda' }));
    expect(err).to.be.instanceOf(InvalidArgumentError);
    expect(err.message).to.include("'cuda'").and.include('gpu, node, wasm, cpu');
    expect(calls).to.deep.equal([]);
    expect((await selectBackend(loaders, { DIFFUSION_BACKEND: '' })).name).to.equal('gpu');
  });

  it('every backend failing → BackendUnavailableError listing each reason', async () => {
    const { loaders } = fakeLoaders({ gpu: 'a', node: 'b', wasm: 'c', cpu: 'd' });
    const err = await rejection(selectBackend(loaders, {}));
    expect(err).to.be.instanceOf(BackendUnavailableError);
    expect(err.message).to.include('gpu: a; node: b; wasm: c; cpu: d');
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
      const err = await rejection(defaultLoaders().gpu());
      expect(err.message).to.equal('not installed');
    }
  });

  it('the real cpu and wasm loaders activate their backend and describe it', async () => {
    const loaders = defaultLoaders();
    const cpu = await loaders.cpu();
    expect(tf.getBackend()).to.equal('cpu');
    expect(cpu.detail).to.match(/training will be very slow/);
    const wasm = await loaders.wasm();
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
      const err = await rejection(initBackend({ prefer: other }));
      expect(err).to.be.instanceOf(InvalidArgumentError);
      expect(err.message).to.include(`already chosen as '${first.name}'`);
      const bad = await rejection(initBackend({ prefer: 'tpu' as BackendName }));
      expect(bad).to.be.instanceOf(InvalidArgumentError);
    } finally {
      console.log = log;
    }
    expect(printed).to.have.length(0);
  });
});
