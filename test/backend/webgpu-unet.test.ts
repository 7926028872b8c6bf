/**
 * The course U-Net (configs/unet-cond-mnist.json: widths 16/32/64, attention at 7×7, 10 classes) on webgpu against
 * the cpu backend, same weights and inputs: the forward pass and the gradient of the training loss w.r.t. every
 * parameter, each within a relative error of 1e-4 (max |Δ| / max |cpu| per tensor). Batch 2: llvmpipe is slow.
 * tfjs' defaults are kept here (small ops with inputs in JS memory run on the CPU), as in real use.
 */
import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { UNet, type UNetConfig } from '../../lib/models';
import { silenceCpuBanner } from '../../lib/backend/loaders';
import { errors, useWebGpu } from './webgpu-setup';

const CONFIG = JSON.parse(fs.readFileSync(path.join(__dirname, '../../configs/unet-cond-mnist.json'), 'utf8')).model as UNetConfig;
const B = 2;

interface Run { names: string[]; params: Float32Array[]; out: Float32Array; loss: number; grads: Float32Array[] }

/** Build the model on the active backend (seeded: the same weights everywhere), run forward + all gradients. */
async function run(): Promise<Run> {
  const model = new UNet(CONFIG);
  try {
    const vars = [...model.params.entries()];
    const names = vars.map(([k]) => k);
    const params = await Promise.all(vars.map(([, v]) => v.data() as Promise<Float32Array>));
    const x = tf.randomNormal([B, 28, 28, 1], 0, 1, 'float32', 11);
    const target = tf.randomNormal([B, 28, 28, 1], 0, 1, 'float32', 12);
    const t = tf.tensor1d([17, 901], 'int32');
    const c = tf.tensor1d([3, 10], 'int32'); // a digit and the null class
    const out = tf.tidy(() => model.apply(x, t, c));
    const { value, grads } = tf.variableGrads(
      () => tf.mean(tf.square(tf.sub(model.apply(x, t, c), target))) as tf.Scalar, vars.map(([, v]) => v));
    const gradList = names.map((n) => grads[vars.find(([k]) => k === n)![1].name]);
    const result: Run = {
      names, params,
      out: await out.data() as Float32Array,
      loss: (await value.data())[0],
      grads: await Promise.all(gradList.map((g) => g.data() as Promise<Float32Array>)),
    };
    tf.dispose([x, target, t, c, out, value, ...Object.values(grads)]);
    return result;
  } finally {
    model.dispose();
  }
}

describe('webgpu: the course U-Net against the cpu backend', function () {
  this.timeout(600000);
  useWebGpu();

  it(`forward and every parameter's gradient (B=${B}, 28×28) within 1e-4 relative error, no tensor left behind`, async () => {
    await tf.setBackend('cpu');
    silenceCpuBanner();
    let t0 = Date.now();
    const want = await run();
    const cpuMs = Date.now() - t0;

    await tf.setBackend('webgpu');
    const before = tf.memory().numTensors;
    t0 = Date.now();
    const got = await run();
    const gpuMs = Date.now() - t0;
    expect(tf.memory().numTensors).to.equal(before);

    expect(got.names).to.deep.equal(want.names);
    got.params.forEach((p, i) => expect(errors(p, want.params[i]).abs, `same initial ${got.names[i]}`).to.equal(0));
    const fwd = errors(got.out, want.out);
    const lossRel = Math.abs(got.loss - want.loss) / Math.abs(want.loss);
    let worst = { name: '', rel: 0, abs: 0 };
    const failures: string[] = [];
    got.grads.forEach((g, i) => {
      const e = errors(g, want.grads[i]);
      if (e.rel > worst.rel) worst = { name: got.names[i], ...e };
      if (!(e.rel <= 1e-4)) failures.push(`${got.names[i]}: ${e.rel.toExponential(2)}`);
    });
    const count = want.params.reduce((s, p) => s + p.length, 0);
    console.log(`      U-Net ${CONFIG.widths.join('/')} (${count} parameters, ${want.names.length} tensors), B=${B}: `
      + `forward max |Δ| ${fwd.abs.toExponential(1)} (relative ${fwd.rel.toExponential(1)}); loss relative ${lossRel.toExponential(1)}; `
      + `worst gradient ${worst.name}: relative ${worst.rel.toExponential(1)} (max |Δ| ${worst.abs.toExponential(1)}); `
      + `wall time ${gpuMs} ms on webgpu (shader compilation included), ${cpuMs} ms on cpu`);
    expect(fwd.rel, 'forward').to.be.at.most(1e-4);
    expect(lossRel, 'loss').to.be.at.most(1e-4);
    expect(failures, 'gradients over 1e-4').to.deep.equal([]);
    expect(want.grads.some((g) => g.some((v) => v !== 0)), 'gradients are not all zero').to.equal(true);
  });
});
