/**
 * One interface over the three generative models of notebook 10, so that each is sampled, judged and timed the same way:
 *   diffusion   a class-conditional U-Net sampled with DDIM (lib/samplers): `steps` network calls per image, twice
 *               that with classifier-free guidance; unconditional = the null class (no labels given)
 *   VAE         decoder mean of z ~ N(0, I): one network call per image
 *   GAN         generator of z ~ N(0, I): one network call per image
 * Every batch is seeded (seed·100003 + batch index + 1, as lib/eval's sampleForLabels without the + 1, which keeps tfjs'
 * "unseeded" 0 away): the same n, seed, classes and batch size give the same images.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors';
import { Gan } from '../models/gan';
import type { DiffusionModel } from '../models/types';
import { Vae } from '../models/vae';
import { ddimSample } from '../samplers/ddim';
import type { NoiseSchedule } from '../schedule';

export type ModelKind = 'unet' | 'vae' | 'gan';
export const MODEL_KINDS: readonly ModelKind[] = ['unet', 'vae', 'gan'];
export const MODEL_NAMES: Record<ModelKind, string> = { unet: 'diffusion U-Net', vae: 'VAE', gan: 'GAN' };

export interface SampleOptions {
  /** One class per image; absent: unconditional (the null class). */
  classes?: number[];
  /** Classifier-free guidance weight (diffusion only; lib's convention, 1 = plain conditional). Needs classes. */
  guidance?: number;
  /** Images per network batch (default 64). */
  batchSize?: number;
  /** Called after each batch with the images done so far. */
  onBatch?: (done: number) => void;
}

export interface Generator {
  readonly kind: ModelKind;
  readonly numClasses: number;
  /** What one image costs in network evaluations. */
  callsPerImage(guidance?: number): number;
  /** n images in [−1, 1] (the caller disposes them). */
  sample(n: number, seed: number, opts?: SampleOptions): Promise<tf.Tensor4D>;
}

function checkSample(g: Generator, n: number, opts: SampleOptions): number {
  if (!(Number.isInteger(n) && n > 0)) throw new InvalidArgumentError(`sample: n must be a positive integer, got ${n}`);
  const b = opts.batchSize ?? 64;
  if (!(Number.isInteger(b) && b > 0)) throw new InvalidArgumentError(`sample: batchSize must be a positive integer, got ${b}`);
  if (opts.classes) {
    if (opts.classes.length !== n) throw new InvalidArgumentError(`sample: ${opts.classes.length} classes for ${n} images`);
    if (g.numClasses === 0) throw new InvalidArgumentError('sample: classes given to an unconditional model');
    opts.classes.forEach((c, i) => {
      if (!(Number.isInteger(c) && c >= 0 && c < g.numClasses)) throw new InvalidArgumentError(`sample: class ${i} is ${c}, expected 0…${g.numClasses - 1}`);
    });
  }
  if (opts.guidance !== undefined && (g.kind !== 'unet' || !opts.classes)) {
    throw new InvalidArgumentError('sample: guidance needs the diffusion model and classes');
  }
  return b;
}

/** Batches of `n`, each made by `make(count, seed, classes)`, concatenated (intermediates disposed on failure too). */
async function batched(
  n: number, seed: number, opts: SampleOptions, batch: number,
  make: (count: number, seed: number, classes?: number[]) => Promise<tf.Tensor4D>,
): Promise<tf.Tensor4D> {
  const parts: tf.Tensor4D[] = [];
  try {
    for (let b = 0, done = 0; done < n; b++) {
      const count = Math.min(batch, n - done);
      parts.push(await make(count, seed * 100003 + b + 1, opts.classes?.slice(done, done + count)));
      done += count;
      opts.onBatch?.(done);
    }
    return parts.length === 1 ? parts.pop()! : (tf.concat(parts, 0) as tf.Tensor4D);
  } finally {
    tf.dispose(parts);
  }
}

/** The diffusion model sampled with DDIM in `steps` steps (x0 clipped to [−1, 1], as in lib/eval). */
export function diffusionGenerator(model: DiffusionModel, schedule: NoiseSchedule, steps: number): Generator {
  if (!(Number.isInteger(steps) && steps >= 1 && steps <= schedule.T)) throw new InvalidArgumentError(`DDIM steps must be an integer in 1…${schedule.T}, got ${steps}`);
  const cfg = model.config as { imageSize?: number; channels?: number };
  const shape = (b: number) => [b, cfg.imageSize ?? 28, cfg.imageSize ?? 28, cfg.channels ?? 1];
  const g: Generator = {
    kind: 'unet',
    numClasses: model.numClasses,
    callsPerImage: (guidance) => (guidance !== undefined && guidance !== 1 && guidance !== 0 ? 2 * steps : steps),
    sample: (n, seed, opts = {}) => batched(n, seed, opts, checkSample(g, n, opts), async (count, s, classes) => {
      const guided = classes && opts.guidance !== undefined;
      const r = await ddimSample((x, t, c) => model.apply(x, t, c), shape(count), schedule, {
        steps, seed: s, clipX0: true, predictionType: model.predictionType,
        classes: guided ? undefined : classes,
        guidance: guided ? { weight: opts.guidance!, classes: classes!, nullClass: model.numClasses } : undefined,
      });
      return r.sample as tf.Tensor4D;
    }),
  };
  return g;
}

/** A VAE (decoder mean of z ~ N(0, I)) or a GAN (G(z)): one network call per image. */
export function baselineGenerator(model: Vae | Gan): Generator {
  const g: Generator = {
    kind: model instanceof Vae ? 'vae' : 'gan',
    numClasses: model.numClasses,
    callsPerImage: () => 1,
    sample: (n, seed, opts = {}) => batched(n, seed, opts, checkSample(g, n, opts), async (count, s, classes) => {
      const c = classes ? tf.tensor1d(classes, 'int32') : undefined;
      try {
        return model.sample(count, s, c);
      } finally {
        c?.dispose();
      }
    }),
  };
  return g;
}

/** Labels 0,0,…,1,1,… with `perClass` of each of `numClasses` classes. */
export function classLabels(perClass: number, numClasses = 10): number[] {
  if (!(Number.isInteger(perClass) && perClass > 0)) throw new InvalidArgumentError(`perClass must be a positive integer, got ${perClass}`);
  return Array.from({ length: perClass * numClasses }, (_, i) => Math.floor(i / perClass));
}
