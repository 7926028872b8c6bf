/**
 * Exercises of notebook 04 · DDPM on 2-D data. References: lib/losses.ts (perExampleMse, the ε-loss's per-example
 * term) and lib/samplers/ddpm.ts (DDPMScheduler.step, the ancestral step with σ² = β̃_t).
 */
import * as tf from '@tensorflow/tfjs';
import { perExampleMse } from '../losses';
import { DDPMScheduler } from '../samplers/ddpm';
import { NoiseSchedule } from '../schedule';
import { caseSchedules, pickInteriorTimestep } from './01-forward-process';
import type { CheckCase, ExerciseSpec, Value } from './types';

const asT = (v: Value) => v as tf.Tensor;
const nums = (v: Value) => v as number[];
const pts = (n: number, seed: number) => tf.randomNormal([n, 2], 0, 1, 'float32', seed) as tf.Tensor2D;

// ------------------------------------------------------------------------------------------------ 04-eps-loss

export const epsLossSpec: ExerciseSpec = {
  id: '04-eps-loss',
  notebook: '04-ddpm-2d',
  functionName: 'epsLoss',
  title: 'The DDPM training loss, per example',
  cases(seed: number): CheckCase[] {
    return [
      { name: '2-D points, batch 5', args: [pts(5, seed * 10 + 1), pts(5, seed * 10 + 2)] },
      { name: 'images [3, 4, 4, 1]', args: [tf.randomNormal([3, 4, 4, 1], 0, 1, 'float32', seed * 10 + 3), tf.randomNormal([3, 4, 4, 1], 0, 1, 'float32', seed * 10 + 4)] },
      { name: 'a perfect prediction (loss 0)', args: [pts(2, seed * 10 + 5), pts(2, seed * 10 + 5)] },
    ];
  },
  reference: (pred, noise) => perExampleMse(asT(pred), asT(noise)),
  tolerance: { atol: 1e-6, rtol: 1e-5 },
  hint: 'Square the difference ε̂ − ε and average over every axis except the first (the batch): the result has shape [B].',
  wrong: {
    meanOverEverything: (p, e) => tf.tidy(() => tf.mean(tf.square(tf.sub(asT(p), asT(e))))),
    sumNotMean: (p, e) => tf.tidy(() => tf.sum(tf.square(tf.sub(asT(p), asT(e))).reshape([asT(p).shape[0], -1]), 1)),
    absoluteError: (p, e) => tf.tidy(() => tf.mean(tf.abs(tf.sub(asT(p), asT(e))).reshape([asT(p).shape[0], -1]), 1)),
  },
};

// ------------------------------------------------------------------------------------------------ 04-ancestral-step

function ancestralRef(xt: Value, eps: Value, t: Value, betas: Value, z: Value): Value {
  const out = new DDPMScheduler(NoiseSchedule.fromBetas(nums(betas))).step(asT(eps), t as number, asT(xt), asT(z));
  out.predX0.dispose();
  return out.prevSample;
}

/** The step written out with a given σ_t (for the known-wrong variants). */
function manualStep(xt: Value, eps: Value, t: number, betas: number[], z: Value, o: { sigma2?: 'beta'; sign?: number; alphaPower?: number }): tf.Tensor {
  const s = NoiseSchedule.fromBetas(betas);
  const beta = s.betas[t];
  const ab = s.alphasCumprod[t];
  const sigma2 = o.sigma2 === 'beta' ? beta : s.posteriorVariance[t];
  const alphaPower = o.alphaPower ?? 0.5;
  return tf.tidy(() => {
    const mean = tf.div(tf.sub(asT(xt), tf.mul(asT(eps), (o.sign ?? 1) * beta / Math.sqrt(1 - ab))), Math.pow(1 - beta, alphaPower));
    return tf.add(mean, tf.mul(asT(z), Math.sqrt(sigma2)));
  });
}

export const ancestralStepSpec: ExerciseSpec = {
  id: '04-ancestral-step',
  notebook: '04-ddpm-2d',
  functionName: 'ancestralStep',
  title: 'One DDPM ancestral step from a noise prediction',
  cases(seed: number): CheckCase[] {
    const cases: CheckCase[] = [];
    caseSchedules().forEach(({ name, schedule }, k) => {
      const betas = Array.from(schedule.betas);
      [pickInteriorTimestep(seed, schedule.T, k + 11), schedule.T - 1, 0].forEach((t, j) => {
        const s = seed * 100 + 80 + k * 10 + j * 3;
        const label = t === 0 ? ' (last step: no noise)' : t === schedule.T - 1 ? ' (first step, from pure noise)' : '';
        cases.push({ name: `${name}, t = ${t}${label}`, args: [pts(4, s), pts(4, s + 1), t, betas, pts(4, s + 2)] });
      });
    });
    return cases;
  },
  reference: ancestralRef,
  tolerance: { atol: 1e-4, rtol: 1e-4 },
  // ᾱ and β̃ from the betas are helpers here (the exercise is the step): NoiseSchedule may be imported, DDPMScheduler not
  libAllowed: ['schedule'],
  hint: 'x_{t−1} = (x_t − β_t/√(1−ᾱ_t)·ε̂)/√α_t + σ_t·z with σ_t² = β̃_t = β_t(1−ᾱ_{t−1})/(1−ᾱ_t) (ᾱ_{−1} = 1, so no noise at t = 0).',
  wrong: {
    betaAsVariance: (x, e, t, b, z) => manualStep(x, e, t as number, nums(b), z, { sigma2: 'beta' }),
    wrongSign: (x, e, t, b, z) => manualStep(x, e, t as number, nums(b), z, { sign: -1 }),
    missingSqrtOnAlpha: (x, e, t, b, z) => manualStep(x, e, t as number, nums(b), z, { alphaPower: 1 }),
    offByOne: (x, e, t, b, z) => ancestralRef(x, e, Math.min((t as number) + 1, nums(b).length - 1), b, z),
  },
};
