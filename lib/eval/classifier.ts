/**
 * A small MNIST digit classifier, the judge of generated samples.
 *
 *   [B,28,28,1] → conv3×3·c1, ReLU, max-pool 2 → [B,14,14,c1]
 *               → conv3×3·c2, ReLU, max-pool 2 → [B,7,7,c2]
 *               → conv3×3·c3 stride 2 valid, ReLU → [B,3,3,c3] → flatten
 *               → dropout → dense·hidden, ReLU  = FEATURES (used by the feature-FID)
 *               → dropout → dense·numClasses    = logits
 *
 * The third (strided) convolution keeps the dense layer small, so the weights stay near 0.5 MB.
 * Plain tf ops on variables kept by name (no tf.layers), so a checkpoint of named tensors can hold it. The tfjs
 * variables themselves are left unnamed: tfjs refuses two variables of the same name, and two classifiers may coexist.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../errors';
import { conditionalAccuracy } from './metrics';

export interface ClassifierConfig {
  /** Channels of the three convolutions. */
  channels: [number, number, number];
  /** Width of the penultimate dense layer = feature dimension for the FID. */
  hidden: number;
  numClasses: number;
  /** Dropout rate applied (training only) before each dense layer. */
  dropout: number;
}

export const DEFAULT_CLASSIFIER_CONFIG: ClassifierConfig = {
  channels: [32, 64, 64],
  hidden: 128,
  numClasses: 10,
  dropout: 0.3,
};

export const IMAGE_SIZE = 28;

/** Spatial size after the two pools (28 → 14 → 7) and the valid stride-2 3×3 conv (7 → 3). */
const FINAL_SPATIAL = 3;

/** Names and shapes of every weight, in a fixed order (the checkpoint order). */
export function classifierWeightShapes(config: ClassifierConfig): Array<[string, number[]]> {
  const [c1, c2, c3] = config.channels;
  const flat = FINAL_SPATIAL * FINAL_SPATIAL * c3;
  return [
    ['conv1/kernel', [3, 3, 1, c1]],
    ['conv1/bias', [c1]],
    ['conv2/kernel', [3, 3, c1, c2]],
    ['conv2/bias', [c2]],
    ['conv3/kernel', [3, 3, c2, c3]],
    ['conv3/bias', [c3]],
    ['dense1/kernel', [flat, config.hidden]],
    ['dense1/bias', [config.hidden]],
    ['dense2/kernel', [config.hidden, config.numClasses]],
    ['dense2/bias', [config.numClasses]],
  ];
}

export interface ForwardOptions {
  /** Dropout is active only when training. */
  training?: boolean;
  /** Seed of this step's dropout masks; vary it per step (a fixed seed would drop the same units every step). */
  dropoutSeed?: number;
}

export interface ClassifierOutput {
  logits: tf.Tensor2D;
  /** Penultimate activations [B, hidden] (after ReLU, before dropout). */
  features: tf.Tensor2D;
}

export interface Classification {
  /** argmax class per image. */
  predictions: Int32Array;
  /** Row-major [n, featureDim]. */
  features: Float32Array;
  featureDim: number;
}

export class DigitClassifier {
  private constructor(
    readonly config: ClassifierConfig,
    readonly weights: Record<string, tf.Variable>,
  ) {}

  /**
   * Fresh weights (seeded, one seed per tensor), zero biases: He-normal for the ReLU layers, variance 1/fanIn for the
   * logits (so the initial loss is near ln 10 rather than several times it).
   */
  static create(config: ClassifierConfig = DEFAULT_CLASSIFIER_CONFIG, seed = 0): DigitClassifier {
    validateConfig(config);
    const weights: Record<string, tf.Variable> = {};
    classifierWeightShapes(config).forEach(([name, shape], i) => {
      const fanIn = shape.slice(0, -1).reduce((a, b) => a * b, 1);
      const gain = name === 'dense2/kernel' ? 1 : 2;
      weights[name] = tf.tidy(() =>
        name.endsWith('/bias')
          ? tf.variable(tf.zeros(shape))
          : tf.variable(tf.randomNormal(shape, 0, Math.sqrt(gain / fanIn), 'float32', seed * 101 + i)),
      );
    });
    return new DigitClassifier(config, weights);
  }

  /** Wrap loaded tensors (copied into new variables; the caller keeps ownership of `tensors`). Shapes are checked. */
  static fromTensors(config: ClassifierConfig, tensors: Record<string, tf.Tensor>): DigitClassifier {
    validateConfig(config);
    const weights: Record<string, tf.Variable> = {};
    const expected = classifierWeightShapes(config);
    for (const [name, shape] of expected) {
      const t = tensors[name];
      if (!t) throw new ShapeMismatchError(`classifier weights: missing tensor '${name}' (expected shape [${shape}])`);
      if (t.shape.length !== shape.length || t.shape.some((s, k) => s !== shape[k])) {
        throw new ShapeMismatchError(`classifier weights: '${name}' has shape [${t.shape}], expected [${shape}]`);
      }
    }
    const extra = Object.keys(tensors).filter((k) => !expected.some(([n]) => n === k));
    if (extra.length > 0) throw new ShapeMismatchError(`classifier weights: unexpected tensors ${extra.join(', ')}`);
    for (const [name] of expected) {
      weights[name] = tf.tidy(() => tf.variable(tf.cast(tensors[name], 'float32')));
    }
    return new DigitClassifier(config, weights);
  }

  get variables(): tf.Variable[] {
    return classifierWeightShapes(this.config).map(([name]) => this.weights[name]);
  }

  parameterCount(): number {
    return this.variables.reduce((n, v) => n + v.size, 0);
  }

  /** Logits and features of images [B,28,28,1] in [-1,1]. Returns new tensors; call inside tf.tidy or dispose them. */
  forward(x: tf.Tensor4D, options: ForwardOptions = {}): ClassifierOutput {
    checkImages(x);
    const w = this.weights;
    const training = options.training ?? false;
    const seed = options.dropoutSeed ?? 0;
    const rate = this.config.dropout;
    const conv = (h: tf.Tensor4D, layer: string, stride: number, pad: 'same' | 'valid'): tf.Tensor4D =>
      tf.relu(tf.add<tf.Tensor4D>(tf.conv2d(h, w[`${layer}/kernel`] as tf.Tensor4D, stride, pad), w[`${layer}/bias`]));
    const dense = (h: tf.Tensor2D, layer: string): tf.Tensor2D =>
      tf.add(tf.matMul(h, w[`${layer}/kernel`] as tf.Tensor2D), w[`${layer}/bias`]);
    const drop = (h: tf.Tensor2D, s: number): tf.Tensor2D =>
      training && rate > 0 ? (tf.dropout(h, rate, undefined, s) as tf.Tensor2D) : h;
    return tf.tidy(() => {
      let h = tf.maxPool(conv(x, 'conv1', 1, 'same'), 2, 2, 'valid');
      h = tf.maxPool(conv(h, 'conv2', 1, 'same'), 2, 2, 'valid');
      h = conv(h, 'conv3', 2, 'valid');
      const flat = drop(tf.reshape(h, [h.shape[0], -1]), seed);
      const features = tf.relu(dense(flat, 'dense1'));
      const logits = dense(drop(features, seed + 1), 'dense2');
      return { logits, features };
    });
  }

  /** Mean softmax cross-entropy of labels (int32 [B]) under training-mode dropout. */
  loss(x: tf.Tensor4D, labels: tf.Tensor1D, dropoutSeed: number): tf.Scalar {
    if (labels.shape[0] !== x.shape[0]) {
      throw new ShapeMismatchError(`classifier loss: ${x.shape[0]} images but ${labels.shape[0]} labels`);
    }
    return tf.tidy(() => {
      const { logits } = this.forward(x, { training: true, dropoutSeed });
      const onehot = tf.oneHot(tf.cast(labels, 'int32'), this.config.numClasses);
      return tf.losses.softmaxCrossEntropy(onehot, logits) as tf.Scalar;
    });
  }

  /**
   * Predictions and features of many images, in batches (bounded memory), read back with awaited reads (the next batch
   * is queued before the previous one is read). `images` is [N,28,28,1] in [-1,1]. Leaves no tensors behind.
   */
  async classify(images: tf.Tensor4D, batchSize = 250): Promise<Classification> {
    checkImages(images);
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new InvalidArgumentError(`classify: batchSize must be a positive integer, got ${batchSize}`);
    }
    const n = images.shape[0];
    const d = this.config.hidden;
    const predictions = new Int32Array(n);
    const features = new Float32Array(n * d);
    for (let start = 0; start < n; start += batchSize) {
      const size = Math.min(batchSize, n - start);
      const [pred, feat] = tf.tidy(() => {
        const batch = tf.slice(images, [start, 0, 0, 0], [size, -1, -1, -1]);
        const out = this.forward(batch);
        return [tf.argMax(out.logits, 1), out.features];
      });
      try {
        const [p, f] = await Promise.all([pred.data(), feat.data()]);
        predictions.set(p as Int32Array, start);
        features.set(f as Float32Array, start * d);
      } finally {
        tf.dispose([pred, feat]);
      }
    }
    return { predictions, features, featureDim: d };
  }

  /** Fraction of `images` classified as `labels`. */
  async accuracy(images: tf.Tensor4D, labels: ArrayLike<number>, batchSize = 250): Promise<number> {
    if (labels.length !== images.shape[0]) {
      throw new ShapeMismatchError(`accuracy: ${images.shape[0]} images but ${labels.length} labels`);
    }
    return conditionalAccuracy((await this.classify(images, batchSize)).predictions, labels, this.config.numClasses).overall;
  }

  /** Weight values as new tensors keyed by name (for checkpoint writers; caller disposes). */
  snapshot(): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = {};
    for (const [name, v] of Object.entries(this.weights)) out[name] = tf.clone(v);
    return out;
  }

  dispose(): void {
    tf.dispose(Object.values(this.weights));
  }
}

function validateConfig(config: ClassifierConfig): void {
  const positive = (v: number) => Number.isInteger(v) && v > 0;
  if (!Array.isArray(config.channels) || config.channels.length !== 3 || !config.channels.every(positive)) {
    throw new InvalidArgumentError(`classifier config: channels must be 3 positive integers, got ${JSON.stringify(config.channels)}`);
  }
  if (!positive(config.hidden)) throw new InvalidArgumentError(`classifier config: hidden must be a positive integer, got ${config.hidden}`);
  if (!Number.isInteger(config.numClasses) || config.numClasses < 2) {
    throw new InvalidArgumentError(`classifier config: numClasses must be an integer ≥ 2, got ${config.numClasses}`);
  }
  if (!(config.dropout >= 0 && config.dropout < 1)) {
    throw new InvalidArgumentError(`classifier config: dropout must be in [0, 1), got ${config.dropout}`);
  }
}

function checkImages(x: tf.Tensor): void {
  if (x.rank !== 4 || x.shape[1] !== IMAGE_SIZE || x.shape[2] !== IMAGE_SIZE || x.shape[3] !== 1) {
    throw new ShapeMismatchError(`classifier: images must be [B, ${IMAGE_SIZE}, ${IMAGE_SIZE}, 1], got [${x.shape}]`);
  }
}
