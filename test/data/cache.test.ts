// The dataset cache on disk, for both data sets, built from small hand-made sources (IDX files, gzipped for
// Fashion-MNIST as Debian ships it) so every corruption and rebuild takes milliseconds.
import { expect } from 'chai';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import * as tf from '@tensorflow/tfjs';
import { cachePaths, ensureDatasetCache, readDatasetCache } from '../../lib/data/cache';
import { clearDatasetMemo, loadDataset } from '../../lib/data/datasets';
import { encodeIdx } from '../../lib/data/idx';
import { DatasetName, DatasetSource, defaultSource, SourceRole } from '../../lib/data/sources';
import { CorruptFileError } from '../../lib/errors';

const PER_CLASS = { train: 3, test: 2 };
const sha256 = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');

/** IDX bytes of a small source: class of example i = i % 10, pixels a function of (split, i, j). */
function idxFiles(): Record<SourceRole, Uint8Array> {
  const make = (n: number, salt: number) => {
    const pixels = Uint8Array.from({ length: n * 784 }, (_, k) => (k * 7 + salt * 13 + Math.floor(k / 784) * 31) % 256);
    const labels = Uint8Array.from({ length: n }, (_, i) => i % 10);
    return { images: encodeIdx([n, 28, 28], pixels), labels: encodeIdx([n], labels) };
  };
  const train = make(10 * PER_CLASS.train, 1);
  const test = make(10 * PER_CLASS.test, 2);
  return { trainImages: train.images, trainLabels: train.labels, testImages: test.images, testLabels: test.labels };
}

/** Write the source into dir with the data set's usual file names and return it with its digests. */
function writeSource(name: DatasetName, dir: string, files = idxFiles()): DatasetSource {
  const usual = defaultSource(name, dir);
  const out: DatasetSource = { dir, gzip: usual.gzip, files: { ...usual.files } };
  fs.mkdirSync(dir, { recursive: true });
  for (const role of Object.keys(files) as SourceRole[]) {
    const idx = files[role];
    const stored = usual.gzip ? zlib.gzipSync(idx) : idx;
    fs.writeFileSync(path.join(dir, usual.files[role].file), stored);
    out.files[role] = { file: usual.files[role].file, sha256: sha256(stored), ...(usual.gzip ? { idxSha256: sha256(idx) } : {}) };
  }
  return out;
}

for (const name of ['mnist', 'fashion-mnist'] as const) {
  describe(`data/cache: ${name}`, () => {
    let tmp: string;
    let src: DatasetSource;
    let dir: string;
    let good: { train: string; test: string };
    before(() => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${name}-cache-test-`));
      src = writeSource(name, path.join(tmp, 'src'));
    });
    after(() => fs.rmSync(tmp, { recursive: true, force: true }));
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(tmp, 'cache-'));
      const built = ensureDatasetCache(name, { cacheDir: dir, source: src });
      expect(built.status).to.equal('built');
      good = { train: built.header.sections.train.sha256, test: built.header.sections.test.sha256 };
    });
    afterEach(() => {
      fs.rmSync(dir, { recursive: true, force: true });
      clearDatasetMemo();
    });

    const files = () => fs.readdirSync(dir).sort();
    const flipByte = (file: string, at: number) => {
      const b = fs.readFileSync(file);
      b[at] ^= 0xff;
      fs.writeFileSync(file, b);
    };
    const editHeader = (p: { json: string }, edit: (h: Record<string, any>) => void) => {
      const h = JSON.parse(fs.readFileSync(p.json, 'utf8'));
      edit(h);
      fs.writeFileSync(p.json, JSON.stringify(h));
    };
    const TRAIN_BYTES = 10 * PER_CLASS.train * 785;

    it('is built from the source, then reused; header and files as documented', () => {
      const r = ensureDatasetCache(name, { cacheDir: dir, source: src });
      expect(r.status).to.equal('ok');
      expect(r.header.counts).to.deep.equal({ train: 30, test: 20 });
      expect(r.header.perClass.train).to.deep.equal(new Array(10).fill(3));
      expect(r.header.sections.test.offset).to.equal(TRAIN_BYTES);
      expect(r.header.byteLength).to.equal(50 * 785);
      expect(files()).to.deep.equal([`${name}-v2.bin`, `${name}-v2.json`]); // no temp files left
      // the bytes are the source's, in source order: images then labels per split
      const bin = fs.readFileSync(cachePaths(dir, name).bin);
      const idx = idxFiles();
      expect(sha256(bin.subarray(0, 30 * 784))).to.equal(sha256(idx.trainImages.subarray(16)));
      expect(Array.from(bin.subarray(30 * 784, TRAIN_BYTES))).to.deep.equal(Array.from(idx.trainLabels.subarray(8)));
      expect(Array.from(r.splits.test!.labels)).to.deep.equal(Array.from(idx.testLabels.subarray(8)));
    });

    const corruptions: Record<string, (p: { bin: string; json: string }) => void> = {
      'truncated data': (p) => fs.truncateSync(p.bin, 1000),
      'one flipped byte in the train images': (p) => flipByte(p.bin, 1234),
      'one flipped byte in the test labels': (p) => flipByte(p.bin, 50 * 785 - 1),
      'one extra byte': (p) => fs.appendFileSync(p.bin, Buffer.from([0])),
      'missing header': (p) => fs.rmSync(p.json),
      'missing data': (p) => fs.rmSync(p.bin),
      'garbled header (cut JSON)': (p) => fs.writeFileSync(p.json, '{"version": 2, "byteL'),
      'header that is not an object': (p) => fs.writeFileSync(p.json, 'null'),
      'header of another version': (p) => editHeader(p, (h) => (h.version = 1)),
      'header of the other data set': (p) => editHeader(p, (h) => (h.dataset = name === 'mnist' ? 'fashion-mnist' : 'mnist')),
      'header with a shifted section': (p) => editHeader(p, (h) => (h.sections.test.offset += 1)),
      'header with a wrong count': (p) => editHeader(p, (h) => (h.counts.test = 19)),
      'header built from other source files (stale)': (p) => editHeader(p, (h) => (h.sources.testLabels.sha256 = '0'.repeat(64))),
    };

    for (const [what, corrupt] of Object.entries(corruptions)) {
      it(`rebuilds after: ${what}`, () => {
        corrupt(cachePaths(dir, name));
        expect(() => readDatasetCache(name, dir, src.files)).to.throw(CorruptFileError);
        const r = ensureDatasetCache(name, { cacheDir: dir, source: src });
        expect(r.status).to.equal('rebuilt');
        expect(r.reason).to.be.a('string').and.not.equal('');
        expect(r.header.sections.train.sha256).to.equal(good.train);
        expect(r.header.sections.test.sha256).to.equal(good.test);
        expect(ensureDatasetCache(name, { cacheDir: dir, source: src }).status).to.equal('ok');
        expect(files()).to.deep.equal([`${name}-v2.bin`, `${name}-v2.json`]);
      });
    }

    it('checks only the splits it reads: a damaged test split leaves train usable, loading test rebuilds', () => {
      flipByte(cachePaths(dir, name).bin, TRAIN_BYTES + 5);
      expect(ensureDatasetCache(name, { cacheDir: dir, source: src, splits: ['train'] }).status).to.equal('ok');
      const r = ensureDatasetCache(name, { cacheDir: dir, source: src, splits: ['test'] });
      expect(r.status).to.equal('rebuilt');
      expect(r.reason).to.match(/test split's SHA-256/);
      expect(Object.keys(r.splits)).to.deep.equal(['test']);
    });

    it('loadDataset goes through the same check (truncated cache → rebuilt, same data, no leaked tensors)', () => {
      fs.truncateSync(cachePaths(dir, name).bin, 10);
      const before = tf.memory().numTensors;
      const t = loadDataset(name, 'test', { cacheDir: dir, source: src });
      expect(t.size).to.equal(20);
      expect(fs.statSync(cachePaths(dir, name).bin).size).to.equal(50 * 785);
      const { x, y } = t.batch([0, 19]);
      expect(Array.from(y.dataSync())).to.deep.equal([0, 9]);
      tf.dispose([x, y]);
      expect(tf.memory().numTensors).to.equal(before);
      expect(loadDataset(name, 'train', { cacheDir: dir, source: src }).size).to.equal(30);
    });

    it('a source file with other bytes → CorruptFileError naming the file and both digests; no cache written', () => {
      const other = path.join(tmp, 'other');
      const s = writeSource(name, other);
      const f = path.join(other, s.files.trainLabels.file);
      const bytes = fs.readFileSync(f);
      bytes[bytes.length - 1] ^= 1;
      fs.writeFileSync(f, bytes);
      const fresh = path.join(tmp, 'fresh');
      let err: Error | undefined;
      try {
        ensureDatasetCache(name, { cacheDir: fresh, source: s });
      } catch (e) {
        err = e as Error;
      }
      expect(err).to.be.instanceOf(CorruptFileError);
      if (name === 'mnist') {
        expect(err!.message).to.include(f).and.include(s.files.trainLabels.sha256).and.include(sha256(bytes));
      } else {
        // a flipped byte inside the gzip stream: either the gzip check or the digests catch it, naming the file
        expect(err!.message).to.include(f).and.include(s.files.trainLabels.sha256);
      }
      expect(fs.existsSync(fresh) ? fs.readdirSync(fresh) : []).to.deep.equal([]);
      fs.rmSync(other, { recursive: true, force: true });
    });

    it('a missing source → CorruptFileError that says how to install it', () => {
      const missing = { ...src, dir: path.join(tmp, 'nowhere') };
      const hint = name === 'mnist' ? /train-images-idx3-ubyte is missing; .*npm ci/ : /is missing; .*apt-get install dataset-fashion-mnist/;
      expect(() => ensureDatasetCache(name, { cacheDir: path.join(tmp, 'c2'), source: missing })).to.throw(CorruptFileError, hint);
      expect(() => loadDataset(name, 'train', { cacheDir: path.join(tmp, 'c3'), sourceDir: path.join(tmp, 'nowhere') })).to.throw(CorruptFileError, hint);
    });

    it('a structurally bad source (labels out of range) with matching digests → CorruptFileError from the IDX parser', () => {
      const files = idxFiles();
      files.testLabels[8 + 3] = 12;
      const s = writeSource(name, path.join(tmp, 'bad'), files);
      expect(() => ensureDatasetCache(name, { cacheDir: path.join(tmp, 'c4'), source: s })).to.throw(CorruptFileError, /t10k-labels-idx1-ubyte.*label 12 at index 3 is outside 0 … 9/);
    });

    if (name === 'fashion-mnist') {
      it('the same IDX data compressed differently is accepted (Zalando\'s .gz differ from Debian\'s); other data is not', () => {
        const again = path.join(tmp, 'regz');
        fs.mkdirSync(again);
        for (const role of Object.keys(src.files) as SourceRole[]) {
          const idx = zlib.gunzipSync(fs.readFileSync(path.join(src.dir, src.files[role].file)));
          fs.writeFileSync(path.join(again, src.files[role].file), zlib.gzipSync(idx, { level: 1 }));
        }
        const recompressed = { ...src, dir: again };
        const r = ensureDatasetCache(name, { cacheDir: path.join(tmp, 'c5'), source: recompressed });
        expect(r.header.sections.test.sha256).to.equal(good.test);
        const f = path.join(again, src.files.testImages.file);
        const idx = zlib.gunzipSync(fs.readFileSync(f));
        idx[100] ^= 1;
        fs.writeFileSync(f, zlib.gzipSync(idx));
        expect(() => ensureDatasetCache(name, { cacheDir: path.join(tmp, 'c6'), source: recompressed })).to.throw(
          CorruptFileError,
          new RegExp(`t10k-images-idx3-ubyte.gz: SHA-256 [0-9a-f]{64} does not match the expected ${src.files.testImages.sha256} \\(nor do its decompressed bytes match ${src.files.testImages.idxSha256}\\)`),
        );
        fs.writeFileSync(f, Buffer.from('not gzip'));
        expect(() => ensureDatasetCache(name, { cacheDir: path.join(tmp, 'c7'), source: recompressed })).to.throw(CorruptFileError, /not a valid gzip file/);
      });
    }
  });
}
