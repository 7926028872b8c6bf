/**
 * Generated samples on disk, so that sampling and evaluation can run apart (`npm run sample -- --raw out.bin`, then
 * `npm run evaluate -- --raw out.bin`). One file:
 *
 *   "DIFFRAW1" | u32 LE header bytes | header JSON { count, height, width, channels, meta }
 *   | float32 LE pixels [count, height, width, channels] in [-1, 1] | int32 LE labels [count] (the intended class)
 *
 * Written atomically (lib/atomic-file); reading checks every size and fails with CorruptFileError.
 */
import * as fs from 'fs';
import { CorruptFileError, ShapeMismatchError } from '../errors';
import { writeFileAtomic } from '../atomic-file';

const MAGIC = Buffer.from('DIFFRAW1', 'ascii');

export interface RawSamples {
  count: number;
  height: number;
  width: number;
  channels: number;
  /** Row-major [count, height, width, channels]. */
  pixels: Float32Array;
  /** Intended class of each sample. */
  labels: Int32Array;
  /** Free-form provenance (checkpoint, sampler, steps, guidance, seed …). */
  meta: Record<string, unknown>;
}

export function encodeRawSamples(s: RawSamples): Buffer {
  const per = s.height * s.width * s.channels;
  if (s.pixels.length !== s.count * per) {
    throw new ShapeMismatchError(`raw samples: ${s.pixels.length} pixel values for ${s.count} × ${s.height}×${s.width}×${s.channels}`);
  }
  if (s.labels.length !== s.count) throw new ShapeMismatchError(`raw samples: ${s.labels.length} labels for ${s.count} samples`);
  const header = Buffer.from(
    JSON.stringify({ count: s.count, height: s.height, width: s.width, channels: s.channels, meta: s.meta }),
    'utf8',
  );
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length, 0);
  const pixels = Buffer.alloc(s.pixels.length * 4);
  s.pixels.forEach((v, i) => pixels.writeFloatLE(v, i * 4));
  const labels = Buffer.alloc(s.count * 4);
  s.labels.forEach((v, i) => labels.writeInt32LE(v, i * 4));
  return Buffer.concat([MAGIC, len, header, pixels, labels]);
}

export function decodeRawSamples(bytes: Buffer, source = 'raw samples'): RawSamples {
  const fail = (msg: string): never => {
    throw new CorruptFileError(`${source}: ${msg}`);
  };
  if (bytes.length < MAGIC.length + 4 || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
    fail('does not start with "DIFFRAW1": not a raw samples file (write one with npm run sample -- --raw <file>)');
  }
  const headerLen = bytes.readUInt32LE(MAGIC.length);
  const start = MAGIC.length + 4;
  if (start + headerLen > bytes.length) fail(`header of ${headerLen} bytes runs past the end of the file (truncated?)`);
  let h: { count: number; height: number; width: number; channels: number; meta?: Record<string, unknown> };
  try {
    h = JSON.parse(bytes.subarray(start, start + headerLen).toString('utf8'));
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  for (const k of ['count', 'height', 'width', 'channels'] as const) {
    if (!Number.isInteger(h[k]) || h[k] < 1) fail(`header field ${k} is ${JSON.stringify(h[k])}, expected a positive integer`);
  }
  const nPixels = h.count * h.height * h.width * h.channels;
  const expected = start + headerLen + 4 * nPixels + 4 * h.count;
  if (bytes.length !== expected) fail(`${bytes.length} bytes, the header needs ${expected} (truncated or padded?)`);
  const pixelStart = start + headerLen;
  const pixels = new Float32Array(nPixels);
  for (let i = 0; i < nPixels; i++) pixels[i] = bytes.readFloatLE(pixelStart + 4 * i);
  const labels = new Int32Array(h.count);
  const labelStart = pixelStart + 4 * nPixels;
  for (let i = 0; i < h.count; i++) labels[i] = bytes.readInt32LE(labelStart + 4 * i);
  return { count: h.count, height: h.height, width: h.width, channels: h.channels, pixels, labels, meta: h.meta ?? {} };
}

export function writeRawSamples(file: string, s: RawSamples): void {
  writeFileAtomic(file, encodeRawSamples(s));
}

export function readRawSamples(file: string): RawSamples {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new CorruptFileError(`cannot read raw samples '${file}': ${(e as Error).message}`);
  }
  return decodeRawSamples(bytes, `raw samples '${file}'`);
}
