/**
 * Training of the digit classifier: Adam with a cosine-decayed learning rate, dropout, and random shifts of up to
 * ±maxShift pixels (9,000 training digits are few; shifts are the augmentation that keeps MNIST labels valid).
 * Seeded: the batch order, the shifts and the dropout masks all derive from `seed`.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, NonFiniteError, ShapeMismatchError } from '../errors';
import { makeRng, Rng } from '../random';
import type { MnistSplit } from '../data/mnist';
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
  /** Stop each epoch after this many batches (fast mode / tests); default: the whole split. */
  maxStepsPerEpoch?: number;
  /** Called (and awaited) after every epoch, e.g. to print progress or test accuracy. */
  onEpoch?: (info: EpochInfo) => void | Promise<void>;
}

export interface EpochInfo {
  epoch: number;
  steps: number;
  meanLoss: number;
  seconds: number;
}

/**
 * Train `model` in place on `train`; returns the per-epoch history. The step losses stay on the device and are read
 * back once per epoch (a non-finite one then throws NonFiniteError naming its epoch and step).
 */
export async function trainClassifier(model: DigitClassifier, train: MnistSplit, options: ClassifierTrainOptions): Promise<EpochInfo[]> {
  const { epochs, batchSize, learningRate, seed, maxShift } = options;
  if (!Number.isInteger(epochs) || epochs < 1) throw new InvalidArgumentError(`trainClassifier: epochs must be a positive integer, got ${epochs}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InvalidArgumentError(`trainClassifier: batchSize must be a positive integer, got ${batchSize}`);
  if (!(learningRate > 0)) throw new InvalidArgumentError(`trainClassifier: learningRate must be > 0, got ${learningRate}`);
  const stepsPerEpoch = Math.min(Math.floor(train.size / batchSize), options.maxStepsPerEpoch ?? Infinity);
  if (stepsPerEpoch < 1) throw new InvalidArgumentError(`trainClassifier: batchSize ${batchSize} exceeds the ${train.size} training digits`);
  const totalSteps = epochs * stepsPerEpoch;
  const optimizer = new ScheduledAdam(learningRate, 0.9, 0.999, 1e-7);
  const rng = makeRng(seed);
  const history: EpochInfo[] = [];
  let step = 0;
  const losses: tf.Scalar[] = [];
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
          // the shift is drawn and applied on the JS side: the pixels come from JS arrays, so this read is an upload's echo
          if (maxShift > 0) shifted = tf.tensor4d(shiftImages((await x.data()) as Float32Array, n, maxShift, rng), x.shape);
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
      const info = { epoch, steps: values.length, meanLoss: lossSum / values.length, seconds: (Date.now() - start) / 1000 };
      history.push(info);
      await options.onEpoch?.(info);
    }
  } finally {
    tf.dispose(losses);
    optimizer.dispose();
  }
  return history;
}
