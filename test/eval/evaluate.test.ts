import { expect } from 'chai';
import { expectRejects } from '../math/helpers';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { CorruptFileError, InvalidArgumentError, ShapeMismatchError } from '../../lib/errors';
import { makeRng } from '../../lib/random';
import { loadMnist } from '../../lib/data/mnist';
import { createModel, type UNetConfig } from '../../lib/models';
import { NoiseSchedule } from '../../lib/schedule';
import type { LoadedModel } from '../../lib/train/state';
import { loadClassifier } from '../../lib/eval/classifier-io';
import { evaluateSamples, formatEvaluation, generateClassConditional, realReference, sampleForLabels } from '../../lib/eval/evaluate';
import { balancedSubset, stratifiedHalves } from '../../lib/eval/metrics';
import { decodeRawSamples, encodeRawSamples, readRawSamples, writeRawSamples } from '../../lib/eval/raw-samples';

const TINY_UNET: UNetConfig = {
  kind: 'unet', imageSize: 28, channels: 1, widths: [8], blocksPerLevel: 1, attentionResolutions: [], groups: 4,
  embDim: 16, timeSinDim: 8, midBlocks: 0, numClasses: 10, dropout: 0, predictionType: 'epsilon', seed: 0,
};

describe('eval/evaluate', () => {
  it('real held-out digits score near the classifier\'s test accuracy and the FID floor; noise scores far worse', async () => {
    const classifier = loadClassifier();
    const test = loadMnist('test');
    // the comparison half, as scripts/evaluate.ts --baseline real draws it
    const [, other] = stratifiedHalves(test.labels, 0);
    const { x, y } = test.batch(balancedSubset(test.labels, other, 20, 7));
    const labels = y.dataSync() as Int32Array;
    const before = tf.memory().numTensors;
    const real = await evaluateSamples(classifier, x, labels, test, { seed: 0 });
    expect(tf.memory().numTensors).to.equal(before);
    const reference = await realReference(classifier, test);
    expect(tf.memory().numTensors).to.equal(before);
    expect(reference.accuracy).to.equal(real.realAccuracy);
    const rng = makeRng(1);
    const noise = tf.tensor4d(Float32Array.from({ length: labels.length * 784 }, () => 2 * rng() - 1), [labels.length, 28, 28, 1]);
    const bad = await evaluateSamples(classifier, noise, labels, reference, { seed: 0 });
    expect(real.accuracy.overall).to.be.at.least(0.95);
    expect(real.realAccuracy).to.be.at.least(0.97);
    expect(real.fid.sampleCount).to.equal(200);
    expect(real.fid.floorCount).to.equal(200);
    expect(real.fid.fid).to.be.below(2 * real.fid.floor);
    expect(bad.accuracy.overall).to.be.below(0.35);
    expect(bad.fid.fid).to.be.above(10 * real.fid.floor);
    expect(bad.fid.floor).to.equal(real.fid.floor);
    expect(formatEvaluation(real)).to.match(/conditional accuracy: .* %[\s\S]*feature-FID: [\d.]+[\s\S]*floor: [\d.]+/);
    await expectRejects(() => evaluateSamples(classifier, x, [0], test), ShapeMismatchError);
    tf.dispose([x, y, noise]);
    classifier.dispose();
  });

  it('generateClassConditional: class-ordered labels, seeded, both samplers, no leaked tensors', async () => {
    const model = createModel(TINY_UNET);
    const schedule = NoiseSchedule.linear(20);
    const loaded: LoadedModel = { model, schedule, header: { model: TINY_UNET, schedule: schedule.toJSON(), step: 0 } };
    const opts = { sampler: 'ddim' as const, steps: 2, guidance: 2, nPerClass: 2, seed: 3, batchSize: 8 };
    const before = tf.memory().numTensors;
    const a = await generateClassConditional(loaded, opts);
    expect(a.images.shape).to.deep.equal([20, 28, 28, 1]);
    expect(Array.from(a.labels)).to.deep.equal(Array.from({ length: 20 }, (_, i) => Math.floor(i / 2)));
    const b = await generateClassConditional(loaded, opts);
    const c = await generateClassConditional(loaded, { ...opts, seed: 4 });
    const d = await generateClassConditional(loaded, { ...opts, sampler: 'ddpm', batchSize: 20 });
    const va = a.images.dataSync();
    expect(va.every(Number.isFinite)).to.equal(true);
    expect(Array.from(b.images.dataSync())).to.deep.equal(Array.from(va));
    expect(Array.from(c.images.dataSync())).to.not.deep.equal(Array.from(va));
    expect(d.images.shape).to.deep.equal([20, 28, 28, 1]);
    tf.dispose([a.images, b.images, c.images, d.images]);
    expect(tf.memory().numTensors).to.equal(before);
    await expectRejects(() => generateClassConditional(loaded, { ...opts, steps: 0 }), InvalidArgumentError, /steps/);
    await expectRejects(() => generateClassConditional(loaded, { ...opts, steps: 21 }), InvalidArgumentError, /T = 20/);
    await expectRejects(() => sampleForLabels(loaded, [10], opts), InvalidArgumentError, /label 0 is 10/);
    // one labelled batch reproduces the matching rows of the class-ordered run (same per-batch seed)
    const calls: number[] = [];
    const first = await sampleForLabels(loaded, Array.from(a.labels.subarray(0, 8)), { ...opts, onStep: (done) => calls.push(done) });
    expect(calls).to.deep.equal([1, 2]);
    expect(Array.from(first.dataSync())).to.deep.equal(Array.from(va.subarray(0, 8 * 784)));
    first.dispose();
    model.dispose();
  });

  it('raw samples: exact round trip; truncated or foreign files are CorruptFileError', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raw-'));
    try {
      const s = {
        count: 3, height: 28, width: 28, channels: 1,
        pixels: Float32Array.from({ length: 3 * 784 }, (_, i) => Math.sin(i)),
        labels: Int32Array.from([7, 0, 9]),
        meta: { sampler: 'ddim', steps: 50 },
      };
      const file = path.join(dir, 's.bin');
      writeRawSamples(file, s);
      const back = readRawSamples(file);
      expect(back.count).to.equal(3);
      expect(Array.from(back.labels)).to.deep.equal([7, 0, 9]);
      expect(Array.from(back.pixels)).to.deep.equal(Array.from(s.pixels));
      expect(back.meta).to.deep.equal(s.meta);
      const bytes = encodeRawSamples(s);
      expect(() => decodeRawSamples(bytes.subarray(0, bytes.length - 4))).to.throw(CorruptFileError, /truncated/);
      expect(() => decodeRawSamples(Buffer.from('not a sample file at all'))).to.throw(CorruptFileError, /DIFFRAW1/);
      expect(() => readRawSamples(path.join(dir, 'missing.bin'))).to.throw(CorruptFileError);
      expect(() => encodeRawSamples({ ...s, labels: Int32Array.from([1]) })).to.throw(ShapeMismatchError);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
