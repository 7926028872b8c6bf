// Every public lib function that reads tensor values back must read asynchronously: on webgpu in Node a synchronous
// read (dataSync / arraySync) of a computed tensor throws, and on any GPU it stalls the pipeline. CI has only cpu/wasm,
// where a synchronous read works, so this test makes it fail there too: Tensor.prototype.dataSync and arraySync throw
// while lib's reading functions run (restored afterwards).
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadMnist } from '../../lib/data/mnist';
import { DigitClassifier, type ClassifierConfig } from '../../lib/eval/classifier';
import { loadClassifier, saveClassifier } from '../../lib/eval/classifier-io';
import { evaluateSamples, realReference, sampleBatch, sampleForLabels } from '../../lib/eval/evaluate';
import { validationSplit } from '../../lib/data/datasets';
import { trainClassifier } from '../../lib/eval/train-classifier';
import { diffusionLoss } from '../../lib/losses';
import { UNet, type UNetConfig } from '../../lib/models';
import { ParallelCourseTrainer, parallelDenoiser } from '../../lib/parallel';
import { allFinite, annealedLangevin, ddimSample, ddpmSample, disposeResult } from '../../lib/samplers';
import { NoiseSchedule } from '../../lib/schedule';
import { DEFAULT_TRAIN, loadModel, resumeTrainer, saveTrainer, Trainer, type Batch } from '../../lib/train';
import { histogram, imageGrid, scatter2d, trajectoryStrip, vectorField } from '../../lib/viz/index';
import { runEvaluate } from '../../scripts/evaluate';
import { runQualityTable } from '../../scripts/quality-vs-calls';
import { runSample } from '../../scripts/sample';
import { runTrain } from '../../scripts/train';
import { baselineGenerator, diffusionGenerator } from '../../lib/compare/generators';
import { judgeConditional, judgeUnconditional, realYardstick, timeSampling } from '../../lib/compare/judge';
import { emaModel, makeTrainer, trainForBudget } from '../../lib/compare/budget';
import { Gan, type GanConfig, Vae, type VaeConfig } from '../../lib/models';
import {
  DEFAULT_GAN_TRAIN, DEFAULT_VAE_TRAIN, GanTrainer, loadBaseline, resumeBaselineTrainer, saveBaselineTrainer, VaeTrainer,
} from '../../lib/train';

const TINY: UNetConfig = {
  kind: 'unet', imageSize: 8, channels: 1, widths: [8, 16], blocksPerLevel: 1, attentionResolutions: [4], groups: 4,
  embDim: 16, timeSinDim: 8, midBlocks: 1, numClasses: 10, dropout: 0.1, predictionType: 'epsilon', seed: 4,
};
const SMALL_CLASSIFIER: ClassifierConfig = { channels: [4, 8, 8], hidden: 16, numClasses: 10, dropout: 0.3 };
const batchAt = (s: number): Batch => ({ x: tf.randomUniform([4, 8, 8, 1], -1, 1, 'float32', s), y: tf.tensor1d([0, 1, 2, 3], 'int32') });

/** Runs `f` with synchronous reads disabled: any dataSync / arraySync call throws (and is recorded). */
async function withoutSyncReads<T>(f: () => Promise<T>): Promise<T> {
  const proto = tf.Tensor.prototype as unknown as Record<'dataSync' | 'arraySync', unknown>;
  const saved = { dataSync: proto.dataSync, arraySync: proto.arraySync };
  const calls: string[] = [];
  for (const name of ['dataSync', 'arraySync'] as const) {
    proto[name] = function (this: tf.Tensor) {
      const where = new Error().stack?.split('\n')[2]?.trim() ?? '?';
      calls.push(`${name} ${where}`);
      throw new Error(`synchronous read (${name}) of a [${this.shape}] tensor ${where}`);
    };
  }
  try {
    return await f();
  } finally {
    proto.dataSync = saved.dataSync;
    proto.arraySync = saved.arraySync;
    expect(calls, 'synchronous reads').to.deep.equal([]);
  }
}

describe('lib reads tensors only asynchronously (dataSync / arraySync disabled)', function () {
  this.timeout(180000);
  let dir: string;
  const log = console.log;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nosync-')); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('training: fit, trainStep, EMA / Adam / weight reads, checkpoint save and resume', async () => {
    const schedule = NoiseSchedule.linear(50);
    const config = { ...DEFAULT_TRAIN, steps: 3, batchSize: 4, warmupSteps: 1, checkpointEvery: 2 };
    const t = new Trainer(new UNet(TINY), schedule, config);
    const file = path.join(dir, 'checkpoint.bin');
    const before = tf.memory().numTensors;
    await withoutSyncReads(async () => {
      const steps: number[] = [];
      await t.fit(batchAt, { onStep: (e) => steps.push(e.step), onCheckpoint: () => saveTrainer(file, t), progress: false });
      expect(steps).to.deep.equal([0, 1, 2]);
      const r = await t.trainStep(batchAt(3));
      expect(Number.isFinite(r.loss)).to.equal(true);
      expect((await t.emaWeights()).size).to.equal(t.model.params.names().length);
      expect((await t.optimizer.getState()).m).to.have.length(t.model.params.names().length);
      expect((await t.model.params.snapshot()).size).to.equal(t.model.params.names().length);
      await saveTrainer(file, t);
      const [x0, tt] = [tf.zeros([2, 8, 8, 1]), tf.tensor1d([3, 40], 'int32')];
      const loss = diffusionLoss((x, ts) => t.model.apply(x, ts), x0, schedule, { t: tt });
      expect(await allFinite(loss)).to.equal(true);
      tf.dispose([loss, x0, tt]);
    });
    expect(tf.memory().numTensors).to.equal(before);
    const back = resumeTrainer(file);
    expect(back.step).to.equal(4);
    for (const x of [t, back]) { x.dispose(); x.model.dispose(); }
  });

  it('baselines (notebook 10): VAE / GAN trainers, their checkpoints, the comparison\'s generators, judge and budget training', async () => {
    const vaeCfg: VaeConfig = { kind: 'vae', imageSize: 28, channels: 1, widths: [4, 8], latentDim: 3, groups: 2, numClasses: 10, seed: 1 };
    const ganCfg: GanConfig = { kind: 'gan', imageSize: 28, channels: 1, latentDim: 3, generatorWidths: [4, 8], discriminatorWidths: [4, 4], groups: 2, numClasses: 10, seed: 1 };
    const batch28 = (s: number): Batch => ({ x: tf.randomUniform([4, 28, 28, 1], -1, 1, 'float32', s), y: tf.tensor1d([0, 1, 2, 3], 'int32') });
    const digits = loadMnist('test').subset(Array.from({ length: 40 }, (_, i) => i));
    const before = tf.memory().numTensors;
    const classifier = DigitClassifier.create(SMALL_CLASSIFIER);
    const trainers = [new VaeTrainer(new Vae(vaeCfg), { ...DEFAULT_VAE_TRAIN, steps: 2, batchSize: 4 }), new GanTrainer(new Gan(ganCfg), { ...DEFAULT_GAN_TRAIN, steps: 2, batchSize: 4 })];
    await withoutSyncReads(async () => {
      for (const t of trainers) {
        const file = path.join(dir, `${t.model.config.kind}.bin`);
        await t.fit(batch28, { onCheckpoint: () => saveBaselineTrainer(file, t), progress: false });
        await t.trainStep(batch28(2));
        await saveBaselineTrainer(file, t);
        const back = resumeBaselineTrainer(file);
        expect(back.step).to.equal(3);
        back.dispose();
        back.model.dispose();
        const loaded = loadBaseline(file).model;
        const gen = baselineGenerator(loaded);
        const real = await realReference(classifier, digits);
        const yard = await realYardstick(classifier, digits, 20);
        const images = await gen.sample(12, 1);
        const u = await judgeUnconditional(classifier, images, real, yard);
        expect(u.coverage.total).to.equal(12);
        images.dispose();
        expect((await judgeConditional(classifier, gen, 1, real, 2)).accuracy.total).to.equal(10);
        expect((await timeSampling(gen, 2, 1)).msPerImage).to.be.greaterThan(0);
        loaded.dispose();
      }
      const u = makeTrainer('unet', {
        unet: { model: { ...TINY, imageSize: 28, attentionResolutions: [] }, schedule: { kind: 'linear', T: 20 }, train: { ...DEFAULT_TRAIN, batchSize: 4 } },
        vae: { model: vaeCfg, train: { ...DEFAULT_VAE_TRAIN, batchSize: 4 } }, gan: { model: ganCfg, train: { ...DEFAULT_GAN_TRAIN, batchSize: 4 } },
      }, 0);
      const run = await trainForBudget('unet', u, loadMnist('train').subset([0, 1, 2, 3, 4, 5, 6, 7]), 0.3);
      expect(run.steps).to.be.greaterThan(0);
      const m = await emaModel(u);
      const d = diffusionGenerator(m as UNet, NoiseSchedule.linear(20), 2);
      (await d.sample(2, 1)).dispose();
      m.dispose();
      u.dispose();
      u.model.dispose();
    });
    for (const t of trainers) { t.dispose(); t.model.dispose(); }
    classifier.dispose();
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('sampling: DDPM, DDIM with guidance and trajectories, Langevin; displays of the results', async () => {
    const model = new UNet({ ...TINY, dropout: 0 });
    const schedule = NoiseSchedule.linear(20);
    const den = (x: tf.Tensor, t: tf.Tensor1D, c?: tf.Tensor1D) => model.apply(x, t, c);
    await withoutSyncReads(async () => {
      const a = await ddpmSample(den, [2, 8, 8, 1], schedule, { predictionType: 'epsilon', seed: 1, classes: [1, 2], checkEvery: 7 });
      const b = await ddimSample(den, [2, 8, 8, 1], schedule, {
        predictionType: 'epsilon', seed: 1, steps: 5, guidance: { weight: 2, classes: [3, 4] }, returnTrajectory: true,
      });
      const c = await annealedLangevin((x) => tf.neg(x), [3, 2], { sigmas: [1, 0.1], stepsPerLevel: 4, seed: 1 });
      expect((await imageGrid(a.sample as tf.Tensor4D)).length).to.be.greaterThan(0);
      expect((await trajectoryStrip(b.trajectory.map((p) => p.x), b.trajectory.map((p) => p.t))).length).to.be.greaterThan(0);
      expect((await scatter2d(c.sample as tf.Tensor2D)).length).to.be.greaterThan(0);
      expect((await vectorField(c.sample as tf.Tensor2D, c.sample as tf.Tensor2D)).length).to.be.greaterThan(0);
      expect((await histogram(a.sample)).length).to.be.greaterThan(0);
      for (const r of [a, b, c]) disposeResult(r);
    });
    model.dispose();
  });

  it('evaluation: classify, accuracy, real reference, evaluateSamples, sampleForLabels; classifier training and save', async () => {
    const classifier = DigitClassifier.create(SMALL_CLASSIFIER, 1);
    const test = loadMnist('test');
    const model = new UNet({ ...TINY, imageSize: 28, dropout: 0, attentionResolutions: [] });
    const loaded = { model, schedule: NoiseSchedule.linear(10), header: { model: model.config, schedule: NoiseSchedule.linear(10).toJSON(), step: 0 } };
    await withoutSyncReads(async () => {
      const { train, validation } = validationSplit(loadMnist('train'), { perClass: 5 });
      await trainClassifier(classifier, train, { epochs: 2, batchSize: 8, learningRate: 1e-3, seed: 0, maxShift: 1, flip: true, maxStepsPerEpoch: 2, validation, patience: 1 });
      const ref = await realReference(classifier, test);
      const images = await sampleForLabels(loaded, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], { sampler: 'ddim', steps: 2, guidance: 2, seed: 0, batchSize: 5 });
      const report = await evaluateSamples(classifier, images, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], ref);
      for (const sampler of ['dpm++2m', 'heun'] as const) {
        const b = await sampleBatch(loaded, [1, 2], 0, { sampler, steps: 2, guidance: 1.5, seed: 0, batchSize: 2 });
        b.images.dispose();
      }
      expect(report.accuracy.total).to.equal(10);
      expect(await classifier.accuracy(images, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])).to.equal(report.accuracy.overall);
      images.dispose();
      await saveClassifier(classifier, dir);
    });
    loadClassifier(dir).dispose();
    classifier.dispose();
    model.dispose();
  });

  it('the CLIs (train, sample) and the data-parallel trainer (main thread)', async () => {
    const out = path.join(dir, 'tiny');
    console.log = () => undefined;
    try {
      await withoutSyncReads(async () => {
        await runTrain(['configs/tiny-test.json', '--steps', '2', '--out', out, '--quiet']);
        await runSample(['--checkpoint', out, '--class', '3', '--n', '2', '--steps', '2', '--out', path.join(dir, 'g.png'), '--raw', path.join(dir, 'r.bin'), '--quiet']);
        await runSample(['--checkpoint', out, '--n', '2', '--sampler', 'heun', '--calls', '3', '--json', path.join(dir, 'h.json'), '--quiet']);
        await runEvaluate(['--checkpoint', out, '--sampler', 'euler', '--steps', '2', '--n', '10', '--quiet'], () => undefined);
        await runQualityTable(['--checkpoint', out, '--rows', 'dpm++2m:2', '--n', '10', '--out', path.join(dir, 'q')], () => undefined);
      });
    } finally {
      console.log = log;
    }
    const par = await ParallelCourseTrainer.create({ ...TINY, dropout: 0 }, NoiseSchedule.linear(20), { ...DEFAULT_TRAIN, steps: 2, batchSize: 4 }, 2);
    try {
      await withoutSyncReads(async () => {
        await par.fit(batchAt);
        expect(par.lossHistory).to.have.length(2);
        const r = await ddimSample(parallelDenoiser(par.parallel), [3, 8, 8, 1], par.schedule, { predictionType: 'epsilon', steps: 2, seed: 1, classes: [1, 2, 3] });
        disposeResult(r);
        await saveTrainer(path.join(dir, 'par.bin'), par);
      });
    } finally {
      await par.dispose();
    }
    expect(loadModel(path.join(dir, 'par.bin')).header.step).to.equal(2);
  });
});
