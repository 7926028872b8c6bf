/**
 * lib/train's Trainer on webgpu (llvmpipe without a GPU): one training step of the course model against the same step
 * on the cpu backend, what a step dispatches (the control, one fused Adam and one fused EMA dispatch per tensor, no
 * Select, no read), a deferred non-finite step, and data-parallel training's refusal of webgpu.
 */
import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, NonFiniteError } from '../../lib/errors';
import { silenceCpuBanner } from '../../lib/backend/loaders';
import { UNet, type UNetConfig } from '../../lib/models';
import { DataParallelTrainer, modelReplicaSpec, ParallelCourseTrainer } from '../../lib/parallel';
import { NoiseSchedule } from '../../lib/schedule';
import { DEFAULT_TRAIN, makeSchedule, Trainer, type Batch, type TrainConfig } from '../../lib/train';
import { compareTrainerSteps, normals, trainerStep, trainerStepsAgree } from './webgpu-cases';
import { useWebGpu } from './webgpu-setup';

const RUN = JSON.parse(fs.readFileSync(path.join(__dirname, '../../configs/unet-cond-mnist-small.json'), 'utf8'));
const COURSE = RUN.model as UNetConfig;
const B = 2;

describe('webgpu: training with lib/train (fused Adam and EMA) against the cpu backend', function () {
  this.timeout(600000);
  useWebGpu();

  it(`one Trainer step of the course model (B=${B}): loss, norm, weights, Adam moments and EMA within 1e-4 of cpu; `
    + 'on webgpu the step\'s tail is the control + one Adam + one EMA dispatch per tensor (no Select), and nothing is read', async () => {
    // the course's training config, without warm-up (its first step would move each weight by lr/200 only)
    const config: TrainConfig = { ...DEFAULT_TRAIN, ...RUN.train, batchSize: B, warmupSteps: 0, checkpointEvery: 0 };
    const schedule = makeSchedule(RUN.schedule);
    await tf.setBackend('cpu');
    silenceCpuBanner();
    const want = await trainerStep(COURSE, schedule, config, B);
    await tf.setBackend('webgpu');
    const got = await trainerStep(COURSE, schedule, config, B);
    expect([want.leaked, got.leaked], 'tensors left by the step (cpu, webgpu)').to.deep.equal([0, 0]);
    const c = compareTrainerSteps(got, want);
    console.log(`      loss relative ${c.lossRel.toExponential(1)}, norm ${c.gradNormRel.toExponential(1)}; Adam m worst ${c.m.name} `
      + `${c.m.rel.toExponential(1)}, v worst ${c.v.name} ${c.v.rel.toExponential(1)} (max |Δ| / max |cpu|)`);
    console.log(`      weights ‖Δ‖/‖cpu‖ ${c.weights.toExponential(1)} (worst tensor ${c.worstWeights.name}: max |Δ| / max |cpu| `
      + `${c.worstWeights.rel.toExponential(1)}, max |Δ| ${c.worstWeights.abs.toExponential(1)}), EMA ${c.ema.toExponential(1)}; `
      + `update cosine ${c.updateCosine.toFixed(6)} (norm ${c.updateNorm.toExponential(2)})`);
    expect(c.sameInit, 'same initial weights').to.equal(true);
    expect(want.gradNorm, 'clipped (norm > gradClip)').to.be.greaterThan(config.gradClip);
    expect(c.lossRel, 'loss').to.be.at.most(1e-4);
    expect(c.gradNormRel, 'gradient norm').to.be.at.most(1e-4);
    expect(c.m.rel, 'Adam m, per tensor').to.be.at.most(1e-4);
    expect(c.v.rel, 'Adam v, per tensor').to.be.at.most(1e-4);
    expect(c.weights, 'weights after the step').to.be.at.most(1e-4);
    expect(c.ema, 'EMA').to.be.at.most(1e-4);
    expect(c.updateCosine, 'update direction').to.be.greaterThan(0.999);
    expect(trainerStepsAgree(c)).to.equal(true);

    const programs = (w: NonNullable<typeof got.work>) => [...w.byProgram.entries()].sort((p, q) => q[1] - p[1]).map(([k, x]) => `${k} ${x}`).join(', ');
    const n = want.names.length;
    const step = got.work!;
    console.log(`      webgpu, whole step: ${step.dispatches} dispatches (${programs(step).split(', ').slice(0, 8).join(', ')} …), ${step.reads} reads while queued`);
    expect(step.reads, 'reads while the step is queued').to.equal(0);
    const tail = got.tail!;
    console.log(`      webgpu, the step's tail (applyStepGradients): ${tail.dispatches} dispatches (${programs(tail)}), ${tail.reads} reads`);
    expect(Object.fromEntries(tail.byProgram), 'the tail: control, one Adam and one EMA dispatch per tensor, nothing else').to.deep.equal({
      SumSquaresProgram: Math.ceil(n / 7), ControlFromPartialsProgram: 1, CourseAdamUpdate: n, CourseEmaUpdate: n,
    });
    expect(tail.reads, 'reads in the tail').to.equal(0);
  });

  it('a deferred non-finite step on webgpu: NonFiniteError names it; weights, Adam moments and EMA are the last good step\'s, bit for bit', async () => {
    await tf.setBackend('webgpu');
    const tiny: UNetConfig = {
      kind: 'unet', imageSize: 8, channels: 1, widths: [8, 16], blocksPerLevel: 1, attentionResolutions: [4], groups: 4,
      embDim: 16, timeSinDim: 8, midBlocks: 1, numClasses: 10, dropout: 0, predictionType: 'epsilon', seed: 0,
    };
    const schedule = NoiseSchedule.linear(50);
    const config = { ...DEFAULT_TRAIN, steps: 5, batchSize: 2, warmupSteps: 0, checkpointEvery: 0 };
    const good = (s: number): Batch => ({ x: tf.tensor4d(normals(128, 40 + s, 0.5), [2, 8, 8, 1]), y: tf.tensor1d([0, 1], 'int32') });
    const poisoned = (s: number): Batch => (s === 2 ? { x: tf.fill([2, 8, 8, 1], NaN), y: tf.tensor1d([0, 1], 'int32') } : good(s));
    const ref = new Trainer(new UNet(tiny), schedule, { ...config, steps: 2 });
    await ref.fit(good);
    const t = new Trainer(new UNet(tiny), schedule, config);
    const before = tf.memory().numTensors;
    let err: unknown;
    try {
      await t.fit(poisoned, { readEvery: 100 }); // steps 2, 3, 4 run on the device before anything is read
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(NonFiniteError);
    expect(String(err)).to.match(/loss is NaN at step 2/);
    expect(tf.memory().numTensors).to.equal(before);
    expect([t.step, t.optimizer.step, t.ema.updates]).to.deep.equal([2, 2, 2]);
    expect(t.lossHistory).to.deep.equal(ref.lossHistory);
    const [w, wRef] = [await t.model.params.snapshot(), await ref.model.params.snapshot()];
    for (const [k, x] of w) expect(Array.from(x), k).to.deep.equal(Array.from(wRef.get(k)!));
    const [s, sRef] = [await t.optimizer.getState(), await ref.optimizer.getState()];
    s.m.forEach((m, i) => expect(Array.from(m)).to.deep.equal(Array.from(sRef.m[i])));
    s.v.forEach((v, i) => expect(Array.from(v)).to.deep.equal(Array.from(sRef.v[i])));
    const [e, eRef] = [await t.ema.values(), await ref.ema.values()];
    e.forEach((x, i) => expect(Array.from(x)).to.deep.equal(Array.from(eRef[i])));
    // and it trains on from there like the uninterrupted run
    await t.fit(good, { until: 3 });
    await ref.fit(good, { until: 3 });
    expect(t.lossHistory).to.deep.equal(ref.lossHistory);
    for (const x of [t, ref]) { x.dispose(); x.model.dispose(); }
  });

  it('data-parallel training (--threads N, lib/parallel) refuses webgpu with a named error before starting a worker', async () => {
    await tf.setBackend('webgpu');
    const tensors = tf.memory().numTensors;
    const schedule = makeSchedule(RUN.schedule);
    let err: unknown;
    try {
      await ParallelCourseTrainer.create(COURSE, schedule, { ...DEFAULT_TRAIN, batchSize: 4 }, 2);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(InvalidArgumentError);
    expect(String(err)).to.match(/data-parallel.*webgpu.*--threads 1/);
    err = undefined;
    try {
      await DataParallelTrainer.create(modelReplicaSpec(COURSE, schedule), { threads: 3, optimizer: null });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(InvalidArgumentError);
    expect(tf.memory().numTensors, 'nothing built').to.equal(tensors);
    // one thread is the ordinary trainer's work on the GPU: allowed
    const one = await ParallelCourseTrainer.create(COURSE, schedule, { ...DEFAULT_TRAIN, batchSize: 2 }, 1);
    expect(one.threads).to.equal(1);
    await one.dispose();
  });
});
