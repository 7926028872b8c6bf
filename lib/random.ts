/**
 * Seeded pseudo-random numbers in plain JS, for data shuffling, splits and toy data sets.
 * (Tensor noise uses tf.randomNormal(shape, 0, 1, 'float32', seed), which is backend-independent.)
 */
import { InvalidArgumentError } from './errors';

export type Rng = () => number;

/** mulberry32: small, fast, good enough for shuffles and toy data; returns floats in [0, 1). */
export function makeRng(seed: number): Rng {
  let a = (Math.floor(seed) >>> 0) || 0x9e3779b9;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal sample (Box–Muller). */
export function normal(rng: Rng): number {
  let u = 0;
  while (u <= Number.EPSILON) u = rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** In-place Fisher–Yates shuffle. */
export function shuffle<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/** One run's seed and the 32-bit seeds derived from it, one per draw (noise of each step, timesteps of a loss …). */
export interface SeedStream {
  /** The seed the stream started from: the one given, or the random one chosen (report it to reproduce a run). */
  seed: number;
  /** The next seed, an integer in [0, 2^32). */
  next: () => number;
}

/** A stream of 32-bit seeds from one seed (a random one when omitted), so that one number reproduces every draw. */
export function seedStream(seed?: number): SeedStream {
  const s = seed ?? Math.floor(Math.random() * 2 ** 32);
  if (typeof s !== 'number' || !Number.isFinite(s)) throw new InvalidArgumentError(`seed must be a finite number, got ${seed}`);
  const rng = makeRng(s);
  return { seed: s, next: () => Math.floor(rng() * 2 ** 32) };
}
