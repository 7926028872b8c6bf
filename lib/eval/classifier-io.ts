/**
 * Saving and loading the classifiers in the project's checkpoint format (lib/train/checkpoint: atomic write,
 * SHA-256, shape table): one file `classifier.ckpt` whose header carries { kind, config, dataset } and whose 'params'
 * group holds the weights by name. Loading checks the kind, the config and every shape; anything wrong is a
 * CorruptFileError. One classifier per data set is shipped: checkpoints/classifier-mnist, checkpoints/classifier-fashion-mnist.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { CorruptFileError, DiffusionError, InvalidArgumentError } from '../errors';
import { checkDatasetName, type DatasetName } from '../data/sources';
import { readCheckpointFile, TensorGroup, writeCheckpointFile } from '../train/checkpoint';
import { ClassifierConfig, DigitClassifier } from './classifier';

export const CLASSIFIER_KIND = 'digit-classifier';
export const CLASSIFIER_FILE = 'classifier.ckpt';

// realpath: inside notebooks lib is reached through the notebooks/lib link, and checkpoints/ sits beside the real lib/.
const CHECKPOINTS_DIR = path.join(fs.realpathSync(__dirname), '..', '..', 'checkpoints');

/** The shipped classifier of a data set: checkpoints/classifier-<dataset> of this repository. */
export function classifierDir(dataset: DatasetName): string {
  checkDatasetName(dataset);
  return path.join(CHECKPOINTS_DIR, `classifier-${dataset}`);
}

/** The shipped MNIST classifier's folder (classifierDir('mnist')). */
export const DEFAULT_CLASSIFIER_DIR = classifierDir('mnist');

/**
 * Write the model's config and weights (read back, awaited) to `dir`/classifier.ckpt (folder created if needed);
 * `extraHeader.dataset` records the data set it was trained on.
 */
export async function saveClassifier(model: DigitClassifier, dir: string, extraHeader: Record<string, unknown> = {}): Promise<string> {
  if (extraHeader.dataset !== undefined) checkDatasetName(extraHeader.dataset as DatasetName);
  const entries = Object.entries(model.weights);
  const values = await Promise.all(entries.map(([, v]) => v.data() as Promise<Float32Array>));
  const params: TensorGroup = new Map();
  entries.forEach(([name, v], i) => params.set(name, { shape: v.shape.slice(), data: Float32Array.from(values[i]) }));
  const file = path.join(dir, CLASSIFIER_FILE);
  writeCheckpointFile(file, { header: { ...extraHeader, kind: CLASSIFIER_KIND, config: model.config }, groups: { params } });
  return file;
}

/** The data set a saved classifier was trained on (its header's `dataset`; files written before it existed: MNIST). */
export function classifierDataset(header: Record<string, unknown>): DatasetName {
  return (header.dataset as DatasetName | undefined) ?? 'mnist';
}

/**
 * Load a classifier saved by saveClassifier (default: the shipped MNIST one). With `dataset`, a classifier trained on
 * another data set is an InvalidArgumentError (a digit classifier cannot judge shoes).
 */
export function loadClassifier(dir: string = DEFAULT_CLASSIFIER_DIR, opts: { dataset?: DatasetName } = {}): DigitClassifier {
  const file = path.join(dir, CLASSIFIER_FILE);
  const { header, groups } = readCheckpointFile(file);
  if (header.kind !== CLASSIFIER_KIND) {
    throw new CorruptFileError(`'${file}' holds a ${JSON.stringify(header.kind)} checkpoint, expected '${CLASSIFIER_KIND}'`);
  }
  if (opts.dataset !== undefined && classifierDataset(header) !== opts.dataset) {
    throw new InvalidArgumentError(`'${file}' is a classifier of ${classifierDataset(header)}, but one of ${opts.dataset} was asked for (checkpoints/classifier-${opts.dataset})`);
  }
  const params = groups.params;
  if (!params) throw new CorruptFileError(`'${file}' has no 'params' tensor group`);
  const tensors: Record<string, tf.Tensor> = {};
  try {
    for (const [name, { shape, data }] of params) tensors[name] = tf.tensor(data, shape, 'float32');
    return DigitClassifier.fromTensors(header.config as ClassifierConfig, tensors);
  } catch (e) {
    // A config or shape that does not fit is a property of the file, whatever the check that caught it.
    if (e instanceof DiffusionError && !(e instanceof CorruptFileError)) throw new CorruptFileError(`'${file}': ${e.message}`);
    throw e;
  } finally {
    tf.dispose(Object.values(tensors));
  }
}

/** The shipped classifier of `dataset` (checkpoints/classifier-<dataset>), checked to be one of that data set. */
export function loadClassifierFor(dataset: DatasetName): DigitClassifier {
  return loadClassifier(classifierDir(dataset), { dataset });
}
