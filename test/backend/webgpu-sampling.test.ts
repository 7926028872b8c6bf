/**
 * lib/samplers on webgpu (llvmpipe without a GPU) against the cpu backend: a few steps of DDIM (with classifier-free
 * guidance) and of DPM-Solver++(2M) with the course model, same weights and seeded noise; the deferred finite check runs
 * on the device as it does in real use.
 */
import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { silenceCpuBanner } from '../../lib/backend/loaders';
import { UNet, type UNetConfig } from '../../lib/models';
import { ddimSample, disposeResult, dpmSolverSample, type SampleResult } from '../../lib/samplers';
import { makeSchedule } from '../../lib/train';
import { errors } from './webgpu-cases';
import { useWebGpu } from './webgpu-setup';

const RUN = JSON.parse(fs.readFileSync(path.join(__dirname, '../../configs/unet-cond-mnist-small.json'), 'utf8'));
const COURSE = RUN.model as UNetConfig;
const SHAPE = [2, 28, 28, 1];

type Sampler = (model: UNet) => Promise<SampleResult>;

const samplers: Array<[string, Sampler]> = [
  ['DDIM, 4 steps, guidance 2', (model) => ddimSample((x, t, c) => model.apply(x, t, c), SHAPE, makeSchedule(RUN.schedule), {
    predictionType: model.predictionType, steps: 4, seed: 1, guidance: { weight: 2, classes: [3, 7], nullClass: COURSE.numClasses },
  })],
  ['DPM-Solver++(2M), 4 steps, classes 3 and 7', (model) => dpmSolverSample((x, t, c) => model.apply(x, t, c), SHAPE, makeSchedule(RUN.schedule), {
    predictionType: model.predictionType, steps: 4, seed: 2, classes: [3, 7],
  })],
];

async function sampleOn(backend: 'cpu' | 'webgpu', sampler: Sampler): Promise<{ sample: Float32Array; calls: number }> {
  await tf.setBackend(backend);
  if (backend === 'cpu') silenceCpuBanner();
  const model = new UNet(COURSE);
  const before = tf.memory().numTensors;
  try {
    const r = await sampler(model);
    const sample = (await r.sample.data()) as Float32Array;
    disposeResult(r);
    expect(tf.memory().numTensors, `${backend}: tensors left by sampling`).to.equal(before);
    return { sample, calls: r.modelCalls ?? -1 };
  } finally {
    model.dispose();
  }
}

describe('webgpu: sampling with lib/samplers against the cpu backend', function () {
  this.timeout(600000);
  useWebGpu();

  for (const [label, sampler] of samplers) {
    it(`${label}: the samples within 1e-4 (max |Δ| / max |cpu|), same number of model calls`, async () => {
      const want = await sampleOn('cpu', sampler);
      const got = await sampleOn('webgpu', sampler);
      const e = errors(got.sample, want.sample);
      console.log(`      ${label}: max |Δ| ${e.abs.toExponential(1)}, relative ${e.rel.toExponential(1)}; ${got.calls} model calls`);
      expect(got.calls).to.equal(want.calls).and.be.greaterThan(0);
      expect(e.rel).to.be.at.most(1e-4);
      expect(want.sample.some((v) => v !== 0), 'not all zero').to.equal(true);
    });
  }
});
