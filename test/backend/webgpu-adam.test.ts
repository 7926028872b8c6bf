// The fused Adam and EMA updates and the gradient control tensor on webgpu (Dawn; llvmpipe without a GPU) against the
// composites on tfjs' cpu backend, the composite against hand-computed numbers, and lib/train's Adam / Ema on webgpu
// (fused kernels) against the same on cpu. Runs in the webgpu process (scripts/test.sh); alone:
//   npx mocha test/backend/webgpu-adam.test.ts
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { expectClose, onBackend as runOn } from './compare';
import { countDispatches, errors, normals } from './webgpu-cases';
import { useWebGpu } from './webgpu-setup';
import {
  adamApply, adamUpdate, adamUpdateComposite, emaUpdate, emaUpdateComposite, gradientControl, gradientControlComposite,
  readControl, type AdamHyper,
} from '../../lib/backend/kernels/webgpu/index';
import { Adam, clipByGlobalNorm } from '../../lib/train/adam';
import { Ema } from '../../lib/train/ema';

const H: AdamHyper = { lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, step: 3 };

interface Case { shape: number[]; seed: number }
const inputs = ({ shape, seed }: Case) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return {
    theta: normals(n, seed),
    m: normals(n, seed + 1, 0.01),
    v: normals(n, seed + 2, 1e-4).map(Math.abs),
    g: normals(n, seed + 3, 0.05),
  };
};

/** θ′, m′, v′ from `update` (composite or kernel) on the arrays of `c`. */
function step(c: Case, update: typeof adamUpdate, hyper: AdamHyper, control?: number[]): () => tf.Tensor[] {
  const a = inputs(c);
  return () => {
    const t = (x: Float32Array) => tf.tensor(x, c.shape, 'float32');
    const ctrl = control ? tf.tensor1d(control) : undefined;
    const r = update(t(a.theta), t(a.m), t(a.v), t(a.g), hyper, ctrl);
    return [r.theta, r.m, r.v];
  };
}

describe('webgpu course kernels: fused Adam', function () {
  this.timeout(600000);
  useWebGpu();

  it('the composite equals hand-computed numbers (float64 reference)', async () => {
    const theta = [0.5, -1, 2];
    const m = [0.1, 0, -0.2];
    const v = [0.01, 0.001, 0.04];
    const g = [0.3, -0.5, 4]; // scaled by 0.5 below (a clip)
    const hyper: AdamHyper = { lr: 0.01, beta1: 0.9, beta2: 0.99, epsilon: 1e-6, step: 2, weightDecay: 0.1 };
    const { values } = await runOn('cpu', () => {
      const r = adamUpdateComposite(tf.tensor1d(theta), tf.tensor1d(m), tf.tensor1d(v), tf.tensor1d(g), hyper, tf.tensor1d([8, 0.5, 1]));
      return [r.theta, r.m, r.v];
    });
    const c1 = 1 - 0.9 ** 2;
    const c2 = 1 - 0.99 ** 2;
    theta.forEach((th, i) => {
      const gi = g[i] * 0.5;
      const m2 = 0.9 * m[i] + 0.1 * gi;
      const v2 = 0.99 * v[i] + 0.01 * gi * gi;
      const th2 = th - 0.01 * ((m2 / c1) / (Math.sqrt(v2 / c2) + 1e-6) + 0.1 * th);
      expect(values[0][i]).to.be.closeTo(th2, 1e-6);
      expect(values[1][i]).to.be.closeTo(m2, 1e-7);
      expect(values[2][i]).to.be.closeTo(v2, 1e-8);
    });
  });

  it('lib/train\'s Adam and Ema use the fused kernels on webgpu (one dispatch per tensor each) and match cpu', async () => {
    const shapes = [[3, 3, 2, 4], [4], [5, 6]];
    const run = async (backend: 'cpu' | 'webgpu') => {
      await tf.setBackend(backend);
      const vars = shapes.map((sh, i) => tf.variable(tf.tensor(normals(sh.reduce((a, b) => a * b), 70 + i), sh)));
      const adam = new Adam(vars);
      const ema = new Ema(vars, 0.9);
      const before = tf.memory().numTensors;
      let dispatches = 0;
      for (let n = 0; n < 3; n++) {
        const g = shapes.map((sh, i) => tf.tensor(normals(sh.reduce((a, b) => a * b), 80 + 10 * n + i, 0.1), sh));
        const control = tf.tensor1d([1, 0.5, 1]);
        if (backend === 'webgpu') {
          dispatches = countDispatches(() => { adam.apply(g, 1e-2, control); ema.update(control); }).dispatches;
        } else {
          adam.apply(g, 1e-2, control);
          ema.update(control);
        }
        tf.dispose([...g, control]);
      }
      expect(tf.memory().numTensors, `${backend}: tensors`).to.equal(before);
      const out = [...await Promise.all(vars.map((x) => x.data())), ...await ema.values()];
      adam.dispose();
      ema.dispose();
      tf.dispose(vars);
      return { out, dispatches };
    };
    const want = await run('cpu');
    const got = await run('webgpu');
    expect(got.dispatches, 'Adam + EMA dispatches for 3 tensors').to.equal(2 * shapes.length);
    got.out.forEach((x, i) => expectClose(x, want.out[i], `θ / EMA ${i}`, 1e-6, 1e-5));
  });

  it('adamApply + gradientControl over 3 steps on webgpu equal lib/train/adam.ts with clipByGlobalNorm on cpu', async () => {
    const shapes = [[3, 3, 2, 4], [4], [5, 6]];
    const init = shapes.map((s, i) => normals(s.reduce((a, b) => a * b), 20 + i));
    const gradAt = (stepNo: number) => shapes.map((s, i) => normals(s.reduce((a, b) => a * b), 40 + 10 * stepNo + i, stepNo === 1 ? 5 : 0.1));
    // reference: today's trainer path (clip, then Adam), on cpu
    await tf.setBackend('cpu');
    const refVars = shapes.map((s, i) => tf.variable(tf.tensor(init[i], s)));
    const adam = new Adam(refVars);
    for (let n = 0; n < 3; n++) {
      const g = gradAt(n).map((x, i) => tf.tensor(x, shapes[i]));
      const clipped = clipByGlobalNorm(g, 1); // step 1's gradients are large: clipped
      adam.apply(clipped.grads, 1e-2);
      tf.dispose([...g, ...clipped.grads, clipped.norm]);
    }
    const want = await Promise.all(refVars.map((v) => v.data()));
    adam.dispose();
    tf.dispose(refVars);
    // the course kernels on webgpu: nothing read until the end
    await tf.setBackend('webgpu');
    const vars = shapes.map((s, i) => tf.variable(tf.tensor(init[i], s)));
    const m = vars.map((v) => tf.variable(tf.zerosLike(v), false));
    const v = vars.map((x) => tf.variable(tf.zerosLike(x), false));
    const before = tf.memory().numTensors;
    let clippedOnce = false;
    for (let n = 0; n < 3; n++) {
      const g = gradAt(n).map((x, i) => tf.tensor(x, shapes[i]));
      const control = gradientControl(g, 1);
      adamApply(vars, m, v, g, { ...H, lr: 1e-2, step: n + 1 }, control);
      const c = await readControl(control);
      expect(c.ok).to.equal(true);
      if (c.scale < 1) clippedOnce = true;
      tf.dispose([...g, control]);
    }
    expect(clippedOnce).to.equal(true);
    expect(tf.memory().numTensors).to.equal(before);
    const got = await Promise.all(vars.map((x) => x.data()));
    got.forEach((x, i) => expectClose(x, want[i], `θ${i}`, 1e-6, 1e-5));
    tf.dispose([...vars, ...m, ...v]);
  });

  const cases: Array<[string, Case]> = [
    ['1 element', { shape: [1], seed: 1 }],
    ['7 elements', { shape: [7], seed: 2 }],
    ['3×3×16×32 conv filter', { shape: [3, 3, 16, 32], seed: 3 }],
    ['300,001 elements (not a multiple of the workgroup)', { shape: [300001], seed: 4 }],
  ];
  for (const [label, c] of cases) {
    for (const [ctrlLabel, control, hyper] of [
      ['no control', undefined, H],
      ['clip scale 0.25 + weight decay', [4, 0.25, 1], { ...H, weightDecay: 0.01, step: 1000 }],
    ] as Array<[string, number[] | undefined, AdamHyper]>) {
      it(`${label}, ${ctrlLabel}: the kernel equals the composite on cpu`, async () => {
        const want = await runOn('cpu', step(c, adamUpdateComposite, hyper, control));
        const got = await runOn('webgpu', step(c, adamUpdate, hyper, control));
        ['theta', 'm', 'v'].forEach((name, i) => {
          expect(got.shapes[i]).to.deep.equal(c.shape);
          expectClose(got.values[i], want.values[i], name, 1e-7, 2e-6);
          const e = errors(got.values[i], want.values[i]);
          if (process.env.DIFFUSION_REPORT_ERRORS) console.log(`      ${name}: max |Δ| ${e.abs.toExponential(2)}, relative ${e.rel.toExponential(2)}`);
        });
      });
    }
  }

  for (const backend of ['webgpu', 'cpu'] as const) {
    it(`ok = 0 in the control tensor leaves θ, m, v and the EMA exactly as they were (NaN gradients; ${backend === 'webgpu' ? 'kernels' : 'composites on cpu'})`, async () => {
      const c: Case = { shape: [2, 50], seed: 9 };
      const a = inputs(c);
      const got = await runOn(backend, () => {
        const t = (x: Float32Array) => tf.tensor(x, c.shape);
        const g = tf.fill(c.shape, NaN);
        const control = tf.tensor1d([NaN, 1, 0]);
        const r = adamUpdate(t(a.theta), t(a.m), t(a.v), g, H, control);
        return [r.theta, r.m, r.v, emaUpdate(t(a.m), t(a.theta), 0.9, control)];
      });
      expect(Array.from(got.values[0])).to.deep.equal(Array.from(a.theta));
      expect(Array.from(got.values[1])).to.deep.equal(Array.from(a.m));
      expect(Array.from(got.values[2])).to.deep.equal(Array.from(a.v));
      expect(Array.from(got.values[3])).to.deep.equal(Array.from(a.m));
    });
  }

  for (const [label, control] of [['no control', undefined], ['ok = 1', [3, 0.5, 1]]] as Array<[string, number[] | undefined]>) {
    it(`the EMA kernel equals the composite on cpu (${label}; 300,001 elements)`, async () => {
      const n = 300001;
      const f = (update: typeof emaUpdate) => () => [update(tf.tensor1d(normals(n, 31)), tf.tensor1d(normals(n, 32)), 0.995,
        control ? tf.tensor1d(control) : undefined)];
      const want = await runOn('cpu', f(emaUpdateComposite));
      const got = await runOn('webgpu', f(emaUpdate));
      expectClose(got.values[0], want.values[0], 'shadow', 1e-7, 1e-6);
    });
  }

  it('one dispatch per parameter tensor (Adam, and the EMA), and no tensor or buffer left behind', async () => {
    await tf.setBackend('webgpu');
    const c: Case = { shape: [64, 33], seed: 11 };
    const a = inputs(c);
    const t = (x: Float32Array) => tf.tensor(x, c.shape);
    const theta = t(a.theta), m = t(a.m), v = t(a.v), g = t(a.g), ctrl = tf.tensor1d([1, 1, 1]);
    const warm = adamUpdate(theta, m, v, g, H, ctrl);
    await warm.theta.data();
    tf.dispose([warm.theta, warm.m, warm.v]);
    const before = { tensors: tf.memory().numTensors, ids: tf.backend().numDataIds() };
    const { result, dispatches } = countDispatches(() => adamUpdate(theta, m, v, g, H, ctrl));
    expect(dispatches).to.equal(1);
    await result.theta.data();
    tf.dispose([result.theta, result.m, result.v]);
    expect(tf.memory().numTensors).to.equal(before.tensors);
    expect(tf.backend().numDataIds()).to.equal(before.ids);
    const ema = countDispatches(() => emaUpdate(m, theta, 0.9, ctrl));
    expect(ema.dispatches, 'EMA').to.equal(1);
    await ema.result.data();
    ema.result.dispose();
    expect(tf.memory().numTensors).to.equal(before.tensors);
    expect(tf.backend().numDataIds()).to.equal(before.ids);
    const composite = countDispatches(() => adamUpdateComposite(theta, m, v, g, H, ctrl));
    tf.dispose([composite.result.theta, composite.result.m, composite.result.v, theta, m, v, g, ctrl]);
    if (process.env.DIFFUSION_REPORT_ERRORS) console.log(`      dispatches per tensor: kernel 1, composite ${composite.dispatches}`);
  });

  it('rejects mismatched shapes and a malformed control tensor with named errors', async () => {
    await tf.setBackend('webgpu');
    const a = tf.zeros([3]), b = tf.zeros([4]);
    expect(() => adamUpdate(a, a, a, b, H)).to.throw().with.property('name', 'ShapeMismatchError');
    expect(() => adamUpdate(a, a, a, a, H, tf.zeros([2]))).to.throw().with.property('name', 'ShapeMismatchError');
    expect(() => adamUpdate(a, a, a, a, { ...H, step: 0 })).to.throw().with.property('name', 'InvalidArgumentError');
    tf.dispose([a, b]);
  });
});

describe('webgpu course kernels: gradient control [norm, scale, ok]', function () {
  this.timeout(600000);
  useWebGpu();

  const shapes = [[3, 3, 1, 16], [16], [16], [3, 3, 16, 16], [16], [128, 64], [64], [1], [7, 7, 3], [3, 3, 32, 64],
    [64], [64], [100000], [5], [3, 3, 64, 32], [32], [32], [11, 13], [2], [4, 4, 4, 4]]; // 20 tensors: 3 dispatches of 7
  const grads = (scale: number, nanAt = -1) => () => shapes.map((s, i) => {
    const n = s.reduce((a, b) => a * b, 1);
    const x = normals(n, 100 + i, scale);
    if (i === nanAt) x[n - 1] = NaN;
    return tf.tensor(x, s);
  });

  for (const [label, scale, maxNorm, nanAt] of [
    ['clipping (norm > maxNorm)', 0.05, 1, -1],
    ['no clipping (norm < maxNorm)', 1e-4, 1, -1],
    ['maxNorm = Infinity', 0.05, Infinity, -1],
    ['a NaN gradient: ok = 0', 0.05, 1, 13],
  ] as Array<[string, number, number, number]>) {
    it(`${label}: the kernel equals the composite on cpu and clipByGlobalNorm's norm`, async () => {
      const want = await runOn('cpu', () => [gradientControlComposite(grads(scale, nanAt)(), maxNorm)]);
      const got = await runOn('webgpu', () => [gradientControl(grads(scale, nanAt)(), maxNorm)]);
      const [norm, s, ok] = got.values[0];
      await tf.setBackend('cpu');
      const gs = grads(scale, nanAt)();
      const clippedRef = clipByGlobalNorm(gs, maxNorm);
      const ref = { norm: (await clippedRef.norm.data())[0] };
      tf.dispose([...gs, ...clippedRef.grads, clippedRef.norm]);
      if (nanAt >= 0) {
        expect(Number.isNaN(norm)).to.equal(true);
        expect(ok).to.equal(0);
        expect(Number.isNaN(want.values[0][0])).to.equal(true);
        expect(want.values[0][2]).to.equal(0);
        return;
      }
      expect(ok).to.equal(1);
      expectClose([norm, s], Array.from(want.values[0]).slice(0, 2), 'norm, scale', 0, 2e-6);
      expect(norm).to.be.closeTo(ref.norm, 2e-6 * ref.norm);
      expect(s).to.be.closeTo(Number.isFinite(maxNorm) && ref.norm > maxNorm ? maxNorm / ref.norm : 1, 2e-6);
    });
  }

  for (const [label, prevOk, loss, wantOk] of [
    ['previous ok, finite loss', 1, 0.5, 1],
    ['previous NOT ok (sticky), finite loss', 0, 0.5, 0],
    ['previous ok, NaN loss', 1, NaN, 0],
    ['previous ok, infinite loss', 1, -Infinity, 0],
  ] as Array<[string, number, number, number]>) {
    it(`with a previous control and the loss: ${label} → ok ${wantOk}, on webgpu as in the composite on cpu`, async () => {
      const f = (control: typeof gradientControl) => () => [control(grads(0.05)(), 1, { previous: tf.tensor1d([2, 0.5, prevOk]), loss: tf.scalar(loss) })];
      const want = await runOn('cpu', f(gradientControlComposite));
      const got = await runOn('webgpu', f(gradientControl));
      expect(want.values[0][2], 'composite ok').to.equal(wantOk);
      expect(got.values[0][2], 'kernel ok').to.equal(wantOk);
      expectClose(Array.from(got.values[0]).slice(0, 2), Array.from(want.values[0]).slice(0, 2), 'norm, scale', 0, 2e-6);
    });
  }

  it('rejects a malformed previous control or loss with named errors', async () => {
    await tf.setBackend('webgpu');
    const g = [tf.ones([3])];
    const bad = tf.zeros([2]);
    expect(() => gradientControl(g, 1, { previous: bad })).to.throw().with.property('name', 'ShapeMismatchError');
    expect(() => gradientControl(g, 1, { loss: bad })).to.throw().with.property('name', 'ShapeMismatchError');
    expect(() => gradientControl(g, 0)).to.throw().with.property('name', 'InvalidArgumentError');
    tf.dispose([...g, bad]);
  });

  it(`⌈N/7⌉ + 1 dispatches for N gradients; empty tensors count 0; nothing left behind`, async () => {
    await tf.setBackend('webgpu');
    const gs = grads(0.05)();
    const withEmpty = [...gs, tf.zeros([0, 3])];
    const warm = gradientControl(withEmpty, 1);
    await warm.data();
    warm.dispose();
    const before = { tensors: tf.memory().numTensors, ids: tf.backend().numDataIds() };
    const { result, dispatches } = countDispatches(() => gradientControl(withEmpty, 1));
    expect(dispatches).to.equal(Math.ceil(21 / 7) + 1);
    const [norm] = await result.data();
    result.dispose();
    expect(tf.memory().numTensors).to.equal(before.tensors);
    expect(tf.backend().numDataIds()).to.equal(before.ids);
    const composite = countDispatches(() => gradientControlComposite(gs, 1));
    expect(norm).to.be.closeTo((await composite.result.data())[0], 1e-5 * norm);
    if (process.env.DIFFUSION_REPORT_ERRORS) console.log(`      dispatches for 21 gradients: kernel ${dispatches}, composite ${composite.dispatches}`);
    tf.dispose([...withEmpty, composite.result]);
  });
});
