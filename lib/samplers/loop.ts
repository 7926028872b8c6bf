/**
 * The sampling loop every scheduler shares: seeded noise, one tf.tidy per step, the previous x disposed (tensor count
 * stays flat), a NaN/Inf check of each model output and new x, progress, trajectory snapshots. A generator yields after each
 * step, so the sync and async drivers run the same code. A scheduler may ask for a second model evaluation within a step
 * (correctionTimestep/correct: Heun) and keep history between steps (reset: DPM-Solver++); model calls are counted.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, NonFiniteError, ShapeMismatchError } from '../errors';
import { seedStream } from '../random';
import { classTensor, guidedDenoiser } from './guidance';
import type { Denoiser, SampleResult, SamplerOptions, Scheduler, TrajectoryPoint } from './types';

// Re-exported for the samplers that import it from here (langevin); its home is lib/random.ts.
export { seedStream };

export interface SamplerRun {
  model: Denoiser;
  scheduler: Scheduler;
  shape: number[];
  opts: SamplerOptions;
}

export function checkSampleShape(shape: number[]): void {
  if (!Array.isArray(shape) || shape.length < 2 || shape.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new InvalidArgumentError(`sample shape must be [B, …] of positive integers with rank ≥ 2, got [${shape}]`);
  }
}

/** Which step counts (0 … total) to snapshot. */
export function snapshotRule(total: number, rule: boolean | number | undefined): (k: number) => boolean {
  if (rule === undefined || rule === false) return () => false;
  if (rule === true) {
    const keep = new Set<number>();
    for (let j = 0; j <= 9; j++) keep.add(Math.round((j * total) / 9));
    return (k) => keep.has(k);
  }
  if (!Number.isInteger(rule) || rule <= 0) throw new InvalidArgumentError(`returnTrajectory must be true, false or a positive integer k, got ${rule}`);
  return (k) => k % rule === 0 || k === total;
}

/** Whether every entry is finite, with one scalar read-back (x·0 sums to 0 exactly when all entries are finite). */
export function allFinite(...xs: tf.Tensor[]): boolean {
  const s = tf.tidy(() => tf.addN(xs.map((x) => tf.sum(tf.mul(x, 0)))));
  const v = s.dataSync()[0];
  s.dispose();
  return Number.isFinite(v);
}

/** Throws NonFiniteError if `x` holds a NaN or ±Infinity. */
export function assertFinite(x: tf.Tensor, where: string): void {
  if (!allFinite(x)) throw new NonFiniteError(`${where} contains NaN or ±Infinity; stopping`);
}

/** The model as the loop calls it: with guidance, with plain class labels, or unconditional. */
/** Samplers take the model's prediction type explicitly (see SamplerOptions.predictionType): a clear error if it is missing. */
export function requirePredictionType(opts: { predictionType?: string } | undefined): void {
  if (opts === undefined || opts.predictionType === undefined) {
    throw new InvalidArgumentError(
      "sampler options need predictionType ('epsilon' | 'x0' | 'v'): pass the model's own, e.g. { predictionType: model.predictionType }",
    );
  }
}

export function conditioned(model: Denoiser, opts: SamplerOptions): (x: tf.Tensor, t: tf.Tensor1D) => tf.Tensor {
  if (opts.guidance) return guidedDenoiser(model, opts.guidance);
  const classes = opts.classes;
  if (classes === undefined) return (x, t) => model(x, t);
  return (x, t) => tf.tidy(() => model(x, t, classTensor(classes, x.shape[0])));
}

function* sampleSteps(run: SamplerRun): Generator<void, SampleResult> {
  const { scheduler, shape, opts } = run;
  checkSampleShape(shape);
  const timesteps = [...scheduler.timesteps];
  const total = timesteps.length;
  const seeds = seedStream(opts.seed);
  const keep = snapshotRule(total, opts.returnTrajectory);
  const denoise = conditioned(run.model, opts);
  const check = opts.checkFinite ?? true;
  const b = shape[0];
  const initSeed = seeds.next();
  if (opts.initialNoise && opts.initialNoise.shape.join() !== shape.join()) {
    throw new ShapeMismatchError(`initialNoise has shape [${opts.initialNoise.shape}], expected [${shape}]`);
  }
  let x = opts.initialNoise ? opts.initialNoise.clone() : tf.randomNormal(shape, 0, 1, 'float32', initSeed);
  const trajectory: TrajectoryPoint[] = [];
  // a non-integer timestep (Karras σ samplers) reaches the model as float32; the course's time embeddings take any real t
  const tAt = (t: number) => tf.fill([b], t, Number.isInteger(t) ? 'int32' : 'float32') as tf.Tensor1D;
  const totalCalls = timesteps.reduce((n, t) => n + (scheduler.correctionTimestep?.(t) === undefined ? 1 : 2), 0);
  let calls = 0;
  try {
    if (keep(0)) trajectory.push({ step: 0, t: timesteps[0], x });
    for (let i = 0; i < total; i++) {
      const t = timesteps[i];
      const noiseSeed = seeds.next(); // drawn every step so the noise of step i does not depend on earlier steps' needs
      const xIn = x;
      const { prevSample, predX0 } = tf.tidy(() => {
        const out = denoise(xIn, tAt(t));
        const noise = scheduler.needsNoise(t) ? tf.randomNormal(shape, 0, 1, 'float32', noiseSeed) : undefined;
        let res = scheduler.step(out, t, xIn, noise);
        calls++;
        const outs = [out];
        const t2 = scheduler.correctionTimestep?.(t);
        if (t2 !== undefined && scheduler.correct) {
          const out2 = denoise(res.prevSample, tAt(t2)); // Heun: the model again at the predictor
          res = scheduler.correct(out2, t, xIn, res);
          calls++;
          outs.push(out2);
        }
        // one read-back checks the model output(s) and the new x (x̂0 = (x − …)/√ᾱ can overflow on its own)
        if (check && !allFinite(...outs, res.prevSample)) {
          const what = allFinite(...outs) ? 'the sample' : 'model output';
          throw new NonFiniteError(`${what} at step ${i + 1} of ${total} (t = ${t}) contains NaN or ±Infinity; stopping`);
        }
        return res;
      });
      x = prevSample;
      if (keep(i + 1)) trajectory.push({ step: i + 1, t: i + 1 < total ? timesteps[i + 1] : -1, x, predX0 });
      else predX0.dispose();
      if (!trajectory.some((p) => p.x === xIn)) xIn.dispose();
      opts.onStep?.({ step: i + 1, total, t, calls, totalCalls });
      yield;
    }
  } catch (err) {
    scheduler.reset?.();
    if (!trajectory.some((p) => p.x === x)) x.dispose();
    for (const p of trajectory) {
      p.x.dispose();
      p.predX0?.dispose();
    }
    throw err;
  }
  return { sample: x, trajectory, seed: seeds.seed, timesteps, modelCalls: calls };
}

/** Drains a step generator synchronously. */
export function drain<R>(gen: Generator<void, R>): R {
  for (;;) {
    const r = gen.next();
    if (r.done) return r.value;
  }
}

/** Drains a step generator, yielding to the event loop after each step. */
export async function drainAsync<R>(gen: Generator<void, R>): Promise<R> {
  for (;;) {
    const r = gen.next();
    if (r.done) return r.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

export function runSampler(run: SamplerRun): SampleResult {
  return drain(sampleSteps(run));
}

export function runSamplerAsync(run: SamplerRun): Promise<SampleResult> {
  return drainAsync(sampleSteps(run));
}
