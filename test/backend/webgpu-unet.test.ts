/**
 * The course U-Net (configs/unet-cond-mnist-small.json: widths 16/32/64, attention at 7×7, 10 classes) on webgpu against
 * the cpu backend, same weights and inputs: the forward pass and the gradient of an MSE loss w.r.t. every parameter,
 * each within a relative error of 1e-4 (max |Δ| / max |cpu| per tensor). Batch 2: llvmpipe is slow.
 * tfjs' defaults are kept here (small ops whose inputs are in JS memory run on the CPU), as in real use.
 */
import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import type { UNetConfig } from '../../lib/models';
import { silenceCpuBanner } from '../../lib/backend/loaders';
import { compareUNetRuns, unetForwardAndGrads } from './webgpu-cases';
import { useWebGpu } from './webgpu-setup';

const CONFIG = JSON.parse(fs.readFileSync(path.join(__dirname, '../../configs/unet-cond-mnist-small.json'), 'utf8')).model as UNetConfig;
const B = 2;

describe('webgpu: the course U-Net against the cpu backend', function () {
  this.timeout(600000);
  useWebGpu();

  it(`forward and every parameter's gradient (B=${B}, 28×28) within 1e-4 relative error, no tensor left behind`, async () => {
    await tf.setBackend('cpu');
    silenceCpuBanner();
    let t0 = Date.now();
    const want = await unetForwardAndGrads(CONFIG, B);
    const cpuMs = Date.now() - t0;

    await tf.setBackend('webgpu');
    const before = tf.memory().numTensors;
    t0 = Date.now();
    const got = await unetForwardAndGrads(CONFIG, B);
    const gpuMs = Date.now() - t0;
    expect(tf.memory().numTensors).to.equal(before);

    const c = compareUNetRuns(got, want);
    console.log(`      U-Net ${CONFIG.widths.join('/')} (${c.params} parameters, ${want.names.length} tensors), B=${B}: `
      + `forward max |Δ| ${c.forward.abs.toExponential(1)} (relative ${c.forward.rel.toExponential(1)}); loss relative ${c.lossRel.toExponential(1)}; `
      + `worst gradient ${c.worstGrad.name}: relative ${c.worstGrad.rel.toExponential(1)} (max |Δ| ${c.worstGrad.abs.toExponential(1)}); `
      + `wall time ${gpuMs} ms on webgpu (shader compilation included), ${cpuMs} ms on cpu`);
    expect(c.differentInit, 'same initial weights').to.deep.equal([]);
    expect(c.forward.rel, 'forward').to.be.at.most(1e-4);
    expect(c.lossRel, 'loss').to.be.at.most(1e-4);
    expect(c.overTolerance, 'gradients over 1e-4').to.deep.equal([]);
    expect(c.allGradsZero, 'gradients are not all zero').to.equal(false);
  });
});
