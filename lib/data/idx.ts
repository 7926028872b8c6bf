/**
 * The IDX file format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/, "FILE FORMATS"): one parser for
 * every data set of the course, strict about what it accepts, so a damaged or wrong file is a named error that says
 * what was found and what was expected — never images with shifted pixels.
 *
 *   bytes 0–1  zero
 *   byte  2    element type (0x08 = unsigned byte: the only type these data sets use)
 *   byte  3    number of dimensions d
 *   then d big-endian uint32 sizes, then the elements, row-major.
 * So an image file (3 dims) starts with magic 0x00000803 = 2051, a label file (1 dim) with 0x00000801 = 2049.
 */
import { CorruptFileError, InvalidArgumentError } from '../errors';

export const IDX_UBYTE = 0x08;
export const IMAGES_MAGIC = 0x00000803; // 2051
export const LABELS_MAGIC = 0x00000801; // 2049

export interface IdxArray {
  /** Sizes of each dimension (e.g. [60000, 28, 28]). */
  dims: number[];
  /** The elements, row-major: a view into the buffer that was parsed (no copy). */
  data: Uint8Array;
}

/** Parse an unsigned-byte IDX buffer; `name` (a file name) goes into every error message. */
export function parseIdx(buf: Uint8Array, name: string): IdxArray {
  if (buf.length < 4) throw new CorruptFileError(`${name}: ${buf.length} bytes, too short for an IDX header (4 bytes at least)`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const magic = view.getUint32(0, false);
  if (buf[0] !== 0 || buf[1] !== 0 || buf[2] !== IDX_UBYTE) {
    throw new CorruptFileError(
      `${name}: magic number 0x${magic.toString(16).padStart(8, '0')} (${magic}) is not an unsigned-byte IDX file; ` +
        `expected bytes 00 00 08 then the number of dimensions: ${IMAGES_MAGIC} (images) or ${LABELS_MAGIC} (labels)`,
    );
  }
  const nd = buf[3];
  if (nd === 0) throw new CorruptFileError(`${name}: IDX header declares 0 dimensions, expected at least 1`);
  const headerBytes = 4 + 4 * nd;
  if (buf.length < headerBytes) {
    throw new CorruptFileError(`${name}: ${buf.length} bytes, too short for an IDX header of ${nd} dimensions (${headerBytes} bytes)`);
  }
  const dims: number[] = [];
  for (let i = 0; i < nd; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const expected = headerBytes + count;
  if (buf.length !== expected) {
    const what = buf.length < expected ? 'truncated?' : 'trailing bytes?';
    throw new CorruptFileError(
      `${name}: ${buf.length} bytes, but its header [${dims.join(' × ')}] needs ${expected} (${what})`,
    );
  }
  return { dims, data: buf.subarray(headerBytes) };
}

/** An images file: [n, rows, cols] unsigned bytes with the expected image size. */
export function parseIdxImages(buf: Uint8Array, name: string, rows: number, cols: number): { count: number; pixels: Uint8Array } {
  const { dims, data } = parseIdx(buf, name);
  if (dims.length !== 3) {
    throw new CorruptFileError(`${name}: ${dims.length} dimensions [${dims.join(' × ')}], expected an images file [n × ${rows} × ${cols}] (magic ${IMAGES_MAGIC})`);
  }
  if (dims[1] !== rows || dims[2] !== cols) {
    throw new CorruptFileError(`${name}: images of ${dims[1]} × ${dims[2]} pixels, expected ${rows} × ${cols}`);
  }
  return { count: dims[0], pixels: data };
}

/** A labels file: [n] unsigned bytes, every label in 0 … numClasses − 1. */
export function parseIdxLabels(buf: Uint8Array, name: string, numClasses: number): Uint8Array {
  const { dims, data } = parseIdx(buf, name);
  if (dims.length !== 1) {
    throw new CorruptFileError(`${name}: ${dims.length} dimensions [${dims.join(' × ')}], expected a labels file [n] (magic ${LABELS_MAGIC})`);
  }
  for (let i = 0; i < data.length; i++) {
    if (data[i] >= numClasses) {
      throw new CorruptFileError(`${name}: label ${data[i]} at index ${i} is outside 0 … ${numClasses - 1}`);
    }
  }
  return data;
}

/** An images file and its labels file together: the counts must agree. */
export function parseIdxPair(
  images: { buf: Uint8Array; name: string },
  labels: { buf: Uint8Array; name: string },
  shape: { rows: number; cols: number; numClasses: number },
): { count: number; pixels: Uint8Array; labels: Uint8Array } {
  const img = parseIdxImages(images.buf, images.name, shape.rows, shape.cols);
  const lab = parseIdxLabels(labels.buf, labels.name, shape.numClasses);
  if (lab.length !== img.count) {
    throw new CorruptFileError(`${images.name} holds ${img.count} images but ${labels.name} holds ${lab.length} labels; expected one label per image`);
  }
  return { count: img.count, pixels: img.pixels, labels: lab };
}

/** Encode unsigned bytes as IDX (tests build small sources with it; the course itself only reads IDX). */
export function encodeIdx(dims: number[], data: ArrayLike<number>): Uint8Array {
  const count = dims.reduce((a, b) => a * b, 1);
  if (data.length !== count) throw new InvalidArgumentError(`encodeIdx: ${data.length} elements for dims [${dims.join(', ')}] (${count})`);
  const out = new Uint8Array(4 + 4 * dims.length + count);
  const view = new DataView(out.buffer);
  out[2] = IDX_UBYTE;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}
