/**
 * The sampling loop every scheduler shares — one async implementation for every backend: seeded noise, one tf.tidy per
 * step, the previous x disposed (tensor count stays flat), a NaN/Inf check of each model output and new x that stays on
 * the device (lib/finite's FiniteWatch, read back every `checkEvery` steps and at the end, naming the first bad step),
 * progress, trajectory snapshots, and a yield to the event loop after every step (live progress in notebooks).
 * A scheduler may ask for a second model evaluation within a step (correctionTimestep/correct: Heun) and keep history
 * between steps (reset: DPM-Solver++); model calls are counted.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, NonFiniteError, ShapeMismatchError } from '../errors';
import { FiniteWatch, finiteFlag, type FirstNonFinite } from '../finite';
import { seedStream } from '../random';
import { checkGuidance, classTensor, guidanceInputs, guidedDenoiser, guidedOutput } from './guidance';
import { isAsyncDenoiser } from './types';
import type { SampleResult, SamplerModel, SamplerOptions, Scheduler, StepOutput, TrajectoryPoint } from './types';

// Re-exported for the samplers that import it from here (langevin); its home is lib/random.ts.
export { seedStream };

/** Default steps between two reads of the on-device finite check. */
export const DEFAULT_CHECK_EVERY = 25;

export interface SamplerRun {
  model: SamplerModel;
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

/** Whether every entry of every x is finite (one awaited read of one scalar). */
export async function allFinite(...xs: tf.Tensor[]): Promise<boolean> {
  const flag = finiteFlag(...xs);
  try {
    return (await flag.data())[0] === 1;
  } finally {
    flag.dispose();
  }
}

/** Rejects with NonFiniteError if `x` holds a NaN or ±Infinity. */
export async function assertFinite(x: tf.Tensor, where: string): Promise<void> {
  if (!(await allFinite(x))) throw new NonFiniteError(`${where} contains NaN or ±Infinity; stopping`);
}

/** Samplers take the model's prediction type explicitly (see SamplerOptions.predictionType): a clear error if it is missing. */
export function requirePredictionType(opts: { predictionType?: string } | undefined): void {
  if (opts === undefined || opts.predictionType === undefined) {
    throw new InvalidArgumentError(
      "sampler options need predictionType ('epsilon' | 'x0' | 'v'): pass the model's own, e.g. { predictionType: model.predictionType }",
    );
  }
}

/** Steps between two reads of the finite check, validated; undefined when checks are off. */
export function finiteWatch(opts: { checkFinite?: boolean; checkEvery?: number }): FiniteWatch | undefined {
  return (opts.checkFinite ?? true) ? new FiniteWatch(opts.checkEvery ?? DEFAULT_CHECK_EVERY) : undefined;
}

/** Lets the event loop run (a notebook's live display, timers) between steps. */
export function nextTick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The model as the loop calls it: with guidance, with plain class labels, or unconditional. The result belongs to the
 * caller; a synchronous model runs inside tf.tidy, an AsyncDenoiser is awaited.
 */
export function conditioned(model: SamplerModel, opts: SamplerOptions): (x: tf.Tensor, t: tf.Tensor1D) => Promise<tf.Tensor> {
  if (!isAsyncDenoiser(model)) {
    const f = opts.guidance ? guidedDenoiser(model, opts.guidance) : model;
    const classes = opts.guidance ? undefined : opts.classes;
    return async (x, t) => tf.tidy(() => (classes === undefined ? f(x, t) : f(x, t, classTensor(classes, x.shape[0]))));
  }
  const g = opts.guidance;
  if (g) {
    const nullClass = checkGuidance(g);
    return async (x, t) => {
      const d = guidanceInputs(x, t, g, nullClass);
      let out: tf.Tensor;
      try {
        out = await model(d.x, d.t, d.classes);
      } finally {
        tf.dispose([d.x, d.t, d.classes]);
      }
      try {
        return guidedOutput(out, x.shape[0], g.weight);
      } finally {
        out.dispose();
      }
    };
  }
  const classes = opts.classes;
  if (classes === undefined) return (x, t) => model(x, t);
  return async (x, t) => {
    const c = classTensor(classes, x.shape[0]);
    try {
      return await model(x, t, c);
    } finally {
      if (c !== classes) c.dispose();
    }
  };
}

/** Runs a scheduler from seeded noise (or opts.initialNoise) to a sample. */
export async function runSampler(run: SamplerRun): Promise<SampleResult> {
  const { scheduler, shape, opts } = run;
  checkSampleShape(shape);
  const timesteps = [...scheduler.timesteps];
  const total = timesteps.length;
  const seeds = seedStream(opts.seed);
  const keep = snapshotRule(total, opts.returnTrajectory);
  const denoise = conditioned(run.model, opts);
  const b = shape[0];
  const initSeed = seeds.next();
  if (opts.initialNoise && opts.initialNoise.shape.join() !== shape.join()) {
    throw new ShapeMismatchError(`initialNoise has shape [${opts.initialNoise.shape}], expected [${shape}]`);
  }
  const watch = finiteWatch(opts);
  const check = async (): Promise<void> => {
    const bad: FirstNonFinite | undefined = await watch?.check();
    if (!bad) return;
    const what = bad.which === 'first' ? 'model output' : 'the sample';
    throw new NonFiniteError(`${what} at step ${bad.step + 1} of ${total} (t = ${timesteps[bad.step]}) contains NaN or ±Infinity; stopping`);
  };
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
      const evaluate = async (xAt: tf.Tensor, tv: number): Promise<tf.Tensor> => {
        const tT = tAt(tv);
        try {
          calls++;
          return await denoise(xAt, tT);
        } finally {
          tT.dispose();
        }
      };
      const out = await evaluate(xIn, t);
      let res: StepOutput;
      try {
        res = tf.tidy(() => {
          const noise = scheduler.needsNoise(t) ? tf.randomNormal(shape, 0, 1, 'float32', noiseSeed) : undefined;
          return scheduler.step(out, t, xIn, noise);
        });
      } catch (err) {
        out.dispose();
        throw err;
      }
      const outs = [out];
      try {
        const t2 = scheduler.correctionTimestep?.(t);
        if (t2 !== undefined && scheduler.correct) {
          const predictor = res;
          const out2 = await evaluate(predictor.prevSample, t2); // Heun: the model again at the predictor
          outs.push(out2);
          res = tf.tidy(() => scheduler.correct!(out2, t, xIn, predictor));
          if (res.prevSample !== predictor.prevSample) predictor.prevSample.dispose();
          if (res.predX0 !== predictor.predX0) predictor.predX0.dispose();
        }
        // checks the model output(s) and the new x (x̂0 = (x − …)/√ᾱ can overflow on its own); nothing is read here
        watch?.record(outs, res.prevSample);
      } finally {
        tf.dispose(outs);
      }
      x = res.prevSample;
      if (keep(i + 1)) trajectory.push({ step: i + 1, t: i + 1 < total ? timesteps[i + 1] : -1, x, predX0: res.predX0 });
      else res.predX0.dispose();
      if (!trajectory.some((p) => p.x === xIn)) xIn.dispose();
      opts.onStep?.({ step: i + 1, total, t, calls, totalCalls });
      if (watch?.due) await check();
      await nextTick();
    }
    if (watch?.unread) await check();
  } catch (err) {
    scheduler.reset?.();
    if (!trajectory.some((p) => p.x === x)) x.dispose();
    for (const p of trajectory) {
      p.x.dispose();
      p.predX0?.dispose();
    }
    throw err;
  } finally {
    watch?.dispose();
  }
  return { sample: x, trajectory, seed: seeds.seed, timesteps, modelCalls: calls };
}
