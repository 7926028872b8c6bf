/**
 * Training of the image classifier that judges samples: Adam with a cosine-decayed learning rate, dropout, and label-
 * preserving augmentation — random shifts of up to ±maxShift pixels (digits and articles), and for Fashion-MNIST random
 * horizontal flips (a mirrored shoe is still a shoe; a mirrored 2 is not a 2, so never for digits).
 * With a validation split (lib/data's validationSplit) it watches validation accuracy after every epoch, keeps the
 * weights of the best epoch and can stop early; the test split stays untouched until the final figure.
 * Seeded: the batch order, the augmentation and the dropout masks all derive from `seed`.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, NonFiniteError, ShapeMismatchError } from '../errors';
import { makeRng, Rng } from '../random';
import type { ImageSplit } from '../data/datasets';
import { DigitClassifier, IMAGE_SIZE } from './classifier';

/**
 * Each image of `pixels` ([count, 28, 28, 1] row-major) moved by a random whole-pixel offset in [−maxShift, maxShift]²;
 * uncovered pixels get `fill` (−1 = the black background in [-1, 1]). Returns a new array.
 */
export function shiftImages(pixels: Float32Array, count: number, maxShift: number, rng: Rng, fill = -1): Float32Array {
  const size = IMAGE_SIZE;
  if (pixels.length !== count * size * size) {
    throw new ShapeMismatchError(`shiftImages: ${pixels.length} values for ${count} images of ${size}×${size}`);
  }
  if (!Number.isInteger(maxShift) || maxShift < 0 || maxShift >= size) {
    throw new InvalidArgumentError(`shiftImages: maxShift must be an integer in 0…${size - 1}, got ${maxShift}`);
  }
  const out = new Float32Array(pixels.length).fill(fill);
  for (let b = 0; b < count; b++) {
    const dy = Math.floor(rng() * (2 * maxShift + 1)) - maxShift;
    const dx = Math.floor(rng() * (2 * maxShift + 1)) - maxShift;
    const base = b * size * size;
    for (let r = Math.max(0, dy); r < Math.min(size, size + dy); r++) {
      for (let c = Math.max(0, dx); c < Math.min(size, size + dx); c++) {
        out[base + r * size + c] = pixels[base + (r - dy) * size + (c - dx)];
      }
    }
  }
  return out;
}

/** Each image of `pixels` ([count, 28, 28, 1] row-major) mirrored left ↔ right with probability ½. Returns a new array. */
export function flipImages(pixels: Float32Array, count: number, rng: Rng): Float32Array {
  const size = IMAGE_SIZE;
  if (pixels.length !== count * size * size) {
    throw new ShapeMismatchError(`flipImages: ${pixels.length} values for ${count} images of ${size}×${size}`);
  }
  const out = new Float32Array(pixels);
  for (let b = 0; b < count; b++) {
    if (rng() < 0.5) continue;
    const base = b * size * size;
    for (let r = 0; r < size; r++) {
      for (let c = 0; c < size; c++) out[base + r * size + c] = pixels[base + r * size + (size - 1 - c)];
    }
  }
  return out;
}

/** Adam whose learning rate can be changed between steps (tfjs keeps it in a protected field). */
class ScheduledAdam extends tf.AdamOptimizer {
  setLearningRate(lr: number): void {
    this.learningRate = lr;
  }
}

/** Cosine decay from `peak` at step 0 to `peak·floorFraction` at the last step. */
export function cosineLearningRate(step: number, totalSteps: number, peak: number, floorFraction = 0.02): number {
  const progress = totalSteps <= 1 ? 0 : Math.min(1, step / (totalSteps - 1));
  return peak * (floorFraction + (1 - floorFraction) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

export interface ClassifierTrainOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  /** Random shift augmentation in pixels (0 = off). */
  maxShift: number;
  /** Random horizontal flips (default false; only for data whose labels survive a mirror, e.g. Fashion-MNIST). */
  flip?: boolean;
  /**
   * Held-out examples (never trained on) scored after every epoch: the weights of the epoch with the best validation
   * accuracy are kept (restored at the end) and `patience` applies.
   */
  validation?: ImageSplit;
  /** Stop after this many epochs without a better validation accuracy (default: never; needs `validation`). */
  patience?: number;
  /** Stop each epoch after this many batches (fast mode / tests); default: the whole split. */
  maxStepsPerEpoch?: number;
  /** Called (and awaited) after every epoch, e.g. to print progress or test accuracy. */
  onEpoch?: (info: EpochInfo) => void | Promise<void>;
}

export interface EpochInfo {
  epoch: number;
  steps: number;
  meanLoss: number;
  /** Training time of the epoch (the validation pass not included). */
  seconds: number;
  /** Accuracy on options.validation after this epoch. */
  validationAccuracy?: number;
  /** With validation: true for the epoch whose weights the model holds at the end (the best; the first of ties). */
  selected?: boolean;
}

/**
 * Train `model` in place on `train`; returns the per-epoch history. The step losses stay on the device and are read
 * back once per epoch (a non-finite one then throws NonFiniteError naming its epoch and step). With `validation`, the
 * model ends with the weights of its best validation epoch (marked `selected`), and `patience` may end the run early.
 */
export async function trainClassifier(model: DigitClassifier, train: ImageSplit, options: ClassifierTrainOptions): Promise<EpochInfo[]> {
  const { epochs, batchSize, learningRate, seed, maxShift, validation } = options;
  const flip = options.flip ?? false;
  const patience = options.patience ?? Infinity;
  if (!Number.isInteger(epochs) || epochs < 1) throw new InvalidArgumentError(`trainClassifier: epochs must be a positive integer, got ${epochs}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InvalidArgumentError(`trainClassifier: batchSize must be a positive integer, got ${batchSize}`);
  if (!(learningRate > 0)) throw new InvalidArgumentError(`trainClassifier: learningRate must be > 0, got ${learningRate}`);
  if (!(patience === Infinity || (Number.isInteger(patience) && patience >= 1))) {
    throw new InvalidArgumentError(`trainClassifier: patience must be a positive integer, got ${patience}`);
  }
  if (options.patience !== undefined && !validation) throw new InvalidArgumentError('trainClassifier: patience needs a validation split');
  const stepsPerEpoch = Math.min(Math.floor(train.size / batchSize), options.maxStepsPerEpoch ?? Infinity);
  if (stepsPerEpoch < 1) throw new InvalidArgumentError(`trainClassifier: batchSize ${batchSize} exceeds the ${train.size} training digits`);
  const totalSteps = epochs * stepsPerEpoch;
  const optimizer = new ScheduledAdam(learningRate, 0.9, 0.999, 1e-7);
  const rng = makeRng(seed);
  const history: EpochInfo[] = [];
  let step = 0;
  const losses: tf.Scalar[] = [];
  // the validation images are built once; the best epoch's weights are kept as copies
  const valBatch = validation ? validation.batch(Array.from({ length: validation.size }, (_, i) => i)) : undefined;
  const valLabels = validation ? Array.from(validation.labels) : [];
  let best: { accuracy: number; epoch: number; weights: Record<string, tf.Tensor> } | undefined;
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const start = Date.now();
      for (const { x, y } of train.batches(batchSize, { seed: seed * 1000 + epoch, dropLast: true })) {
        if (losses.length >= stepsPerEpoch) {
          tf.dispose([x, y]);
          break;
        }
        const n = x.shape[0];
        let shifted = x;
        try {
          // the augmentation is drawn and applied on the JS side: the pixels come from JS arrays, so this read is an upload's echo
          if (maxShift > 0 || flip) {
            let pixels = (await x.data()) as Float32Array;
            if (maxShift > 0) pixels = shiftImages(pixels, n, maxShift, rng);
            if (flip) pixels = flipImages(pixels, n, rng);
            shifted = tf.tensor4d(pixels, x.shape);
          }
          optimizer.setLearningRate(cosineLearningRate(step, totalSteps, learningRate));
          const dropoutSeed = Math.floor(rng() * 2 ** 31);
          const loss = optimizer.minimize(() => model.loss(shifted, y, dropoutSeed), true, model.variables);
          losses.push(loss ?? tf.scalar(NaN));
        } finally {
          tf.dispose(shifted === x ? [x, y] : [x, y, shifted]);
        }
        step++;
      }
      const all = tf.stack(losses);
      tf.dispose(losses.splice(0));
      let values: Float32Array;
      try {
        values = (await all.data()) as Float32Array;
      } finally {
        all.dispose();
      }
      const bad = values.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw new NonFiniteError(`classifier training: loss is ${values[bad]} at epoch ${epoch}, step ${bad}`);
      const lossSum = values.reduce((a, b) => a + b, 0);
      const info: EpochInfo = { epoch, steps: values.length, meanLoss: lossSum / values.length, seconds: (Date.now() - start) / 1000 };
      if (valBatch) {
        const accuracy = await model.accuracy(valBatch.x, valLabels);
        info.validationAccuracy = accuracy;
        if (!best || accuracy > best.accuracy) {
          if (best) tf.dispose(Object.values(best.weights));
          best = { accuracy, epoch, weights: model.snapshot() };
        }
      }
      history.push(info);
      await options.onEpoch?.(info);
      if (best && epoch - best.epoch >= patience) break;
    }
    if (best) {
      const kept = best.weights;
      for (const [name, v] of Object.entries(model.weights)) v.assign(kept[name]);
      history[best.epoch].selected = true;
    }
  } finally {
    tf.dispose(losses);
    if (best) tf.dispose(Object.values(best.weights));
    if (valBatch) tf.dispose([valBatch.x, valBatch.y]);
    optimizer.dispose();
  }
  return history;
}
