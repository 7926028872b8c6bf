import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { CorruptFileError, InvalidArgumentError, NonFiniteError } from '../../lib/errors';
import { Gan, type GanConfig, Vae, type VaeConfig } from '../../lib/models';
import {
  type Batch, DEFAULT_GAN_TRAIN, DEFAULT_TRAIN, DEFAULT_VAE_TRAIN, dropClasses, GanTrainer, type GanTrainConfig, loadBaseline,
  loadModel, parseBaselineConfig, readBaselineConfig, resumeBaselineTrainer, saveBaselineTrainer, saveTrainer, stepSeed, Trainer,
  VaeTrainer, type VaeTrainConfig, drawStepInputs,
} from '../../lib/train';
import { NoiseSchedule } from '../../lib/schedule';
import { UNet } from '../../lib/models';

const VAE: VaeConfig = { kind: 'vae', imageSize: 8, channels: 1, widths: [4, 8], latentDim: 3, groups: 2, numClasses: 10, seed: 1 };
const GAN: GanConfig = {
  kind: 'gan', imageSize: 8, channels: 1, latentDim: 3, generatorWidths: [4, 8], discriminatorWidths: [4, 6], groups: 2, numClasses: 10, seed: 1,
};
const VAE_TRAIN: VaeTrainConfig = { ...DEFAULT_VAE_TRAIN, steps: 6, batchSize: 4, warmupSteps: 2, emaDecay: 0.9, checkpointEvery: 0, seed: 5 };
const GAN_TRAIN: GanTrainConfig = { ...DEFAULT_GAN_TRAIN, steps: 6, batchSize: 4, lr: 1e-3, lrD: 2e-3, warmupSteps: 2, emaDecay: 0.9, checkpointEvery: 0, seed: 5 };

/** Batch of step s: deterministic in s (as a resumed run needs); NaN pixels at the steps in `poison`. */
const source = (poison: number[] = []) => (s: number): Batch => ({
  x: poison.includes(s) ? tf.fill([4, 8, 8, 1], NaN) : tf.tidy(() => tf.tanh(tf.randomNormal([4, 8, 8, 1], 0, 1.5, 'float32', 100 + s))),
  y: tf.tensor1d([0, 1, 2, 3].map((l) => (l + s) % 10), 'int32'),
});

const read = async (vars: tf.Variable[]) => Promise.all(vars.map(async (v) => Array.from(await v.data())));

/** Everything a resumed run must reproduce, read back. */
async function stateOf(t: VaeTrainer | GanTrainer) {
  const adam = await t.optimizer.getState();
  const d = t instanceof GanTrainer ? await t.optimizerD.getState() : undefined;
  return {
    step: t.step,
    params: await read(t.model.params.variables()),
    ema: (await t.ema.values()).map((a) => Array.from(a)),
    emaUpdates: t.ema.updates,
    adam: { step: adam.step, m: adam.m.map((a) => Array.from(a)), v: adam.v.map((a) => Array.from(a)) },
    adamD: d && { step: d.step, m: d.m.map((a) => Array.from(a)), v: d.v.map((a) => Array.from(a)) },
    losses: t.lossHistory.slice(),
  };
}

const kinds = [
  { name: 'VAE', make: (train: Partial<VaeTrainConfig> = {}) => new VaeTrainer(new Vae(VAE), { ...VAE_TRAIN, ...train }) },
  { name: 'GAN', make: (train: Partial<GanTrainConfig> = {}) => new GanTrainer(new Gan(GAN), { ...GAN_TRAIN, ...train }) },
] as const;

const done = (t: VaeTrainer | GanTrainer) => { t.dispose(); t.model.dispose(); };

describe('train: baseline trainers (VAE, GAN)', () => {
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baseline-')); });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const kind of kinds) {
    it(`${kind.name}: fit reads losses in batches (one per step and player), changes every parameter, leaks nothing`, async () => {
      const before = tf.memory().numTensors;
      const t = kind.make();
      const held = tf.memory().numTensors;
      const start = await read(t.model.params.variables());
      const reads: number[] = [];
      await t.fit(source(), { readEvery: 3, onStep: (e) => reads.push(e.step) });
      expect(t.step).to.equal(6);
      expect(reads).to.deep.equal([0, 1, 2, 3, 4, 5]);
      expect(t.lossHistory).to.have.length(kind.name === 'GAN' ? 12 : 6);
      expect(t.lossHistory.every(Number.isFinite)).to.equal(true);
      const end = await read(t.model.params.variables());
      end.forEach((v, i) => expect(v, t.model.params.names()[i]).to.not.deep.equal(start[i]));
      expect(tf.memory().numTensors, 'tensors after fit').to.equal(held);
      done(t);
      expect(tf.memory().numTensors, 'tensors after dispose').to.equal(before);
    });

    it(`${kind.name}: a run saved at step 3 and resumed equals an uninterrupted run bit for bit (weights, EMA, Adam, losses)`, async () => {
      const whole = kind.make();
      await whole.fit(source());
      const first = kind.make();
      await first.fit(source(), { until: 3 });
      const file = path.join(dir, 'checkpoint.bin');
      await saveBaselineTrainer(file, first, { dataset: 'mnist' });
      done(first);
      const resumed = resumeBaselineTrainer(dir, { expectModel: kind.name === 'VAE' ? VAE : GAN, expectDataset: 'mnist' });
      expect(resumed.step).to.equal(3);
      await resumed.fit(source());
      expect(await stateOf(resumed)).to.deep.equal(await stateOf(whole));
      done(whole);
      done(resumed);
    });

    it(`${kind.name}: a NaN batch at step 2 of 6 queued throws NonFiniteError naming step 2; the state is the 2-step run's, and training on from there equals a clean run`, async () => {
      const ref = kind.make();
      await ref.fit(source(), { until: 2 });
      const t = kind.make();
      let err: unknown;
      try {
        await t.fit(source([2]), { readEvery: 100 });
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(NonFiniteError);
      expect((err as Error).message).to.match(/at step 2\b/);
      if (kind.name === 'GAN') expect((err as Error).message).to.match(/^GAN discriminator: /);
      expect(await stateOf(t)).to.deep.equal(await stateOf(ref));
      // the rollback is exact: continuing on clean data gives the uninterrupted run
      await t.fit(source());
      const clean = kind.make();
      await clean.fit(source());
      expect(await stateOf(t)).to.deep.equal(await stateOf(clean));
      for (const x of [ref, t, clean]) done(x);
    });

    it(`${kind.name}: trainStep reads its step at once; a NaN batch throws there, naming the step`, async () => {
      const t = kind.make();
      const r = await t.trainStep(source()(0));
      expect(r.step).to.equal(0);
      expect(Number.isFinite(r.loss)).to.equal(true);
      if (t instanceof GanTrainer) expect(Number.isFinite((r as unknown as { d: { loss: number } }).d.loss)).to.equal(true);
      let err: unknown;
      try { await t.trainStep(source([1])(1)); } catch (e) { err = e; }
      expect(err).to.be.instanceOf(NonFiniteError);
      expect((err as Error).message).to.match(/at step 1\b/);
      expect(t.step).to.equal(1);
      expect(t.lossHistory).to.have.length(kind.name === 'GAN' ? 2 : 1);
      done(t);
    });
  }

  it('GAN: D\'s entry of each step comes first; dLosses/gLosses split the history; D\'s Adam counts the trainer\'s steps', async () => {
    const t = kinds[1].make();
    const seen: { g: number; d: number }[] = [];
    await t.fit(source(), { until: 4, onStep: (e) => seen.push({ g: e.loss, d: e.d.loss }) });
    expect(t.dLosses()).to.deep.equal(seen.map((s) => s.d));
    expect(t.gLosses()).to.deep.equal(seen.map((s) => s.g));
    expect([t.optimizer.step, t.optimizerD.step, t.ema.updates]).to.deep.equal([4, 4, 4]);
    // D's loss at step 0 is log 4 − ε-ish: both sides near ½ before training (an independent check that it is D's)
    expect(seen[0].d).to.be.within(2 * Math.log(2) - 0.5, 2 * Math.log(2) + 0.5);
    done(t);
  });

  it('labels drop to the null class exactly as in the diffusion trainer (same stream, same steps)', () => {
    const y = tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32');
    const batch: Batch = { x: tf.zeros([8, 8, 8, 1]), y };
    const cfg = { ...DEFAULT_TRAIN, classDropout: 0.5, seed: 9 };
    const inputs = drawStepInputs(batch, NoiseSchedule.linear(10), 10, cfg, 4);
    const mine = dropClasses(y, 8, 10, 0.5, stepSeed(9, 4, 3));
    expect(Array.from(mine.dataSync())).to.deep.equal(Array.from(inputs.classes!.dataSync()));
    expect(Array.from(mine.dataSync())).to.include(10);
    tf.dispose([y, batch.x, inputs.x0, inputs.noise, inputs.t, inputs.classes, mine]);
  });

  it('loadBaseline: EMA weights (GAN: the generator\'s) or raw ones; weights-only files sample but cannot resume', async () => {
    const t = kinds[1].make();
    await t.fit(source(), { until: 3 });
    const full = path.join(dir, 'full.bin');
    const light = path.join(dir, 'light.bin');
    await saveBaselineTrainer(full, t);
    await saveBaselineTrainer(light, t, { weightsOnly: true, meta: { note: 'x' } });
    expect(fs.statSync(light).size).to.be.lessThan(fs.statSync(full).size / 3);
    const ema = await t.ema.values();
    const g = loadBaseline(light).model as Gan;
    expect((await read(g.generatorVariables())).map((a) => Float32Array.from(a))).to.deep.equal(ema);
    const raw = loadBaseline(full, 'params');
    expect(await read(raw.model.params.variables())).to.deep.equal(await read(t.model.params.variables()));
    expect(raw.header.step).to.equal(3);
    const z = tf.randomNormal([2, GAN.latentDim], 0, 1, 'float32', 3) as tf.Tensor2D;
    const before = tf.memory().numTensors;
    const img = g.generate(z);
    expect(img.shape).to.deep.equal([2, 8, 8, 1]);
    img.dispose();
    expect(tf.memory().numTensors).to.equal(before);
    expect(() => resumeBaselineTrainer(light)).to.throw(CorruptFileError, /has no 'params'/);
    expect(() => loadBaseline(light, 'params')).to.throw(CorruptFileError, /has no 'params'/);
    expect(() => resumeBaselineTrainer(full, { expectModel: { ...GAN, latentDim: 4 } })).to.throw(CorruptFileError, /was trained with model config/);
    expect(() => resumeBaselineTrainer(full, { expectDataset: 'fashion-mnist' })).to.throw(InvalidArgumentError, /trained on mnist/);
    // a diffusion checkpoint is not a baseline, and the other way round
    const unet = new Trainer(new UNet({ kind: 'unet', imageSize: 8, channels: 1, widths: [4], blocksPerLevel: 1, attentionResolutions: [], groups: 2, embDim: 8, timeSinDim: 8, numClasses: 0, predictionType: 'epsilon', seed: 0 }),
      NoiseSchedule.linear(10), { ...DEFAULT_TRAIN, batchSize: 2 });
    const diff = path.join(dir, 'unet.bin');
    await saveTrainer(diff, unet);
    expect(() => loadBaseline(diff)).to.throw(CorruptFileError, /diffusion model/);
    expect(() => loadModel(full)).to.throw(CorruptFileError, /no schedule/);
    tf.dispose(z);
    for (const m of [g, raw.model, unet.model]) m.dispose();
    unet.dispose();
    done(t);
  });

  it('run configs: the shipped ones parse (fast overrides apply); options of the other kind, unknown keys and bad values are named', () => {
    for (const f of fs.readdirSync('configs').filter((n) => /^(vae|gan)-.*\.json$/.test(n))) {
      const c = readBaselineConfig(path.join('configs', f));
      expect(c.name).to.equal(f.replace(/\.json$/, ''));
      const fast = readBaselineConfig(path.join('configs', f), true);
      expect(fast.train.steps).to.be.lessThan(c.train.steps);
    }
    const ok = { name: 'g', model: GAN, train: { lrD: 1e-3 }, data: { dataset: 'fashion-mnist' } };
    const g = parseBaselineConfig(ok, 'x');
    expect(g.train).to.deep.equal({ ...DEFAULT_GAN_TRAIN, lrD: 1e-3 });
    expect(g.data.dataset).to.equal('fashion-mnist');
    const bad: [unknown, RegExp][] = [
      [{ ...ok, model: VAE }, /train\.lrD is not a VAE training option/],
      [{ ...ok, train: { beta: 2 } }, /train\.beta is not a GAN training option/],
      [{ ...ok, extra: 1 }, /unknown key "extra"/],
      [{ ...ok, data: { dataset: 'cifar' } }, /data\.dataset must be one of/],
      [{ ...ok, model: { ...GAN, kind: 'unet' } }, /model\.kind must be 'vae' or 'gan'/],
      [{ ...ok, train: { lrD: -1 } }, /lrD must be a positive number/],
      [{ ...ok, train: { generatorLoss: 'wasserstein' } }, /generatorLoss must be/],
      [{ ...ok, model: { ...GAN, groups: 3 } }, /groups 3 must divide/],
      [{ ...ok, name: 'a/b' }, /name must be a simple file name/],
    ];
    for (const [json, re] of bad) expect(() => parseBaselineConfig(json, 'x'), String(re)).to.throw(InvalidArgumentError, re);
  });
});
