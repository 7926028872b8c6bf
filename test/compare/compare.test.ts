import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { downsample, emaModel, makeTrainer, trainForBudget, type ComparisonSpec, disposeTrainer } from '../../lib/compare/budget';
import { baselineGenerator, classLabels, diffusionGenerator } from '../../lib/compare/generators';
import {
  classifierDirFor, classifierFor, judgeConditional, judgeUnconditional, realYardstick, spreadOf, timeSampling,
} from '../../lib/compare/judge';
import { readStudyConfig, runStudy } from '../../lib/compare/study';
import { loadDataset } from '../../lib/data/datasets';
import { CorruptFileError, InvalidArgumentError } from '../../lib/errors';
import { DigitClassifier } from '../../lib/eval/classifier';
import { classifierDir, saveClassifier } from '../../lib/eval/classifier-io';
import { realReference } from '../../lib/eval/evaluate';
import { withinClassSpread } from '../../lib/eval/metrics';
import { Gan, type GanConfig, UNet, type UNetConfig, Vae, type VaeConfig } from '../../lib/models';
import { makeRng, shuffle } from '../../lib/random';
import { NoiseSchedule } from '../../lib/schedule';
import { DEFAULT_GAN_TRAIN, DEFAULT_TRAIN, DEFAULT_VAE_TRAIN, GanTrainer } from '../../lib/train';

// Tiny 28×28 models (the classifier judges 28×28 images).
const UNET: UNetConfig = {
  kind: 'unet', imageSize: 28, channels: 1, widths: [4, 8], blocksPerLevel: 1, attentionResolutions: [], groups: 2, embDim: 8,
  timeSinDim: 8, numClasses: 10, dropout: 0, predictionType: 'v', seed: 0,
};
const VAE: VaeConfig = { kind: 'vae', imageSize: 28, channels: 1, widths: [4, 8], latentDim: 3, groups: 2, numClasses: 10, seed: 0 };
const GAN: GanConfig = {
  kind: 'gan', imageSize: 28, channels: 1, latentDim: 3, generatorWidths: [4, 8], discriminatorWidths: [4, 4], groups: 2, numClasses: 10, seed: 0,
};
const SPEC: ComparisonSpec = {
  unet: { model: UNET, schedule: { kind: 'cosine', T: 100 }, train: { ...DEFAULT_TRAIN, batchSize: 4, steps: 1000, warmupSteps: 2 } },
  vae: { model: VAE, train: { ...DEFAULT_VAE_TRAIN, batchSize: 4, steps: 1000 } },
  gan: { model: GAN, train: { ...DEFAULT_GAN_TRAIN, batchSize: 4, steps: 1000 } },
};

describe('compare: generators, judge, budget training and the study (notebook 10)', function () {
  this.timeout(300000);
  let dir: string;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'compare-')); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('generators: shapes, seeded batches, classes and guidance checked, calls per image, no leaked tensors', async () => {
    const unet = new UNet(UNET);
    const vae = new Vae(VAE);
    const gan = new Gan(GAN);
    const gens = [diffusionGenerator(unet, NoiseSchedule.cosine(100), 3), baselineGenerator(vae), baselineGenerator(gan)];
    expect(gens.map((g) => g.kind)).to.deep.equal(['unet', 'vae', 'gan']);
    expect([gens[0].callsPerImage(), gens[0].callsPerImage(2), gens[0].callsPerImage(1), gens[1].callsPerImage(), gens[2].callsPerImage()]).to.deep.equal([3, 6, 3, 1, 1]);
    for (const g of gens) {
      (await g.sample(2, 1)).dispose(); // burn-in
      const before = tf.memory().numTensors;
      const a = await g.sample(5, 7, { batchSize: 2 });
      const b = await g.sample(5, 7, { batchSize: 2 });
      const c = await g.sample(5, 8, { batchSize: 2 });
      const d = await g.sample(5, 7, { batchSize: 2, classes: [0, 1, 2, 3, 4] });
      expect(a.shape).to.deep.equal([5, 28, 28, 1]);
      expect(Array.from(await a.data())).to.deep.equal(Array.from(await b.data()));
      expect(Array.from(await a.data())).to.not.deep.equal(Array.from(await c.data()));
      expect(Array.from(await a.data())).to.not.deep.equal(Array.from(await d.data()));
      const lo = Math.min(...(await a.data()));
      const hi = Math.max(...(await a.data()));
      expect([lo >= -1, hi <= 1], g.kind).to.deep.equal([true, true]);
      tf.dispose([a, b, c, d]);
      expect(tf.memory().numTensors, g.kind).to.equal(before);
      await expectRejects(() => g.sample(2, 1, { classes: [0] }), /1 classes for 2 images/);
      await expectRejects(() => g.sample(2, 1, { classes: [0, 10] }), /class 1 is 10/);
      await expectRejects(() => g.sample(0, 1), /n must be a positive integer/);
    }
    await expectRejects(() => gens[1].sample(2, 1, { guidance: 2, classes: [0, 1] }), /guidance needs the diffusion model/);
    const guided = await gens[0].sample(2, 1, { guidance: 2, classes: [3, 4] });
    expect(guided.shape).to.deep.equal([2, 28, 28, 1]);
    guided.dispose();
    expect(classLabels(2, 3)).to.deep.equal([0, 0, 1, 1, 2, 2]);
    for (const m of [unet, vae, gan]) m.dispose();
  });

  it('judge: real images score like real images (coverage near uniform, FID near its floor, spread ratio near 1); a single class is caught', async () => {
    const classifier = classifierFor('mnist');
    const test = loadDataset('mnist', 'test');
    const real = await realReference(classifier, test);
    const yard = await realYardstick(classifier, test, 500);
    expect(yard.coverage.entropyRatio).to.be.greaterThan(0.99);
    // 500 real test images drawn at random, as if they were samples (a block of the test set would not do: its first
    // and second halves come from different writers, and a block's FID to the whole set is ~3× the floor)
    const pick = shuffle(Array.from({ length: test.size }, (_, i) => i), makeRng(5)).slice(0, 500);
    const other = test.batch(pick);
    const before = tf.memory().numTensors;
    const r = await judgeUnconditional(classifier, other.x, real, yard);
    expect(tf.memory().numTensors).to.equal(before);
    expect(r.coverage.entropyRatio).to.be.greaterThan(0.98);
    expect(r.fidRatio).to.be.within(0.5, 2);
    expect(r.spreadRatio).to.be.within(0.8, 1.25);
    // only the digits 1 of the same set: one class, far from the data
    const ones = pick.filter((i) => test.labels[i] === 1);
    const onlyOnes = test.batch(ones);
    const s = await judgeUnconditional(classifier, onlyOnes.x, real, yard);
    expect(s.coverage.effectiveClasses).to.be.lessThan(1.2);
    expect(s.fidRatio).to.be.greaterThan(5);
    tf.dispose([other.x, other.y, onlyOnes.x, onlyOnes.y]);
    // conditional judging with a generator that returns real images of the asked class: accuracy near the classifier's
    const byClass = Array.from({ length: 10 }, (_, c) => Array.from(test.labels).flatMap((l, i) => (l === c ? [i] : [])));
    const fake = { kind: 'vae' as const, numClasses: 10, callsPerImage: () => 1,
      sample: async (n: number, seed: number, o: { classes?: number[] } = {}) => test.batch(o.classes!.map((c, i) => byClass[c][(seed + i) % byClass[c].length])).x };
    const cond = await judgeConditional(classifier, fake, 20, real, 3);
    expect(cond.accuracy.overall).to.be.greaterThan(0.95);
    expect(cond.fid.fid / cond.fid.floor).to.be.within(0.4, 2.5);
    classifier.dispose();
  });

  it('spreadOf equals withinClassSpread on classes with ≥ 2 rows and ignores singletons; NaN when none has two', () => {
    const f = [0, 0, 2, 0, 5, 5, 9, 9];  // 4 rows of dim 2
    expect(spreadOf(f, 2, [0, 0, 1, 2])).to.be.closeTo(withinClassSpread([0, 0, 2, 0], 2, [0, 0]), 1e-12);
    expect(spreadOf(f, 2, [0, 0, 1, 2])).to.be.closeTo(2, 1e-12); // Var of (0, 2) is 2 in x, 0 in y
    expect(spreadOf(f, 2, [0, 1, 2, 3])).to.be.NaN;
  });

  it('classifierFor: by data set (lib/eval\'s classifierDir by default), a named error for a missing or mismatched one', async () => {
    expect(classifierDirFor('mnist')).to.equal(classifierDir('mnist'));
    const root = path.join(dir, 'ck');
    fs.mkdirSync(root);
    expect(() => classifierDirFor('fashion-mnist', root)).to.throw(CorruptFileError, /no classifier of fashion-mnist: looked for ck\/classifier-fashion-mnist\/classifier\.ckpt.*npm run train-classifier -- --dataset fashion-mnist/);
    const c = DigitClassifier.create({ channels: [2, 2, 2], hidden: 4, numClasses: 10, dropout: 0 });
    await saveClassifier(c, path.join(root, 'classifier-mnist'), { dataset: 'mnist' });
    expect(classifierDirFor('mnist', root)).to.equal(path.join(root, 'classifier-mnist'));
    classifierFor('mnist', root).dispose();
    await saveClassifier(c, path.join(root, 'classifier-mnist'), { dataset: 'fashion-mnist' });
    expect(() => classifierFor('mnist', root)).to.throw(InvalidArgumentError, /classifier of fashion-mnist, but one of mnist/);
    c.dispose();
  });

  it('timeSampling: positive times per image and per call, the generator\'s calls, nothing leaked', async () => {
    const unet = new UNet(UNET);
    const g = diffusionGenerator(unet, NoiseSchedule.cosine(100), 2);
    const before = tf.memory().numTensors;
    const t = await timeSampling(g, 3, 2);
    expect(tf.memory().numTensors).to.equal(before);
    expect(t.msPerImage).to.be.greaterThan(0);
    expect(t.callsPerImage).to.equal(2);
    expect(t.msPerCall).to.be.closeTo(t.msPerImage / 2, 1e-9);
    unet.dispose();
  });

  it('trainForBudget stops at the wall-clock budget; a NaN run is recorded as failed, not thrown; emaModel carries the EMA', async () => {
    const data = loadDataset('mnist', 'train').subset(Array.from({ length: 64 }, (_, i) => i));
    for (const kind of ['unet', 'vae', 'gan'] as const) {
      const t = makeTrainer(kind, SPEC, 1);
      const run = await trainForBudget(kind, t, data, 0.6);
      expect(run.steps, kind).to.be.greaterThan(0);
      expect(run.wallSec, kind).to.be.within(0.6, 5);
      expect(run.failed).to.equal(undefined);
      expect(Object.keys(run.losses)).to.deep.equal(kind === 'gan' ? ['d', 'g'] : [kind === 'vae' ? 'negElbo' : 'loss']);
      expect(Object.values(run.losses)[0]).to.have.length(run.steps);
      expect(t.config.seed).to.equal(1);
      const m = await emaModel(t);
      const names = t instanceof GanTrainer ? t.model.partNames('generator') : m.params.names();
      const ema = await t.ema.values();
      const got = await m.params.snapshot();
      names.forEach((n, i) => expect(Array.from(got.get(n)!), n).to.deep.equal(Array.from(ema[i])));
      m.dispose();
      disposeTrainer(t);
    }
    const nan = { ...data, size: 64, batch: (idx: ArrayLike<number>) => ({ x: tf.fill([idx.length, 28, 28, 1], NaN) as tf.Tensor4D, y: tf.zeros([idx.length], 'int32') as tf.Tensor1D }) };
    const t = makeTrainer('gan', SPEC, 0);
    const run = await trainForBudget('gan', t, nan as never, 5);
    expect(run.failed).to.match(/GAN discriminator: .*at step 0/);
    expect(run.steps).to.equal(0);
    disposeTrainer(t);
    expect(downsample([1, 2, 3, 4, 5], 2)).to.deep.equal({ every: 3, values: [2, 4.5] });
    expect(downsample([1, 2], 5)).to.deep.equal({ every: 1, values: [1, 2] });
  });

  it('the study in miniature: every run judged and flagged, first seed exported with provenance, a second call resumes without re-training', async () => {
    const root = path.join(dir, 'study');
    fs.mkdirSync(path.join(root, 'configs'), { recursive: true });
    const w = (f: string, v: unknown) => fs.writeFileSync(path.join(root, 'configs', f), JSON.stringify(v));
    w('vae.json', { name: 'vae', model: VAE, train: SPEC.vae.train, data: { dataset: 'mnist' } });
    w('gan.json', { name: 'gan', model: GAN, train: SPEC.gan.train, data: { dataset: 'mnist' } });
    const study = {
      name: 'mini', dataset: 'mnist', budgetMinutes: 0.005, seeds: [3, 4], unet: SPEC.unet, vae: 'configs/vae.json', gan: 'configs/gan.json',
      eval: { unconditional: 20, perClass: 2, ddimSteps: 2, guidance: 2, realImages: 30, costBatch: 2, costReps: 1 },
      thresholds: { entropyRatioBelow: 0.9, fidRatioAbove: 10 },
    };
    w('study.json', study);
    const file = path.join(root, 'configs', 'study.json');
    const opts = {
      outDir: path.join(root, 'out'), runDir: path.join(root, 'runs'), command: 'test', git: { commit: 'c', dirty: false }, backend: 'b', fast: false,
    };
    const r = await runStudy(file, opts);
    expect(r.runs.map((x) => `${x.kind}${x.seed}`)).to.deep.equal(['unet3', 'vae3', 'gan3', 'unet4', 'vae4', 'gan4']);
    for (const run of r.runs) {
      expect(run.eval!.unconditional.counts.reduce((a, b) => a + b, 0)).to.equal(20);
      expect(run.eval!.conditional.samples).to.equal(20);
      expect(run.collapsed).to.equal(run.eval!.unconditional.entropyRatio < 0.9);
      expect(run.poor).to.equal(run.eval!.unconditional.fidRatio > 10);
      expect(run.load.start).to.have.length(3);
    }
    expect(r.runs[0].eval!.guided!.guidance).to.equal(2);
    expect(r.runs[1].eval!.guided).to.equal(undefined);
    expect(Object.keys(r.cost!)).to.deep.equal(['unet', 'vae', 'gan']);
    expect(r.cost!.unet.callsPerImage).to.equal(2);
    for (const kind of ['unet', 'vae', 'gan']) {
      const prov = JSON.parse(fs.readFileSync(path.join(opts.outDir, kind, 'provenance.json'), 'utf8'));
      expect(prov).to.include({ seed: 3, dataset: 'mnist', gitCommit: 'c' });
      expect(prov.reproduce).to.match(new RegExp(`--reproduce ${kind}:3$`));
      expect(fs.statSync(path.join(opts.outDir, kind, 'checkpoint.bin')).size).to.be.greaterThan(0);
    }
    const stamp = fs.statSync(path.join(opts.runDir, 'unet-s3', 'checkpoint.bin')).mtimeMs;
    const again = await runStudy(file, opts);
    expect(again.runs).to.deep.equal(JSON.parse(JSON.stringify(r.runs)));
    expect(fs.statSync(path.join(opts.runDir, 'unet-s3', 'checkpoint.bin')).mtimeMs).to.equal(stamp);
    // every run carries its judge; runs judged by another classifier are judged again from their checkpoints, not re-trained
    expect(r.classifierHash).to.match(/^[0-9a-f]{16}$/);
    expect(r.runs.every((x) => x.judge === r.classifierHash)).to.equal(true);
    const resultsFile = path.join(opts.outDir, 'results.json');
    const tamper = (kinds: string[]) => {
      const saved = JSON.parse(fs.readFileSync(resultsFile, 'utf8'));
      for (const run of saved.runs) {
        if (kinds.includes(`${run.kind}${run.seed}`)) { run.judge = 'another-judge'; run.eval.unconditional.fid = -1; }
      }
      fs.writeFileSync(resultsFile, JSON.stringify(saved));
    };
    tamper(['unet3', 'vae4']);
    const lines: string[] = [];
    const rejudged = await runStudy(file, { ...opts, log: (l: string) => void lines.push(l) });
    expect(lines.join('\n')).to.match(/2 runs were judged by another classifier \(another-judge\): judging them again/);
    for (const [i, run] of rejudged.runs.entries()) {
      expect(run.judge).to.equal(r.classifierHash);
      expect(run.eval!.unconditional.fid).to.be.closeTo(r.runs[i].eval!.unconditional.fid, 1e-6 * r.runs[i].eval!.unconditional.fid); // same samples, same judge
    }
    expect(fs.statSync(path.join(opts.runDir, 'unet-s3', 'checkpoint.bin')).mtimeMs).to.equal(stamp);
    const unetProv = JSON.parse(fs.readFileSync(path.join(opts.outDir, 'unet', 'provenance.json'), 'utf8'));
    expect(unetProv).to.include({ judge: r.classifierHash, gitCommit: 'c' });
    tamper(['vae4']);
    fs.rmSync(path.join(opts.runDir, 'vae-s4'), { recursive: true });
    await expectRejects(() => runStudy(file, opts), /judged by another classifier .* checkpoints of vae seed 4 are not in/);
    // a changed config starts afresh; bad configs are named
    expect(readStudyConfig(file).hash).to.not.equal(readStudyConfig((w('study2.json', { ...study, budgetMinutes: 1 }), path.join(root, 'configs', 'study2.json'))).hash);
    w('bad.json', { ...study, thresholds: { entropyRatioBelow: 0.9, fidRatioAbove: 0.5 } });
    expect(() => readStudyConfig(path.join(root, 'configs', 'bad.json'))).to.throw(InvalidArgumentError, /fidRatioAbove > 1/);
    w('bad2.json', { ...study, dataset: 'fashion-mnist' });
    expect(() => readStudyConfig(path.join(root, 'configs', 'bad2.json'))).to.throw(InvalidArgumentError, /vae trains on mnist, the study on fashion-mnist/);
  });

  it('the shipped study configs parse, in both modes', () => {
    for (const f of ['configs/why-diffusion-mnist.json', 'configs/why-diffusion-fashion-mnist.json']) {
      const normal = readStudyConfig(f);
      const fast = readStudyConfig(f, true);
      expect(normal.config.seeds.length).to.be.greaterThan(fast.config.seeds.length - 1);
      expect(fast.config.budgetMinutes).to.be.lessThan(normal.config.budgetMinutes);
      expect(fast.spec.vae.train.batchSize).to.be.lessThan(normal.spec.vae.train.batchSize);
      expect(normal.spec.unet.model.kind).to.equal('unet');
    }
  });
});

async function expectRejects(f: () => Promise<unknown>, re: RegExp): Promise<void> {
  let err: unknown;
  try { await f(); } catch (e) { err = e; }
  expect(err, String(re)).to.be.instanceOf(InvalidArgumentError);
  expect((err as Error).message).to.match(re);
}
