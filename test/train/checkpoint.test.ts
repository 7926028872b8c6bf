import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { CorruptFileError, InvalidArgumentError } from '../../lib/errors';
import type { UNetConfig } from '../../lib/models';
import { NoiseSchedule } from '../../lib/schedule';
import {
  decodeCheckpoint, DEFAULT_TRAIN, encodeCheckpoint, loadModel, openResume, readCheckpointFile, resumeTrainer, saveTrainer, Trainer,
  writeCheckpointFile, type Batch,
} from '../../lib/train';
import { UNet } from '../../lib/models';

const TINY: UNetConfig = {
  kind: 'unet', imageSize: 8, channels: 1, widths: [4, 8], blocksPerLevel: 1, attentionResolutions: [4], groups: 4,
  embDim: 8, timeSinDim: 8, midBlocks: 1, numClasses: 10, dropout: 0, predictionType: 'epsilon', seed: 2,
};
const batchAt = (step: number): Batch => ({
  x: tf.randomUniform([4, 8, 8, 1], -1, 1, 'float32', 100 + step),
  y: tf.tensor1d([0, 1, 2, 3].map((l) => (l + step) % 10), 'int32'),
});

describe('train: checkpoints', () => {
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-')); });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('encode/decode round-trips header and float32 tensors bit for bit', () => {
    const data = Float32Array.from([1.5, -0, Math.PI, 1e-38, -3.4e38, 7]);
    const bytes = encodeCheckpoint({
      header: { step: 3, note: 'ü' },
      groups: { params: new Map([['a', { shape: [2, 3], data }]]), ema: new Map([['a', { shape: [6], data: data.map((v) => v * 2) }]]) },
    });
    const back = decodeCheckpoint(bytes);
    expect(back.header).to.deep.equal({ step: 3, note: 'ü' });
    expect(Array.from(back.groups.params.get('a')!.data)).to.deep.equal(Array.from(data));
    expect(back.groups.params.get('a')!.shape).to.deep.equal([2, 3]);
    expect(Array.from(back.groups.ema.get('a')!.data)).to.deep.equal(Array.from(data.map((v) => v * 2)));
  });

  it('truncated, bit-flipped or foreign files give CorruptFileError', () => {
    const bytes = encodeCheckpoint({ header: { step: 1 }, groups: { p: new Map([['w', { shape: [4], data: new Float32Array(4).fill(1) }]]) } });
    expect(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 5))).to.throw(CorruptFileError, /checksum mismatch|truncated/);
    expect(() => decodeCheckpoint(bytes.subarray(0, 10))).to.throw(CorruptFileError, /too short/);
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 40] ^= 0x10;
    expect(() => decodeCheckpoint(flipped)).to.throw(CorruptFileError, /checksum mismatch/);
    expect(() => decodeCheckpoint(Buffer.from('{"not":"a checkpoint"}..........................................'))).to.throw(CorruptFileError, /DIFFCKPT/);
    expect(() => readCheckpointFile(path.join(dir, 'missing.bin'))).to.throw(CorruptFileError, /cannot read/);
  });

  it('an interrupted write leaves the previous checkpoint readable', () => {
    const file = path.join(dir, 'checkpoint.bin');
    const good = { header: { step: 1 }, groups: { p: new Map([['w', { shape: [2], data: Float32Array.from([1, 2]) }]]) } };
    writeCheckpointFile(file, good);
    // a write that fails while encoding (bad tensor) must not touch the file
    const bad = { header: { step: 2 }, groups: { p: new Map([['w', { shape: [3], data: Float32Array.from([1, 2]) }]]) } };
    expect(() => writeCheckpointFile(file, bad)).to.throw(CorruptFileError);
    // a crash after the temp file was half written: the target is untouched, the debris is ignored
    fs.writeFileSync(path.join(dir, `.checkpoint.bin.tmp-99999`), Buffer.from('DIFFCKPT partial'));
    expect(readCheckpointFile(file).header.step).to.equal(1);
    expect(Array.from(readCheckpointFile(file).groups.p.get('w')!.data)).to.deep.equal([1, 2]);
  });

  it('resumed training equals uninterrupted training: same step, optimizer state, EMA and next losses', async () => {
    const schedule = NoiseSchedule.linear(50);
    const train = { ...DEFAULT_TRAIN, steps: 4, batchSize: 4, lr: 5e-3, warmupSteps: 2, seed: 9, classDropout: 0.5 };
    const a = new Trainer(new UNet(TINY), schedule, train);
    for (let s = 0; s < 2; s++) a.queueStep(batchAt(s)); // saveTrainer reads what is still queued
    const file = path.join(dir, 'checkpoint.bin');
    await saveTrainer(file, a);
    expect(a.lossHistory).to.have.length(2);
    const b = resumeTrainer(file, { expectModel: TINY });
    expect(b.step).to.equal(2);
    expect(b.optimizer.step).to.equal(a.optimizer.step);
    expect(b.lossHistory).to.deep.equal(a.lossHistory);
    const sa = await a.optimizer.getState();
    const sb = await b.optimizer.getState();
    sa.m.forEach((m, i) => expect(Array.from(sb.m[i])).to.deep.equal(Array.from(m)));
    sa.v.forEach((v, i) => expect(Array.from(sb.v[i])).to.deep.equal(Array.from(v)));
    const eb = await b.ema.values();
    (await a.ema.values()).forEach((e, i) => expect(Array.from(eb[i])).to.deep.equal(Array.from(e)));
    for (let s = 2; s < 4; s++) {
      const ra = await a.trainStep(batchAt(s));
      const rb = await b.trainStep(batchAt(s));
      expect(rb.loss).to.equal(ra.loss);
      expect(rb.gradNorm).to.equal(ra.gradNorm);
    }
    const wa = await a.model.params.snapshot();
    for (const [k, v] of await b.model.params.snapshot()) expect(Array.from(v), k).to.deep.equal(Array.from(wa.get(k)!));
    for (const t of [a, b]) { t.dispose(); t.model.dispose(); }
  });

  it('loadModel gives EMA (or raw) weights; a mismatched config or tensor is a CorruptFileError', async () => {
    const schedule = NoiseSchedule.cosine(20);
    const t = new Trainer(new UNet(TINY), schedule, { ...DEFAULT_TRAIN, batchSize: 4, warmupSteps: 0 });
    await t.trainStep(batchAt(0));
    const file = path.join(dir, 'checkpoint.bin');
    await saveTrainer(file, t);
    const ema = loadModel(dir); // a folder resolves to folder/checkpoint.bin
    const raw = loadModel(file, 'params');
    const emaWant = await t.emaWeights();
    for (const [k, v] of await ema.model.params.snapshot()) expect(Array.from(v), k).to.deep.equal(Array.from(emaWant.get(k)!));
    const rawWant = await t.model.params.snapshot();
    for (const [k, v] of await raw.model.params.snapshot()) expect(Array.from(v), k).to.deep.equal(Array.from(rawWant.get(k)!));
    expect(Array.from(ema.schedule.betas)).to.deep.equal(Array.from(schedule.betas));
    expect(ema.header.step).to.equal(1);
    expect(() => resumeTrainer(file, { expectModel: { ...TINY, widths: [4, 12] } })).to.throw(CorruptFileError, /was trained with model config/);
    // a tensor whose shape disagrees with the config
    const c = readCheckpointFile(file);
    const [name, entry] = [...c.groups.ema.entries()][0];
    c.groups.ema.set(name, { shape: [entry.data.length], data: entry.data });
    writeCheckpointFile(file, c);
    expect(() => loadModel(file)).to.throw(CorruptFileError, new RegExp(`ema/${name.replace(/\./g, '\\.')}' has shape`));
    for (const m of [ema.model, raw.model, t.model]) m.dispose();
    t.dispose();
  });
  it('openResume restores only into a fresh trainer of the same model, and changes nothing when it refuses', async () => {
    const before = tf.memory().numTensors;
    const schedule = NoiseSchedule.linear(50);
    const train = { ...DEFAULT_TRAIN, steps: 4, batchSize: 4, warmupSteps: 0, seed: 1 };
    const a = new Trainer(new UNet(TINY), schedule, train);
    await a.trainStep(batchAt(0));
    const file = path.join(dir, 'checkpoint.bin');
    await saveTrainer(file, a);
    const point = openResume(file);
    expect(point.header.step).to.equal(1);
    expect(point.train).to.deep.equal(train);
    expect(() => point.restore(a)).to.throw(InvalidArgumentError, /must be fresh \(step 0\), it is at step 1/);
    const other = new Trainer(new UNet({ ...TINY, seed: 3, widths: [4, 12] }), schedule, train);
    const w = await other.model.params.snapshot();
    expect(() => point.restore(other)).to.throw(InvalidArgumentError, /model config .* differs from the checkpoint's/);
    expect(other.step).to.equal(0);
    for (const [k, v] of await other.model.params.snapshot()) expect(Array.from(v), k).to.deep.equal(Array.from(w.get(k)!));
    const fresh = new Trainer(new UNet(TINY), schedule, train);
    point.restore(fresh);
    expect(fresh.step).to.equal(1);
    expect(fresh.lossHistory).to.deep.equal(a.lossHistory);
    for (const t of [a, other, fresh]) { t.dispose(); t.model.dispose(); }
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('saveTrainer refuses to write past a queued non-finite step: it throws and the previous checkpoint stays', async () => {
    const t = new Trainer(new UNet(TINY), NoiseSchedule.linear(20), { ...DEFAULT_TRAIN, batchSize: 4, warmupSteps: 0 });
    await t.trainStep(batchAt(0));
    const file = path.join(dir, 'checkpoint.bin');
    await saveTrainer(file, t);
    t.queueStep({ x: tf.fill([4, 8, 8, 1], NaN), y: tf.tensor1d([0, 1, 2, 3], 'int32') });
    let err: unknown;
    try { await saveTrainer(file, t); } catch (e) { err = e; }
    expect(String(err)).to.match(/NonFiniteError.*at step 1/);
    expect(readCheckpointFile(file).header.step).to.equal(1);
    expect(t.step).to.equal(1);
    t.dispose();
    t.model.dispose();
  });
});
