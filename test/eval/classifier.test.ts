import { expect } from 'chai';
import { expectRejects } from '../math/helpers';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { CorruptFileError, NonFiniteError, InvalidArgumentError, ShapeMismatchError } from '../../lib/errors';
import { makeRng } from '../../lib/random';
import { loadMnist } from '../../lib/data/mnist';
import { writeCheckpointFile } from '../../lib/train/checkpoint';
import { DEFAULT_CLASSIFIER_CONFIG, DigitClassifier, classifierWeightShapes } from '../../lib/eval/classifier';
import { CLASSIFIER_FILE, DEFAULT_CLASSIFIER_DIR, loadClassifier, saveClassifier } from '../../lib/eval/classifier-io';
import { cosineLearningRate, shiftImages, trainClassifier } from '../../lib/eval/train-classifier';

const SMALL = { channels: [4, 8, 8] as [number, number, number], hidden: 16, numClasses: 10, dropout: 0.3 };

describe('eval/classifier', () => {
  it('forward gives logits [B,10] and features [B,hidden] without leaking tensors', async () => {
    const model = DigitClassifier.create(DEFAULT_CLASSIFIER_CONFIG, 0);
    expect(model.parameterCount()).to.equal(
      classifierWeightShapes(DEFAULT_CLASSIFIER_CONFIG).reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0),
    );
    const x = tf.randomUniform([3, 28, 28, 1], -1, 1, 'float32', 1) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    const { logits, features } = model.forward(x);
    expect(logits.shape).to.deep.equal([3, 10]);
    expect(features.shape).to.deep.equal([3, 128]);
    expect(tf.memory().numTensors).to.equal(before + 2);
    tf.dispose([logits, features]);
    const c = await model.classify(x, 2);
    expect(c.predictions.length).to.equal(3);
    expect(c.features.length).to.equal(3 * 128);
    expect(tf.memory().numTensors).to.equal(before);
    // classify in batches agrees with one forward pass
    const direct = tf.tidy(() => model.forward(x).features.dataSync());
    for (let i = 0; i < direct.length; i++) expect(c.features[i]).to.be.closeTo(direct[i], 1e-5);
    x.dispose();
    model.dispose();
  });

  it('dropout acts only in training mode, seeded', () => {
    const model = DigitClassifier.create(SMALL, 1);
    const x = tf.randomUniform([2, 28, 28, 1], -1, 1, 'float32', 2) as tf.Tensor4D;
    const run = (o: object) => tf.tidy(() => Array.from(model.forward(x, o).logits.dataSync()));
    expect(run({})).to.deep.equal(run({}));
    expect(run({ training: true, dropoutSeed: 5 })).to.deep.equal(run({ training: true, dropoutSeed: 5 }));
    expect(run({ training: true, dropoutSeed: 5 })).to.not.deep.equal(run({}));
    expect(run({ training: true, dropoutSeed: 5 })).to.not.deep.equal(run({ training: true, dropoutSeed: 6 }));
    x.dispose();
    model.dispose();
  });

  it('rejects bad configs, images and weights with named errors', () => {
    expect(() => DigitClassifier.create({ ...SMALL, hidden: 0 })).to.throw(InvalidArgumentError, /hidden/);
    expect(() => DigitClassifier.create({ ...SMALL, dropout: 1 })).to.throw(InvalidArgumentError, /dropout/);
    const model = DigitClassifier.create(SMALL, 0);
    const wrong = tf.zeros([1, 28, 28, 3]) as tf.Tensor4D;
    expect(() => model.forward(wrong)).to.throw(ShapeMismatchError, /\[B, 28, 28, 1\]/);
    wrong.dispose();
    const weights = model.snapshot();
    const bad = { ...weights, 'dense1/bias': tf.zeros([3]) };
    expect(() => DigitClassifier.fromTensors(SMALL, bad)).to.throw(ShapeMismatchError, /dense1\/bias/);
    const { ['conv1/kernel']: _omit, ...missing } = weights;
    expect(() => DigitClassifier.fromTensors(SMALL, missing)).to.throw(ShapeMismatchError, /missing/);
    tf.dispose([...Object.values(weights), bad['dense1/bias']]);
    model.dispose();
  });

  it('shiftImages moves a pixel by the drawn offset and fills with background', () => {
    const img = new Float32Array(28 * 28).fill(-1);
    img[10 * 28 + 12] = 1;
    expect(Array.from(shiftImages(img, 1, 0, makeRng(0)))).to.deep.equal(Array.from(img));
    for (let seed = 0; seed < 5; seed++) {
      const out = shiftImages(img, 1, 2, makeRng(seed));
      const lit = out.findIndex((v) => v === 1);
      const [r, c] = [Math.floor(lit / 28), lit % 28];
      expect(Math.abs(r - 10)).to.be.at.most(2);
      expect(Math.abs(c - 12)).to.be.at.most(2);
      expect(out.filter((v) => v === 1).length).to.equal(1);
      expect(out.filter((v) => v === -1).length).to.equal(28 * 28 - 1);
    }
    expect(() => shiftImages(img, 2, 1, makeRng(0))).to.throw(ShapeMismatchError);
    expect(() => shiftImages(img, 1, -1, makeRng(0))).to.throw(InvalidArgumentError);
  });

  it('cosineLearningRate runs from the peak down to 2 % of it', () => {
    expect(cosineLearningRate(0, 100, 1)).to.be.closeTo(1, 1e-15);
    expect(cosineLearningRate(99, 100, 1)).to.be.closeTo(0.02, 1e-15);
    expect(cosineLearningRate(49.5, 100, 1)).to.be.closeTo(0.51, 1e-12);
  });

  it('a few training steps lower the loss on real digits and leak no tensors', async () => {
    const train = loadMnist('train');
    const model = DigitClassifier.create(SMALL, 3);
    const before = tf.memory().numTensors;
    const history = await trainClassifier(model, train, {
      epochs: 2, batchSize: 32, learningRate: 5e-3, seed: 0, maxShift: 1, maxStepsPerEpoch: 12,
    });
    expect(tf.memory().numTensors).to.equal(before);
    expect(history.map((h) => h.steps)).to.deep.equal([12, 12]);
    expect(history[1].meanLoss).to.be.below(history[0].meanLoss);
    expect(history[0].meanLoss).to.be.below(3.5); // near ln 10 at the start, not exploded
    await expectRejects(() => trainClassifier(model, train, { epochs: 0, batchSize: 8, learningRate: 1e-3, seed: 0, maxShift: 0 }), InvalidArgumentError, /epochs/);
    // the losses are read once per epoch: a NaN at step 3 is still named, and nothing leaks
    const loss = model.loss.bind(model);
    let calls = 0;
    model.loss = (x, y, seed) => (calls++ === 3 ? tf.mul(loss(x, y, seed), NaN) as tf.Scalar : loss(x, y, seed));
    const before2 = tf.memory().numTensors;
    await expectRejects(() => trainClassifier(model, train, { epochs: 1, batchSize: 8, learningRate: 1e-3, seed: 0, maxShift: 0, maxStepsPerEpoch: 6 }),
      NonFiniteError, /loss is NaN at epoch 0, step 3/);
    expect(tf.memory().numTensors).to.equal(before2);
    model.dispose();
  });

  it('save → load round trip is exact; a corrupted or foreign file is a CorruptFileError', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clf-'));
    try {
      const model = DigitClassifier.create(SMALL, 4);
      const file = await saveClassifier(model, dir);
      const back = loadClassifier(dir);
      expect(back.config).to.deep.equal(model.config);
      for (const [name] of classifierWeightShapes(SMALL)) {
        expect(Array.from(back.weights[name].dataSync())).to.deep.equal(Array.from(model.weights[name].dataSync()));
      }
      back.dispose();
      model.dispose();
      const before = tf.memory().numTensors;
      const bytes = fs.readFileSync(file);
      bytes[bytes.length - 100] ^= 0xff;
      fs.writeFileSync(file, bytes);
      expect(() => loadClassifier(dir)).to.throw(CorruptFileError, /checksum/);
      writeCheckpointFile(file, { header: { kind: 'unet' }, groups: {} });
      expect(() => loadClassifier(dir)).to.throw(CorruptFileError, /digit-classifier/);
      writeCheckpointFile(file, {
        header: { kind: 'digit-classifier', config: SMALL },
        groups: { params: new Map([['conv1/kernel', { shape: [1], data: new Float32Array(1) }]]) },
      });
      expect(() => loadClassifier(dir)).to.throw(CorruptFileError, /conv1\/kernel/);
      expect(tf.memory().numTensors).to.equal(before);
      expect(() => loadClassifier(path.join(dir, 'nowhere'))).to.throw(CorruptFileError);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the shipped checkpoint classifies ≥ 97 % of a class-balanced test subset', async function () {
    if (!fs.existsSync(path.join(DEFAULT_CLASSIFIER_DIR, CLASSIFIER_FILE))) {
      throw new Error(`no shipped classifier at ${DEFAULT_CLASSIFIER_DIR}: run scripts/train-classifier.ts`);
    }
    const model = loadClassifier();
    const test = loadMnist('test');
    const { x, y } = test.classBalancedSample(30, 0);
    const before = tf.memory().numTensors;
    const acc = await model.accuracy(x, await y.data());
    expect(tf.memory().numTensors).to.equal(before);
    expect(acc).to.be.at.least(0.97);
    tf.dispose([x, y]);
    model.dispose();
  });
});
