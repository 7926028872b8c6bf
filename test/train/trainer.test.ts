import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, NonFiniteError } from '../../lib/errors';
import { loadMnist } from '../../lib/data/mnist';
import { MlpDenoiser, UNet, type UNetConfig } from '../../lib/models';
import { NoiseSchedule } from '../../lib/schedule';
import {
  DEFAULT_TRAIN, drawStepInputs, epochSource, scheduledLr, stepLoss, stepSeed, tensorDataset, Trainer, validateTrainConfig, type Batch,
} from '../../lib/train';

const TINY: UNetConfig = {
  kind: 'unet', imageSize: 8, channels: 1, widths: [8, 16], blocksPerLevel: 1, attentionResolutions: [4], groups: 4,
  embDim: 16, timeSinDim: 8, midBlocks: 1, numClasses: 10, dropout: 0, predictionType: 'epsilon', seed: 0,
};

describe('train: trainer', () => {
  it('a small U-Net overfits a batch of 8 digits: the loss on it falls ≥ 10×', async () => {
    const digits = loadMnist('train').batch([0, 1, 2, 3, 4, 5, 6, 7]);
    const x = tf.image.resizeBilinear(digits.x, [8, 8]); // 8×8 keeps the test to seconds
    const trainer = new Trainer(new UNet(TINY), NoiseSchedule.linear(100),
      { ...DEFAULT_TRAIN, batchSize: 8, lr: 0.02, warmupSteps: 0, gradClip: 10, classDropout: 0 });
    const losses: number[] = [];
    for (let i = 0; i < 30; i++) {
      trainer.step = 0; // same t, noise and labels every time: one fixed regression problem to memorise
      losses.push((await trainer.trainStep({ x: x.clone(), y: digits.y.clone() })).loss);
    }
    expect(losses[0] / losses[losses.length - 1], `losses ${losses.map((l) => l.toFixed(3)).join(' ')}`).to.be.greaterThan(10);
    tf.dispose([digits.x, digits.y, x]);
    trainer.dispose();
    trainer.model.dispose();
  });

  it('building and disposing a trainer (model, Adam state, EMA shadow) leaves the tensor count where it was', () => {
    const before = tf.memory().numTensors;
    const trainer = new Trainer(new UNet(TINY), NoiseSchedule.linear(100), { ...DEFAULT_TRAIN, batchSize: 2 });
    trainer.dispose();
    trainer.model.dispose();
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('the 2-D MLP trains on an in-memory point set (tensorDataset + epochSource): loss falls', async () => {
    // two tight clusters at (±1, 0.5): easy to denoise once learned
    const pts = Array.from({ length: 256 }, (_, i) => [i % 2 ? 1 : -1, 0.5]);
    const x = tf.tensor2d(pts);
    const model = new MlpDenoiser({ kind: 'mlp', dim: 2, hidden: 32, layers: 2, embDim: 16, predictionType: 'epsilon', seed: 0 });
    const trainer = new Trainer(model, NoiseSchedule.linear(50), { ...DEFAULT_TRAIN, steps: 80, batchSize: 64, lr: 1e-2, warmupSteps: 10 });
    await trainer.fit(epochSource(tensorDataset(x), 64, 0));
    expect(trainer.lossHistory).to.have.length(80); // every step's loss, read in batches
    const first = trainer.lossHistory.slice(0, 10).reduce((s, v) => s + v, 0) / 10;
    expect(trainer.recentLoss(20), `first ${first}, last ${trainer.recentLoss(20)}`).to.be.lessThan(0.5 * first);
    tf.dispose(x);
    trainer.dispose();
    model.dispose();
  });

  it('no tensors leak per training step; losses are reproducible from the seed', async () => {
    const schedule = NoiseSchedule.linear(50);
    const batch = (s: number): Batch => ({ x: tf.randomUniform([4, 8, 8, 1], -1, 1, 'float32', s), y: tf.tensor1d([1, 2, 3, 4], 'int32') });
    const run = () => new Trainer(new UNet({ ...TINY, dropout: 0.2 }), schedule, { ...DEFAULT_TRAIN, batchSize: 4, seed: 3 });
    const a = run();
    const b = run();
    await a.trainStep(batch(0)); // burn-in
    const before = tf.memory().numTensors;
    const la = [(await a.trainStep(batch(1))).loss, (await a.trainStep(batch(2))).loss];
    expect(tf.memory().numTensors).to.equal(before);
    const lb: number[] = [];
    for (let s = 0; s < 3; s++) lb.push((await b.trainStep(batch(s))).loss);
    expect(lb.slice(1)).to.deep.equal(la);
    expect(a.lossHistory).to.deep.equal(lb);
    for (const t of [a, b]) { t.dispose(); t.model.dispose(); }
  });

  it('a NaN batch in fit: the deferred read throws NonFiniteError naming its step; weights, Adam and EMA are the last good step\'s', async () => {
    const schedule = NoiseSchedule.linear(50);
    const config = { ...DEFAULT_TRAIN, steps: 6, batchSize: 2, warmupSteps: 0, checkpointEvery: 0 };
    const good = (s: number): Batch => ({ x: tf.randomUniform([2, 8, 8, 1], -1, 1, 'float32', s), y: tf.tensor1d([0, 1], 'int32') });
    const poisoned = (s: number): Batch => (s === 3 ? { x: tf.fill([2, 8, 8, 1], NaN), y: tf.tensor1d([0, 1], 'int32') } : good(s));
    // the reference stops before step 3; the other trainer runs steps 3, 4, 5 on the device before it reads anything
    const ref = new Trainer(new UNet(TINY), schedule, { ...config, steps: 3 });
    await ref.fit(good);
    const t = new Trainer(new UNet(TINY), schedule, config);
    const before = tf.memory().numTensors;
    let err: unknown;
    try {
      await t.fit(poisoned, { readEvery: 100 });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(NonFiniteError);
    expect(String(err)).to.match(/loss is NaN at step 3/);
    expect(tf.memory().numTensors).to.equal(before);
    expect([t.step, t.optimizer.step, t.ema.updates]).to.deep.equal([3, 3, 3]);
    expect(t.lossHistory).to.deep.equal(ref.lossHistory);
    const [w, wRef] = [await t.model.params.snapshot(), await ref.model.params.snapshot()];
    for (const [k, v] of w) expect(Array.from(v), k).to.deep.equal(Array.from(wRef.get(k)!));
    const [s, sRef] = [await t.optimizer.getState(), await ref.optimizer.getState()];
    s.m.forEach((m, i) => expect(Array.from(m)).to.deep.equal(Array.from(sRef.m[i])));
    s.v.forEach((v, i) => expect(Array.from(v)).to.deep.equal(Array.from(sRef.v[i])));
    const [e, eRef] = [await t.ema.values(), await ref.ema.values()];
    e.forEach((x, i) => expect(Array.from(x)).to.deep.equal(Array.from(eRef[i])));
    // training goes on from there (the flag was reset): the same steps as an uninterrupted run
    await t.fit(good, { until: 4 });
    await ref.fit(good, { until: 4 });
    expect(t.lossHistory).to.deep.equal(ref.lossHistory);
    for (const x of [t, ref]) { x.dispose(); x.model.dispose(); }
  });

  it('trainStep after a NaN batch throws at once (one step, read at once) with the step number', async () => {
    const t = new Trainer(new UNet(TINY), NoiseSchedule.linear(50), { ...DEFAULT_TRAIN, batchSize: 2 });
    await t.trainStep({ x: tf.zeros([2, 8, 8, 1]), y: tf.tensor1d([0, 1], 'int32') });
    const w = await t.model.params.snapshot();
    const before = tf.memory().numTensors;
    let err: unknown;
    try { await t.trainStep({ x: tf.fill([2, 8, 8, 1], NaN), y: tf.tensor1d([0, 1], 'int32') }); } catch (e) { err = e; }
    expect(String(err)).to.match(/NonFiniteError.*loss is NaN at step 1/);
    expect(tf.memory().numTensors).to.equal(before);
    expect([t.step, t.optimizer.step]).to.deep.equal([1, 1]);
    for (const [k, v] of await t.model.params.snapshot()) expect(Array.from(v), k).to.deep.equal(Array.from(w.get(k)!));
    t.dispose();
    t.model.dispose();
  });

  it('fit steps with the scheduled lr (warm-up, constant, cool-down), and a resumed fit continues the same schedule', async () => {
    const batch = (s: number): Batch => ({ x: tf.randomUniform([2, 8, 8, 1], -1, 1, 'float32', s), y: tf.tensor1d([1, 2], 'int32') });
    const config = { ...DEFAULT_TRAIN, steps: 8, batchSize: 2, lr: 1e-3, warmupSteps: 2, decayFraction: 0.5, checkpointEvery: 0 };
    const t = new Trainer(new UNet(TINY), NoiseSchedule.linear(20), config);
    const lrs: number[] = [];
    await t.fit(batch, { until: 5, onStep: (e) => lrs.push(e.lr) });
    await t.fit(batch, { onStep: (e) => lrs.push(e.lr) });
    expect(lrs).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7].map((s) => scheduledLr(s, config)));
    expect(lrs[3]).to.equal(1e-3);
    expect(lrs[7]).to.be.below(lrs[5]);
    t.dispose();
    t.model.dispose();
  });

  it('fit: checkpoints every N steps and at the end (after reading); shouldStop ends early with a checkpoint', async () => {
    const batch = (s: number): Batch => ({ x: tf.randomUniform([2, 8, 8, 1], -1, 1, 'float32', s), y: tf.tensor1d([1, 2], 'int32') });
    const make = () => new Trainer(new UNet(TINY), NoiseSchedule.linear(20), { ...DEFAULT_TRAIN, steps: 5, batchSize: 2, checkpointEvery: 2 });
    const a = make();
    const saved: number[] = [];
    const seen: number[] = [];
    const readAtCheckpoint: number[] = [];
    await a.fit(batch, {
      onCheckpoint: async (s) => { saved.push(s); readAtCheckpoint.push(a.lossHistory.length); },
      onStep: (e) => seen.push(e.step),
      readEvery: 3,
    });
    expect(saved).to.deep.equal([2, 4, 5]);
    expect(readAtCheckpoint).to.deep.equal([2, 4, 5]); // every step was read before its checkpoint
    expect(seen).to.deep.equal([0, 1, 2, 3, 4]);
    const b = make();
    const savedB: number[] = [];
    await b.fit(batch, { onCheckpoint: (s) => { savedB.push(s); }, shouldStop: () => b.step >= 3 });
    expect(b.step).to.equal(3);
    expect(savedB).to.deep.equal([2, 3]);
    expect(b.lossHistory).to.deep.equal(a.lossHistory.slice(0, 3));
    expect(b.recentLoss(2)).to.be.closeTo((b.lossHistory[1] + b.lossHistory[2]) / 2, 1e-12);
    let err: unknown;
    try { await b.fit(batch, { readEvery: 0 }); } catch (e) { err = e; }
    expect(String(err)).to.match(/InvalidArgumentError: readEvery must be a positive integer/);
    for (const t of [a, b]) { t.dispose(); t.model.dispose(); }
  });

  it('lossWeighting: a Min-SNR run steps on stepLoss with that weighting (not the plain loss); bad weightings are named', async () => {
    const schedule = NoiseSchedule.cosine(100);
    const batch = (): Batch => ({ x: tf.randomUniform([4, 8, 8, 1], -1, 1, 'float32', 12), y: tf.tensor1d([1, 2, 3, 4], 'int32') });
    const config = { ...DEFAULT_TRAIN, batchSize: 4, seed: 2, lossWeighting: { minSnrGamma: 5 } };
    const vTiny: UNetConfig = { ...TINY, predictionType: 'v' };
    const trainer = new Trainer(new UNet(vTiny), schedule, config);
    // the same model and step inputs, evaluated by hand before the step moves the weights
    const probe = new UNet(vTiny);
    const inputs = (b: Batch) => drawStepInputs(b, schedule, 10, config, 0);
    const lossOf = (weighting: 'none' | { minSnrGamma: number }) => {
      const b = batch();
      const inp = inputs(b);
      const v = stepLoss(probe, schedule, inp, weighting);
      const out = v.dataSync()[0];
      tf.dispose([v, b.x, b.y, inp.x0, inp.noise, inp.t, inp.classes]);
      return out;
    };
    const weighted = lossOf({ minSnrGamma: 5 });
    const plain = lossOf('none');
    expect(Math.abs(weighted - plain) / plain).to.be.above(0.05); // the weighting matters at these timesteps
    const step = await trainer.trainStep(batch());
    expect(step.loss).to.be.closeTo(weighted, 1e-5 * weighted);
    for (const m of [trainer.model, probe]) m.dispose();
    trainer.dispose();
    for (const w of [{ minSnrGamma: 0 }, { minSnrGamma: '5' }, { gamma: 5 }, 'min-snr', { minSnrGamma: Number.POSITIVE_INFINITY }]) {
      expect(() => validateTrainConfig({ ...DEFAULT_TRAIN, lossWeighting: w as never }), JSON.stringify(w))
        .to.throw(InvalidArgumentError, /lossWeighting must be 'none' or \{ "minSnrGamma": a positive number \}/);
    }
    expect(() => validateTrainConfig({ ...DEFAULT_TRAIN, lossWeighting: 'none' })).to.not.throw();
  });

  it('class dropout replaces labels by the null class at the configured rate, reproducibly', () => {
    const schedule = NoiseSchedule.linear(10);
    const n = 2000;
    const batch = { x: tf.zeros([n, 1, 1, 1]), y: tf.tensor1d(Array.from({ length: n }, (_, i) => i % 10), 'int32') };
    const count = (p: number, step: number) => {
      const inp = drawStepInputs(batch, schedule, 10, { seed: 1, classDropout: p }, step);
      const c = Array.from(inp.classes!.dataSync());
      tf.dispose([inp.x0, inp.noise, inp.t, inp.classes]);
      c.forEach((v, i) => expect(v === 10 || v === i % 10).to.equal(true));
      return c.filter((v) => v === 10).length;
    };
    expect(count(0, 0)).to.equal(0);
    expect(count(1, 0)).to.equal(n);
    const k = count(0.1, 5);
    expect(k).to.be.within(n * 0.1 - 4 * Math.sqrt(n * 0.09), n * 0.1 + 4 * Math.sqrt(n * 0.09));
    expect(count(0.1, 5)).to.equal(k);
    expect(count(0.1, 6)).to.not.equal(k);
    tf.dispose([batch.x, batch.y]);
  });

  it('epochSource: each epoch is a seeded permutation, deterministic in the step', () => {
    const size = 10;
    const data = { size, batch: (idx: ArrayLike<number>) => ({ x: tf.tensor2d(Array.from(idx), [idx.length, 1]) }) };
    const src = epochSource(data, 3, 7); // 3 batches per epoch, the 10th item is dropped that epoch
    const seen = (step: number) => { const b = src(step); const v = Array.from(b.x.dataSync()); b.x.dispose(); return v; };
    const epoch0 = [0, 1, 2].flatMap(seen);
    expect(new Set(epoch0).size).to.equal(9);
    expect([3, 4, 5].flatMap(seen)).to.not.deep.equal(epoch0);
    // a fresh source (a resumed run) hands out the same batch for a step without replaying the earlier ones
    const fresh = epochSource(data, 3, 7)(4);
    expect(Array.from(fresh.x.dataSync())).to.deep.equal(seen(4));
    fresh.x.dispose();
    expect(stepSeed(1, 2, 3)).to.not.equal(stepSeed(1, 3, 3));
    expect(() => epochSource(data, 11, 0)).to.throw(InvalidArgumentError, /batchSize/);
    const model = new UNet(TINY);
    expect(() => new Trainer(model, NoiseSchedule.linear(10), { ...DEFAULT_TRAIN, lr: -1 })).to.throw(InvalidArgumentError, /lr/);
    model.dispose();
  });
});
