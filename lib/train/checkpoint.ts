/**
 * Checkpoints: one file = magic + header length + JSON header + float32 blob + SHA-256 of everything before it.
 *
 *   "DIFFCKPT" | u32 LE header bytes | header JSON (model config, schedule, step, tensor table, training state …)
 *   | blob: float32 LE tensors at the offsets listed in the header | 32-byte SHA-256 trailer
 *
 * Written atomically (temp file in the same folder, fsync, rename, fsync the folder) so an interrupted write never
 * destroys the previous checkpoint. Loading checks magic, sizes, checksum, every tensor's shape and (optionally) that
 * the model config is the one expected; any mismatch is a CorruptFileError saying what was wrong.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { writeFileAtomic } from '../atomic-file';
import { CorruptFileError } from '../errors';

const MAGIC = Buffer.from('DIFFCKPT', 'ascii');
const FORMAT_VERSION = 1;
const HASH_BYTES = 32;

/** A named group of tensors (e.g. 'params', 'ema', 'adam.m', 'adam.v'). */
export type TensorGroup = Map<string, { shape: number[]; data: Float32Array }>;

export interface CheckpointContents {
  /** Anything JSON: model config, schedule JSON, step, training config, loss history, optimizer scalars … */
  header: Record<string, unknown>;
  groups: Record<string, TensorGroup>;
}

interface TensorEntry { group: string; name: string; shape: number[]; offset: number; length: number }

function product(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Serialize to bytes (exported for tests that corrupt them). */
export function encodeCheckpoint(c: CheckpointContents): Buffer {
  const table: TensorEntry[] = [];
  let offset = 0;
  for (const [group, tensors] of Object.entries(c.groups)) {
    for (const [name, t] of tensors) {
      if (t.data.length !== product(t.shape)) {
        throw new CorruptFileError(`cannot save '${group}/${name}': ${t.data.length} values for shape [${t.shape}]`);
      }
      table.push({ group, name, shape: t.shape.slice(), offset, length: t.data.length });
      offset += t.data.length;
    }
  }
  const header = Buffer.from(JSON.stringify({ format: FORMAT_VERSION, ...c.header, tensors: table }), 'utf8');
  const blob = Buffer.alloc(offset * 4);
  for (const e of table) {
    const src = c.groups[e.group].get(e.name)!.data;
    for (let i = 0; i < src.length; i++) blob.writeFloatLE(src[i], (e.offset + i) * 4);
  }
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length, 0);
  const body = Buffer.concat([MAGIC, len, header, blob]);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

export function decodeCheckpoint(bytes: Buffer, source = 'checkpoint'): CheckpointContents {
  const fail = (msg: string): never => { throw new CorruptFileError(`${source}: ${msg}`); };
  if (bytes.length < MAGIC.length + 4 + HASH_BYTES) fail(`only ${bytes.length} bytes: too short to be a checkpoint (truncated?)`);
  if (!bytes.subarray(0, MAGIC.length).equals(MAGIC)) fail(`does not start with "DIFFCKPT": not a checkpoint file`);
  const body = bytes.subarray(0, bytes.length - HASH_BYTES);
  const want = bytes.subarray(bytes.length - HASH_BYTES);
  const headerLen = bytes.readUInt32LE(MAGIC.length);
  const headerStart = MAGIC.length + 4;
  if (headerStart + headerLen > body.length) fail(`header of ${headerLen} bytes runs past the end of the file (truncated?)`);
  const got = createHash('sha256').update(body).digest();
  if (!got.equals(want)) fail('checksum mismatch: the file is truncated or corrupted');
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(body.subarray(headerStart, headerStart + headerLen).toString('utf8'));
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (header.format !== FORMAT_VERSION) fail(`format version ${String(header.format)}, expected ${FORMAT_VERSION}`);
  const table = header.tensors as TensorEntry[];
  if (!Array.isArray(table)) fail('header has no tensor table');
  const blob = body.subarray(headerStart + headerLen);
  const total = table.reduce((s, e) => s + e.length, 0);
  if (blob.length !== total * 4) fail(`blob has ${blob.length} bytes, the tensor table needs ${total * 4}`);
  const groups: Record<string, TensorGroup> = {};
  for (const e of table) {
    if (product(e.shape) !== e.length) fail(`tensor '${e.group}/${e.name}' has ${e.length} values for shape [${e.shape}]`);
    const data = new Float32Array(e.length);
    for (let i = 0; i < e.length; i++) data[i] = blob.readFloatLE((e.offset + i) * 4);
    (groups[e.group] ??= new Map()).set(e.name, { shape: e.shape, data });
  }
  delete header.tensors;
  delete header.format;
  return { header, groups };
}

export function writeCheckpointFile(file: string, c: CheckpointContents): void {
  writeFileAtomic(file, encodeCheckpoint(c));
}

export function readCheckpointFile(file: string): CheckpointContents {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new CorruptFileError(`cannot read checkpoint '${file}': ${(e as Error).message}`);
  }
  return decodeCheckpoint(bytes, `checkpoint '${file}'`);
}
