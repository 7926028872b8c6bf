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
  /** Called after every epoch, e.g. to print progress or test accuracy. */
  onEpoch?: (info: EpochInfo) => void;
}

export interface EpochInfo {
  epoch: number;
  steps: number;
  meanLoss: number;
  seconds: number;
}

/** Train `model` in place on `train`; returns the per-epoch history. */
export function trainClassifier(model: DigitClassifier, train: MnistSplit, options: ClassifierTrainOptions): EpochInfo[] {
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
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const start = Date.now();
      let lossSum = 0;
      let steps = 0;
      for (const { x, y } of train.batches(batchSize, { seed: seed * 1000 + epoch, dropLast: true })) {
        if (steps >= stepsPerEpoch) {
          tf.dispose([x, y]);
          break;
        }
        const n = x.shape[0];
        const shifted =
          maxShift > 0 ? tf.tensor4d(shiftImages(x.dataSync() as Float32Array, n, maxShift, rng), x.shape) : x;
        optimizer.setLearningRate(cosineLearningRate(step, totalSteps, learningRate));
        const dropoutSeed = Math.floor(rng() * 2 ** 31);
        const loss = optimizer.minimize(() => model.loss(shifted, y, dropoutSeed), true, model.variables);
        const value = loss ? loss.dataSync()[0] : NaN;
        tf.dispose([loss as tf.Tensor, x, y, shifted]);
        if (!Number.isFinite(value)) {
          throw new NonFiniteError(`classifier training: loss is ${value} at epoch ${epoch}, step ${steps}`);
        }
        lossSum += value;
        steps++;
        step++;
      }
      const info = { epoch, steps, meanLoss: lossSum / steps, seconds: (Date.now() - start) / 1000 };
      history.push(info);
      options.onEpoch?.(info);
    }
  } finally {
    optimizer.dispose();
  }
  return history;
}
