// Samplers by name (lib/samplers/named.ts): model calls ↔ steps, options that belong to another sampler, the dispatch to
// each sampler (the same numbers as calling it directly), and guidance at w = 1 / w = 0 on the undoubled batch.
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../../lib/errors';
import {
  checkSamplerSpec,
  ddimSample,
  ddpmSample,
  disposeResult,
  dpmSolverSample,
  eulerKarrasSample,
  heunKarrasSample,
  modelCallsFor,
  SAMPLER_NAMES,
  samplerLabel,
  sampleWith,
  stepsForCalls,
  type Denoiser,
  type SampleResult,
} from '../../lib/samplers';
import { NoiseSchedule } from '../../lib/schedule';
import { expectClose, expectRejects } from './helpers';

/** A class-aware stand-in: ε̂ = 0.3·x + 0.05·(class + 1) (the null class 10 gives a different output). */
const model: Denoiser = (x, t, classes) =>
  tf.tidy(() => {
    const c = classes ? tf.reshape(tf.add(tf.cast(classes, 'float32'), 1), [-1, 1, 1, 1]) : tf.scalar(0);
    return tf.add(tf.mul(x, 0.3), tf.mul(c, 0.05));
  });

const take = (r: SampleResult) => {
  const v = Array.from(r.sample.dataSync());
  disposeResult(r);
  return v;
};

describe('samplers by name (lib/samplers/named)', () => {
  const schedule = NoiseSchedule.cosine(50);
  const shape = [3, 4, 4, 1];

  it('model calls ↔ steps: Heun 2N − 1, the others N; --calls picks the most steps within the calls', () => {
    expect(SAMPLER_NAMES).to.deep.equal(['ddpm', 'ddim', 'dpm++2m', 'euler', 'heun']);
    for (const s of ['ddpm', 'ddim', 'dpm++2m', 'euler'] as const) {
      expect(modelCallsFor(s, 25)).to.equal(25);
      expect(stepsForCalls(s, 25)).to.equal(25);
    }
    expect([10, 25, 50, 1, 2].map((c) => stepsForCalls('heun', c))).to.deep.equal([5, 13, 25, 1, 1]);
    expect([5, 13, 25, 1].map((n) => modelCallsFor('heun', n))).to.deep.equal([9, 25, 49, 1]);
    for (let calls = 1; calls < 60; calls++) {
      const n = stepsForCalls('heun', calls);
      expect(modelCallsFor('heun', n)).to.be.at.most(calls);
      expect(modelCallsFor('heun', n + 1)).to.be.above(calls);
    }
    expect(() => stepsForCalls('heun', 0)).to.throw(InvalidArgumentError, /model calls/);
    expect(() => modelCallsFor('ddim', 1.5)).to.throw(InvalidArgumentError, /steps/);
    expect(() => stepsForCalls('plms' as never, 3)).to.throw(InvalidArgumentError, /unknown sampler "plms".*ddpm, ddim, dpm\+\+2m, euler, heun/);
    expect(samplerLabel({ sampler: 'heun', steps: 13 })).to.equal('Heun 13 steps (25 calls)');
    expect(samplerLabel({ sampler: 'ddim', steps: 50, eta: 0.5 })).to.equal('DDIM 50, η 0.5');
  });

  it('options of another sampler are refused by name', () => {
    expect(() => checkSamplerSpec({ sampler: 'heun', steps: 3, eta: 0.5 })).to.throw(InvalidArgumentError, /eta applies to ddim only, not to heun/);
    expect(() => checkSamplerSpec({ sampler: 'ddim', steps: 3, rho: 7 })).to.throw(InvalidArgumentError, /rho applies to euler and heun only/);
    expect(() => checkSamplerSpec({ sampler: 'dpm++2m', steps: 3, sigmaMax: 5 })).to.throw(InvalidArgumentError, /sigmaMax applies/);
    expect(() => checkSamplerSpec({ sampler: 'ddim', steps: 51 }, 50)).to.throw(InvalidArgumentError, /51 steps exceed the schedule's T = 50/);
    checkSamplerSpec({ sampler: 'euler', steps: 3, sigmaMax: 5, rho: 3 }, 50);
  });

  it('each name runs its sampler (same values as the direct call) and reports the model calls', async () => {
    const common = { predictionType: 'epsilon' as const, seed: 7, classes: [0, 1, 2], clipX0: true };
    const direct: Record<string, () => Promise<SampleResult>> = {
      ddpm: () => ddpmSample(model, shape, schedule, { ...common, steps: 4 }),
      ddim: () => ddimSample(model, shape, schedule, { ...common, steps: 4, eta: 0.5 }),
      'dpm++2m': () => dpmSolverSample(model, shape, schedule, { ...common, steps: 4 }),
      euler: () => eulerKarrasSample(model, shape, schedule, { ...common, steps: 4, rho: 3 }),
      heun: () => heunKarrasSample(model, shape, schedule, { ...common, steps: 4, sigmaMax: 20 }),
    };
    const extra: Record<string, object> = { ddim: { eta: 0.5 }, euler: { rho: 3 }, heun: { sigmaMax: 20 } };
    for (const name of SAMPLER_NAMES) {
      const before = tf.memory().numTensors;
      const r = await sampleWith(model, shape, schedule, { sampler: name, steps: 4, ...extra[name] }, common);
      expect(r.modelCalls, name).to.equal(modelCallsFor(name, 4));
      const got = take(r);
      expect(tf.memory().numTensors, `${name}: tensors leaked`).to.equal(before);
      expectClose(got, take(await direct[name]()), 0, 0, name);
    }
    await expectRejects(() => sampleWith(model, shape, schedule, { sampler: 'euler', steps: 4, eta: 1 }, common), InvalidArgumentError, /eta/);
  });

  it('guidance at w = 1 and w = 0 runs the undoubled batch and matches the guided result; other w double it', async () => {
    const classes = [3, 1, 4];
    const batches: number[] = [];
    const counting: Denoiser = (x, t, c) => {
      batches.push(x.shape[0]);
      return model(x, t, c);
    };
    for (const w of [1, 0, 2]) {
      batches.length = 0;
      const spec = { sampler: 'dpm++2m' as const, steps: 3 };
      const opts = { predictionType: 'epsilon' as const, seed: 2, guidance: { weight: w, classes, nullClass: 10 } };
      const got = take(await sampleWith(counting, shape, schedule, spec, opts));
      expect(batches, `w = ${w}`).to.deep.equal(new Array(3).fill(w === 2 ? 6 : 3));
      // the guided formula on the doubled batch, through the sampler directly
      const want = take(await dpmSolverSample(model, shape, schedule, { predictionType: 'epsilon', seed: 2, steps: 3, guidance: opts.guidance }));
      expectClose(got, want, 1e-5, 1e-5, `w = ${w}`);
    }
  });
});
