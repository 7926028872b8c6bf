import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { defaultBlasThreads, loadBlasAddon } from '../../lib/backend/kernels/native-blas';
import { makeModelReplica, ParallelCourseTrainer, parallelDenoiser } from '../../lib/parallel';
import { ddimSample } from '../../lib/samplers';
import { UNet, type UNetConfig } from '../../lib/models';
import { NoiseSchedule } from '../../lib/schedule';
import { DEFAULT_TRAIN, stepLoss, Trainer, type Batch, type TrainConfig } from '../../lib/train/trainer';

// A tiny class-conditional U-Net with attention: every layer kind of the reference model, in milliseconds.
const TINY: UNetConfig = {
  kind: 'unet', imageSize: 8, channels: 1, widths: [8, 16], blocksPerLevel: 1, attentionResolutions: [4], groups: 4,
  embDim: 16, timeSinDim: 8, midBlocks: 1, numClasses: 10, dropout: 0, predictionType: 'epsilon', seed: 3,
};
const TRAIN: TrainConfig = { ...DEFAULT_TRAIN, steps: 3, batchSize: 6, lr: 1e-2, warmupSteps: 0, gradClip: 1, seed: 5 };

function batchAt(step: number): Batch {
  return {
    x: tf.randomUniform([TRAIN.batchSize, 8, 8, 1], -1, 1, 'float32', 40 + step),
    y: tf.tensor1d([0, 1, 2, 3, 4, 5].map((l) => (l + step) % 10), 'int32'),
  };
}

describe('parallel: ParallelCourseTrainer (2 threads) vs lib/train Trainer (1 thread)', function () {
  this.timeout(120000);

  it('computes the same losses, gradient norms, weights and EMA over 3 steps of a U-Net', async () => {
    const schedule = NoiseSchedule.linear(100);
    const model = new UNet(TINY);
    const ref = new Trainer(model, schedule, TRAIN);
    const par = await ParallelCourseTrainer.create(TINY, schedule, TRAIN, 2);
    try {
      for (let s = 0; s < TRAIN.steps; s++) {
        const a = await ref.trainStep(batchAt(s));
        const b = await par.trainStep(batchAt(s));
        expect(b.loss, `loss at step ${s}`).to.be.closeTo(a.loss, 1e-5 * a.loss);
        expect(b.gradNorm, `grad norm at step ${s}`).to.be.closeTo(a.gradNorm, 1e-4 * a.gradNorm);
        expect(b.lr).to.equal(a.lr);
      }
      const refVars = model.params.variables();
      const parVars = par.replica.variables;
      expect(parVars.length).to.equal(refVars.length);
      let maxDiff = 0;
      let maxMove = 0;
      const init = new UNet(TINY);
      const names = model.params.names();
      refVars.forEach((v, j) => {
        const x = v.dataSync();
        const y = parVars[j].dataSync();
        const x0 = init.params.variables()[j].dataSync();
        // The key part of an attention's qkv bias has a true gradient of exactly 0 (softmax ignores a constant added
        // to every logit of a row), so its computed gradient is rounding noise that Adam scales up to ±lr: skip it.
        const isQkvBias = /attn\.\d+\.qkv\.b$/.test(names[j]);
        for (let i = 0; i < x.length; i++) {
          if (!isQkvBias) maxDiff = Math.max(maxDiff, Math.abs(x[i] - y[i]));
          maxMove = Math.max(maxMove, Math.abs(x[i] - x0[i]));
        }
      });
      init.dispose();
      // Adam moves weights by ≈ lr per step; float-rounding differences in the sharded sum stay far below that
      expect(maxMove).to.be.above(0.5 * TRAIN.lr);
      expect(maxDiff).to.be.below(1e-3 * TRAIN.lr);
      const emaA = await ref.ema.values();
      const emaB = await par.ema.values();
      emaA.forEach((e, j) => {
        if (!/attn\.\d+\.qkv\.b$/.test(names[j])) e.forEach((v, i) => expect(Math.abs(v - emaB[j][i])).to.be.below(1e-3 * TRAIN.lr));
      });
    } finally {
      ref.dispose();
      model.dispose();
      await par.dispose();
    }
  });

  it('passes the run\'s lossWeighting to every thread: Min-SNR losses of a scale-shift U-Net match the one-thread trainer', async () => {
    const schedule = NoiseSchedule.cosine(100);
    const config: UNetConfig = { ...TINY, embedding: 'scale-shift', predictionType: 'v' };
    const train: TrainConfig = { ...TRAIN, lossWeighting: { minSnrGamma: 2 } };
    const model = new UNet(config);
    const ref = new Trainer(model, schedule, train);
    const plain = new Trainer(new UNet(config), schedule, TRAIN);
    const par = await ParallelCourseTrainer.create(config, schedule, train, 2);
    try {
      for (let s = 0; s < 2; s++) {
        const a = await ref.trainStep(batchAt(s));
        const b = await par.trainStep(batchAt(s));
        const p = await plain.trainStep(batchAt(s));
        expect(b.loss, `loss at step ${s}`).to.be.closeTo(a.loss, 1e-5 * a.loss);
        expect(Math.abs(p.loss - a.loss) / a.loss, 'the weighting changes the loss').to.be.above(0.05);
      }
    } finally {
      for (const t of [ref, plain]) { t.dispose(); t.model.dispose(); }
      await par.dispose();
    }
  });

  it('samples the same images with the model split over 2 threads (DDIM, parallelDenoiser) as with one thread', async () => {
    const schedule = NoiseSchedule.linear(100);
    const par = await ParallelCourseTrainer.create(TINY, schedule, TRAIN, 2);
    try {
      await par.trainStep(batchAt(0)); // weights differ from the initial ones that the worker was built with
      const classes = [0, 1, 2, 3, 4, 5, 6];
      const model = par.model;
      const one = await ddimSample((x, t, c) => model.apply(x, t, c), [7, 8, 8, 1], schedule, { predictionType: model.predictionType, steps: 4, seed: 9, classes });
      const before = tf.memory().numTensors;
      const two = await ddimSample(parallelDenoiser(par.parallel), [7, 8, 8, 1], schedule, { predictionType: model.predictionType, steps: 4, seed: 9, classes });
      expect(tf.memory().numTensors).to.equal(before + 1);
      // with guidance too (the doubled batch goes through the threads)
      const guidance = { weight: 2, classes };
      const g1 = await ddimSample((x, t, c) => model.apply(x, t, c), [7, 8, 8, 1], schedule, { predictionType: model.predictionType, steps: 2, seed: 9, guidance });
      const g2 = await ddimSample(parallelDenoiser(par.parallel), [7, 8, 8, 1], schedule, { predictionType: model.predictionType, steps: 2, seed: 9, guidance });
      const [ga, gb] = [g1.sample.dataSync(), g2.sample.dataSync()];
      for (let i = 0; i < ga.length; i++) expect(Math.abs(ga[i] - gb[i])).to.be.below(1e-4);
      tf.dispose([g1.sample, g2.sample]);
      expect(tf.memory().numTensors).to.equal(before + 1);
      const a = one.sample.dataSync();
      const b = two.sample.dataSync();
      let m = 0;
      for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
      expect(m).to.be.below(1e-4);
      tf.dispose([one.sample, two.sample]);
    } finally {
      await par.dispose();
    }
  });

  it('native kernels run one thread each while a 2-thread group lives, and every core again after dispose', async function () {
    const lib = loadBlasAddon();
    if (!lib) this.skip();
    const schedule = NoiseSchedule.linear(100);
    const par = await ParallelCourseTrainer.create(TINY, schedule, TRAIN, 2);
    try {
      expect(lib!.threads()).to.equal(1);
    } finally {
      await par.dispose();
    }
    expect(lib!.threads()).to.equal(defaultBlasThreads());
  });

  it('leaks no tensors per step', async () => {
    const schedule = NoiseSchedule.linear(100);
    const par = await ParallelCourseTrainer.create(TINY, schedule, TRAIN, 2);
    try {
      await par.trainStep(batchAt(0));
      const before = tf.memory().numTensors;
      for (let s = 1; s < 4; s++) await par.trainStep(batchAt(s));
      expect(tf.memory().numTensors).to.equal(before);
    } finally {
      await par.dispose();
    }
  });

  it('the replica draws dropout masks from its shard\'s seed (new masks every step and shard)', () => {
    const schedule = NoiseSchedule.linear(100);
    const config = { ...TINY, dropout: 0.5 };
    const replica = makeModelReplica({ config, schedule: schedule.toJSON() });
    const before = tf.memory().numTensors;
    const x0 = tf.randomUniform([3, 8, 8, 1], -1, 1, 'float32', 1);
    const noise = tf.randomNormal([3, 8, 8, 1], 0, 1, 'float32', 2);
    const t = tf.tensor1d([5, 50, 95], 'int32');
    const classes = tf.tensor1d([1, 2, 10], 'int32');
    const lossWith = (seed: number) => {
      const l = replica.loss({ x0, noise, t, classes }, { seed });
      const v = l.dataSync()[0];
      l.dispose();
      return v;
    };
    const direct = (dropoutSeed: number) => {
      const l = stepLoss(replica.model, schedule, { x0, noise, t, classes, dropoutSeed });
      const v = l.dataSync()[0];
      l.dispose();
      return v;
    };
    expect(lossWith(7)).to.equal(direct(7));
    expect(lossWith(7)).to.not.equal(lossWith(8)); // dropout 0.5: different masks, different loss
    expect(lossWith(-1)).to.equal(direct(-1 >>> 0));
    tf.dispose([x0, noise, t, classes]);
    expect(tf.memory().numTensors).to.equal(before);
    replica.dispose?.();
  });
});
