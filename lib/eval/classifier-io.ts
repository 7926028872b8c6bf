/**
 * Saving and loading the digit classifier in the project's checkpoint format (lib/train/checkpoint: atomic write,
 * SHA-256, shape table): one file `classifier.ckpt` whose header carries { kind, config } and whose 'params' group
 * holds the weights by name. Loading checks the kind, the config and every shape; anything wrong is a CorruptFileError.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { CorruptFileError, DiffusionError } from '../errors';
import { readCheckpointFile, TensorGroup, writeCheckpointFile } from '../train/checkpoint';
import { ClassifierConfig, DigitClassifier } from './classifier';

export const CLASSIFIER_KIND = 'digit-classifier';
export const CLASSIFIER_FILE = 'classifier.ckpt';

/** The shipped checkpoint folder (checkpoints/classifier of this repository). */
// realpath: inside notebooks lib is reached through the notebooks/lib link, and checkpoints/ sits beside the real lib/.
export const DEFAULT_CLASSIFIER_DIR = path.join(fs.realpathSync(__dirname), '..', '..', 'checkpoints', 'classifier');

/** Write the model's config and weights (read back, awaited) to `dir`/classifier.ckpt (folder created if needed). */
export async function saveClassifier(model: DigitClassifier, dir: string, extraHeader: Record<string, unknown> = {}): Promise<string> {
  const entries = Object.entries(model.weights);
  const values = await Promise.all(entries.map(([, v]) => v.data() as Promise<Float32Array>));
  const params: TensorGroup = new Map();
  entries.forEach(([name, v], i) => params.set(name, { shape: v.shape.slice(), data: Float32Array.from(values[i]) }));
  const file = path.join(dir, CLASSIFIER_FILE);
  writeCheckpointFile(file, { header: { ...extraHeader, kind: CLASSIFIER_KIND, config: model.config }, groups: { params } });
  return file;
}

/** Load a classifier saved by saveClassifier (default: the shipped checkpoint). */
export function loadClassifier(dir: string = DEFAULT_CLASSIFIER_DIR): DigitClassifier {
  const file = path.join(dir, CLASSIFIER_FILE);
  const { header, groups } = readCheckpointFile(file);
  if (header.kind !== CLASSIFIER_KIND) {
    throw new CorruptFileError(`'${file}' holds a ${JSON.stringify(header.kind)} checkpoint, expected '${CLASSIFIER_KIND}'`);
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
