/**
 * Annealed Langevin dynamics for a noise-conditional score model (Song & Ermon 2019, Algorithm 1):
 * for σ_1 > … > σ_L, step size α_i = ε·σ_i²/σ_L², repeat K times  x ← x + (α_i/2)·s(x, σ_i) + √α_i·z.
 * Starts from N(0, σ_1²·I); optionally ends with one denoising step x + σ_L²·s(x, σ_L) (Tweedie's formula).
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, NonFiniteError, ShapeMismatchError } from '../errors';
import { checkSampleShape, finiteWatch, nextTick, snapshotRule } from './loop';
import { seedStream } from '../random';
import type { Progress, SampleResult, ScoreModel, TrajectoryPoint } from './types';


/** `levels` noise levels from sigmaMax down to sigmaMin, evenly spaced in log σ. */
export function geometricSigmas(sigmaMax: number, sigmaMin: number, levels: number): number[] {
  if (!(sigmaMax > sigmaMin && sigmaMin > 0)) throw new InvalidArgumentError(`need sigmaMax > sigmaMin > 0, got ${sigmaMax}, ${sigmaMin}`);
  if (!Number.isInteger(levels) || levels < 2) throw new InvalidArgumentError(`levels must be an integer ≥ 2, got ${levels}`);
  const r = Math.log(sigmaMin / sigmaMax) / (levels - 1);
  return Array.from({ length: levels }, (_, i) => (i === levels - 1 ? sigmaMin : sigmaMax * Math.exp(i * r)));
}

export interface LangevinOptions {
  /** Strictly decreasing positive noise levels (see geometricSigmas). */
  sigmas: number[];
  /** Langevin steps K per level (default 100). */
  stepsPerLevel?: number;
  /** ε: the step size at the smallest σ (default 2e-5, Song & Ermon's value for images). */
  stepSize?: number;
  /** Finish with x + σ_L²·s(x, σ_L) (default true). */
  denoiseFinal?: boolean;
  seed?: number;
  /** Progress.t is the noise level index (0 … L−1). */
  onStep?: (p: Progress) => void;
  /** As in SamplerOptions, counted in Langevin steps; TrajectoryPoint.t is the level index. */
  returnTrajectory?: boolean | number;
  initialNoise?: tf.Tensor;
  /** As in SamplerOptions: an on-device check of the score and x, read every `checkEvery` steps (default 25). */
  checkFinite?: boolean;
  checkEvery?: number;
}

function checkOptions(o: LangevinOptions): { K: number; eps: number } {
  const s = o.sigmas;
  if (!Array.isArray(s) || s.length === 0) throw new InvalidArgumentError('sigmas must be a non-empty array');
  s.forEach((v, i) => {
    if (!(v > 0) || !Number.isFinite(v)) throw new InvalidArgumentError(`sigmas[${i}] must be a positive finite number, got ${v}`);
    if (i > 0 && v >= s[i - 1]) throw new InvalidArgumentError(`sigmas must be strictly decreasing, got ${s[i - 1]} then ${v}`);
  });
  const K = o.stepsPerLevel ?? 100;
  if (!Number.isInteger(K) || K <= 0) throw new InvalidArgumentError(`stepsPerLevel must be a positive integer, got ${K}`);
  const eps = o.stepSize ?? 2e-5;
  if (!(eps > 0) || !Number.isFinite(eps)) throw new InvalidArgumentError(`stepSize must be a positive number, got ${eps}`);
  return { K, eps };
}

/**
 * Annealed Langevin sampling of `shape`. Async like the other samplers: one tf.tidy per step, a yield to the event loop
 * after each, and a finite check of the score and the new x that is read back every opts.checkEvery steps.
 */
export async function annealedLangevin(score: ScoreModel, shape: number[], o: LangevinOptions): Promise<SampleResult> {
  checkSampleShape(shape);
  const { K, eps } = checkOptions(o);
  const sigmas = o.sigmas;
  const L = sigmas.length;
  const total = L * K;
  const seeds = seedStream(o.seed);
  const keep = snapshotRule(total, o.returnTrajectory);
  const b = shape[0];
  const initSeed = seeds.next();
  if (o.initialNoise && o.initialNoise.shape.join() !== shape.join()) {
    throw new ShapeMismatchError(`initialNoise has shape [${o.initialNoise.shape}], expected [${shape}]`);
  }
  const watch = finiteWatch(o);
  /** Steps 0 … total − 1 are Langevin steps; step `total` is the final denoising step. */
  const where = (k: number) => {
    if (k >= total) return `the final denoising step (σ = ${sigmas[L - 1]})`;
    const level = Math.floor(k / K);
    return `Langevin step ${k + 1} of ${total} (level ${level}, σ = ${sigmas[level]})`;
  };
  const check = async (): Promise<void> => {
    const bad = await watch?.check();
    if (!bad) return;
    // too large a step size makes x diverge with a finite score
    const what = bad.which === 'first' ? 'the score' : 'x';
    throw new NonFiniteError(`${what} at ${where(bad.step)} contains NaN or ±Infinity; stopping (a smaller stepSize may help)`);
  };
  let x = o.initialNoise ? o.initialNoise.clone() : tf.tidy(() => tf.mul(tf.randomNormal(shape, 0, 1, 'float32', initSeed), sigmas[0]));
  const trajectory: TrajectoryPoint[] = [];
  const scoreAt = (xIn: tf.Tensor, level: number) => score(xIn, tf.fill([b], sigmas[level]) as tf.Tensor1D, sigmas[level]);
  try {
    if (keep(0)) trajectory.push({ step: 0, t: 0, x });
    let k = 0;
    for (let level = 0; level < L; level++) {
      const alpha = (eps * sigmas[level] ** 2) / sigmas[L - 1] ** 2;
      for (let j = 0; j < K; j++) {
        const seed = seeds.next();
        const xIn = x;
        x = tf.tidy(() => {
          const s = scoreAt(xIn, level);
          const xNew = tf.add(tf.add(xIn, tf.mul(s, alpha / 2)), tf.mul(tf.randomNormal(shape, 0, 1, 'float32', seed), Math.sqrt(alpha)));
          watch?.record(s, xNew);
          return xNew;
        });
        k++;
        if (keep(k)) trajectory.push({ step: k, t: level, x });
        if (!trajectory.some((p) => p.x === xIn)) xIn.dispose();
        o.onStep?.({ step: k, total, t: level });
        if (watch?.due) await check();
        await nextTick();
      }
    }
    if (o.denoiseFinal ?? true) {
      const xIn = x;
      x = tf.tidy(() => {
        const s = scoreAt(xIn, L - 1);
        const xNew = tf.add(xIn, tf.mul(s, sigmas[L - 1] ** 2));
        watch?.record(s, xNew);
        return xNew;
      });
      if (!trajectory.some((p) => p.x === xIn)) xIn.dispose();
    }
    if (watch?.unread) await check();
  } catch (err) {
    if (!trajectory.some((p) => p.x === x)) x.dispose();
    for (const p of trajectory) p.x.dispose();
    throw err;
  } finally {
    watch?.dispose();
  }
  return { sample: x, trajectory, seed: seeds.seed, timesteps: [] };
}
