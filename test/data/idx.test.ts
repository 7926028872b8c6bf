import { expect } from 'chai';
import { encodeIdx, parseIdx, parseIdxImages, parseIdxLabels, parseIdxPair } from '../../lib/data/idx';
import { CorruptFileError, InvalidArgumentError } from '../../lib/errors';

// Hand-made IDX buffers (bytes written out, not produced by lib's encoder), so the parser is checked against the format.
// Two 2×3 images (magic 2051 = 00 00 08 03) and their two labels (magic 2049 = 00 00 08 01).
const IMAGES = Uint8Array.from([
  0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3, // header: 2 images of 2 × 3
  1, 2, 3, 4, 5, 6, //
  250, 251, 252, 253, 254, 255,
]);
const LABELS = Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 2, 7, 9]);
const SHAPE = { rows: 2, cols: 3, numClasses: 10 };

describe('data/idx', () => {
  it('parses a good images file and a good labels file (big-endian header, data as a view)', () => {
    const img = parseIdx(IMAGES, 'img');
    expect(img.dims).to.deep.equal([2, 2, 3]);
    expect(Array.from(img.data)).to.deep.equal([1, 2, 3, 4, 5, 6, 250, 251, 252, 253, 254, 255]);
    expect(img.data.buffer).to.equal(IMAGES.buffer); // no copy
    expect(parseIdxImages(IMAGES, 'img', 2, 3).count).to.equal(2);
    expect(Array.from(parseIdxLabels(LABELS, 'lab', 10))).to.deep.equal([7, 9]);
    const pair = parseIdxPair({ buf: IMAGES, name: 'img' }, { buf: LABELS, name: 'lab' }, SHAPE);
    expect(pair.count).to.equal(2);
    expect(Array.from(pair.labels)).to.deep.equal([7, 9]);
  });

  it('reads sizes ≥ 256 as big-endian uint32 (60,000 = 00 00 EA 60)', () => {
    const buf = new Uint8Array(8 + 60000);
    buf.set([0, 0, 8, 1, 0, 0, 0xea, 0x60]);
    expect(parseIdx(buf, 'big').dims).to.deep.equal([60000]);
  });

  it('parses a buffer that is a view into a larger one (Buffer pool offsets)', () => {
    const big = new Uint8Array(100 + LABELS.length);
    big.set(LABELS, 100);
    expect(Array.from(parseIdxLabels(big.subarray(100), 'lab', 10))).to.deep.equal([7, 9]);
  });

  it('encodeIdx writes exactly the hand-made bytes', () => {
    expect(Array.from(encodeIdx([2, 2, 3], IMAGES.subarray(16)))).to.deep.equal(Array.from(IMAGES));
    expect(Array.from(encodeIdx([2], [7, 9]))).to.deep.equal(Array.from(LABELS));
    expect(() => encodeIdx([2, 2], [1, 2, 3])).to.throw(InvalidArgumentError, /3 elements for dims \[2, 2\] \(4\)/);
  });

  it('wrong magic number → CorruptFileError naming the file and the magic found', () => {
    const gz = Uint8Array.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]); // a gzip file passed without gunzip
    expect(() => parseIdx(gz, 'x.gz')).to.throw(CorruptFileError, /x\.gz: magic number 0x1f8b0800 .*expected bytes 00 00 08.*2051.*2049/);
    const floats = Uint8Array.from([0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0]); // type 0x0D = float, not unsigned byte
    expect(() => parseIdx(floats, 'f')).to.throw(CorruptFileError, /not an unsigned-byte IDX file/);
    expect(() => parseIdx(Uint8Array.from([0, 0, 8, 0]), 'z')).to.throw(CorruptFileError, /0 dimensions/);
  });

  it('images where labels are expected (and the reverse) → CorruptFileError saying which kind was expected', () => {
    expect(() => parseIdxLabels(IMAGES, 'img', 10)).to.throw(CorruptFileError, /img: 3 dimensions \[2 × 2 × 3\], expected a labels file/);
    expect(() => parseIdxImages(LABELS, 'lab', 28, 28)).to.throw(CorruptFileError, /lab: 1 dimensions \[2\], expected an images file \[n × 28 × 28\]/);
  });

  it('truncated or over-long files → CorruptFileError with both lengths', () => {
    expect(() => parseIdx(IMAGES.subarray(0, IMAGES.length - 1), 'img')).to.throw(CorruptFileError, /img: 27 bytes, but its header \[2 × 2 × 3\] needs 28 \(truncated\?\)/);
    expect(() => parseIdx(IMAGES.subarray(0, 10), 'img')).to.throw(CorruptFileError, /too short for an IDX header of 3 dimensions \(16 bytes\)/);
    expect(() => parseIdx(IMAGES.subarray(0, 2), 'img')).to.throw(CorruptFileError, /2 bytes, too short/);
    const long = new Uint8Array(LABELS.length + 1);
    long.set(LABELS);
    expect(() => parseIdx(long, 'lab')).to.throw(CorruptFileError, /11 bytes, but its header \[2\] needs 10 \(trailing bytes\?\)/);
  });

  it('wrong image size → CorruptFileError with found and expected dims', () => {
    expect(() => parseIdxImages(IMAGES, 'img', 28, 28)).to.throw(CorruptFileError, /img: images of 2 × 3 pixels, expected 28 × 28/);
  });

  it('label and image counts that differ → CorruptFileError naming both files', () => {
    const three = Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3]);
    expect(() => parseIdxPair({ buf: IMAGES, name: 'img' }, { buf: three, name: 'lab3' }, SHAPE)).to.throw(
      CorruptFileError,
      /img holds 2 images but lab3 holds 3 labels/,
    );
  });

  it('labels out of range → CorruptFileError with the label, its index and the range', () => {
    const bad = Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 2, 3, 10]);
    expect(() => parseIdxLabels(bad, 'lab', 10)).to.throw(CorruptFileError, /lab: label 10 at index 1 is outside 0 … 9/);
    expect(() => parseIdxPair({ buf: IMAGES, name: 'img' }, { buf: bad, name: 'lab' }, SHAPE)).to.throw(CorruptFileError, /label 10/);
  });
});
