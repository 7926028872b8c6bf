/**
 * The samplers by name, for CLIs and sweeps that pick one at run time: 'ddpm' | 'ddim' | 'dpm++2m' | 'euler' | 'heun'.
 * Compare samplers by model calls, not steps: Heun makes 2N − 1 calls in N steps (no correction on the last step),
 * every other sampler one per step. A classifier-free-guided call evaluates the network once on the doubled batch and
 * counts as one call; at w = 1 (the plain conditional model) and w = 0 (the unconditional one) the other half of that
 * batch would be discarded, so those run on the undoubled batch (the same result up to float rounding, half the work).
 */
import type * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors';
import type { PredictionType } from '../param';
import type { NoiseSchedule } from '../schedule';
import { ddimSample } from './ddim';
import { ddpmSample } from './ddpm';
import { dpmSolverSample } from './dpm-solver';
import { DEFAULT_NULL_CLASS } from './guidance';
import { eulerKarrasSample, heunKarrasSample } from './karras';
import type { Denoiser, GuidanceOptions, Progress, SampleResult } from './types';

export type SamplerName = 'ddpm' | 'ddim' | 'dpm++2m' | 'euler' | 'heun';
export const SAMPLER_NAMES: readonly SamplerName[] = ['ddpm', 'ddim', 'dpm++2m', 'euler', 'heun'];

export function checkSamplerName(name: string): SamplerName {
  if (!(SAMPLER_NAMES as readonly string[]).includes(name)) {
    throw new InvalidArgumentError(`unknown sampler ${JSON.stringify(name)}: expected one of ${SAMPLER_NAMES.join(', ')}`);
  }
  return name as SamplerName;
}

/** Model calls of `steps` steps: 2·steps − 1 for Heun, `steps` for the others. */
export function modelCallsFor(sampler: SamplerName, steps: number): number {
  checkSamplerName(sampler);
  if (!Number.isInteger(steps) || steps < 1) throw new InvalidArgumentError(`steps must be a positive integer, got ${steps}`);
  return sampler === 'heun' ? 2 * steps - 1 : steps;
}

/** The most steps whose model calls do not exceed `calls` (Heun: ⌊(calls + 1)/2⌋; the others: calls). */
export function stepsForCalls(sampler: SamplerName, calls: number): number {
  checkSamplerName(sampler);
  if (!Number.isInteger(calls) || calls < 1) throw new InvalidArgumentError(`model calls must be a positive integer, got ${calls}`);
  return sampler === 'heun' ? Math.floor((calls + 1) / 2) : calls;
}

/** A sampler and its own settings; options another sampler would take are refused (see checkSamplerSpec). */
export interface SamplerSpec {
  sampler: SamplerName;
  steps: number;
  /** DDIM only: stochasticity η ∈ [0, 1] (default 0). */
  eta?: number;
  /** Euler / Heun only: the largest Karras noise level (default min(80, σ(T−1)): lib/samplers/karras.ts). */
  sigmaMax?: number;
  /** Euler / Heun only: ρ of the Karras spacing (default 7). */
  rho?: number;
}

/** Checks the name, the step count against the schedule's T, and that each option belongs to the sampler given. */
export function checkSamplerSpec(spec: SamplerSpec, T?: number): void {
  checkSamplerName(spec.sampler);
  if (!Number.isInteger(spec.steps) || spec.steps < 1) throw new InvalidArgumentError(`steps must be a positive integer, got ${spec.steps}`);
  if (T !== undefined && spec.steps > T) throw new InvalidArgumentError(`${spec.steps} steps exceed the schedule's T = ${T}`);
  if (spec.eta !== undefined && spec.sampler !== 'ddim') {
    throw new InvalidArgumentError(`eta applies to ddim only, not to ${spec.sampler}`);
  }
  for (const k of ['sigmaMax', 'rho'] as const) {
    if (spec[k] !== undefined && spec.sampler !== 'euler' && spec.sampler !== 'heun') {
      throw new InvalidArgumentError(`${k} applies to euler and heun only, not to ${spec.sampler}`);
    }
  }
}

/** A short label: 'DDIM 25', 'Heun 13 steps (25 calls)', 'DDIM 50 η 0.5'. */
export function samplerLabel(spec: SamplerSpec): string {
  const title: Record<SamplerName, string> = { ddpm: 'DDPM', ddim: 'DDIM', 'dpm++2m': 'DPM-Solver++ 2M', euler: 'Euler', heun: 'Heun' };
  const calls = modelCallsFor(spec.sampler, spec.steps);
  const extra = [
    spec.eta ? `η ${spec.eta}` : '',
    spec.sigmaMax !== undefined ? `σ_max ${spec.sigmaMax}` : '',
    spec.rho !== undefined ? `ρ ${spec.rho}` : '',
  ].filter(Boolean).join(', ');
  return `${title[spec.sampler]} ${calls === spec.steps ? spec.steps : `${spec.steps} steps (${calls} calls)`}${extra ? `, ${extra}` : ''}`;
}

export interface NamedSampleOptions {
  predictionType: PredictionType;
  seed?: number;
  clipX0?: boolean | number;
  /** Classifier-free guidance (w = 1 and w = 0 run unguided on the undoubled batch, see above). */
  guidance?: GuidanceOptions;
  classes?: number[];
  initialNoise?: tf.Tensor;
  onStep?: (p: Progress) => void;
}

/** Guidance with w = 1 → the class labels; w = 0 → the null label for every example; otherwise the guidance itself. */
function conditioning(o: NamedSampleOptions): { guidance?: GuidanceOptions; classes?: number[] | tf.Tensor1D } {
  const g = o.guidance;
  if (!g) return o.classes !== undefined ? { classes: o.classes } : {};
  if (g.weight === 1) return { classes: g.classes };
  if (g.weight === 0) {
    const n = Array.isArray(g.classes) ? g.classes.length : g.classes.shape[0];
    return { classes: new Array<number>(n).fill(g.nullClass ?? DEFAULT_NULL_CLASS) };
  }
  return { guidance: g };
}

/** Runs `spec.sampler` (see checkSamplerSpec); the result's modelCalls counts the model calls made. */
export async function sampleWith(model: Denoiser, shape: number[], schedule: NoiseSchedule, spec: SamplerSpec, o: NamedSampleOptions): Promise<SampleResult> {
  checkSamplerSpec(spec, schedule.T);
  // only keys with values: the few-step samplers refuse unknown keys, and a key set to undefined counts as given
  const common: Record<string, unknown> = { predictionType: o.predictionType, ...conditioning(o) };
  for (const k of ['seed', 'clipX0', 'initialNoise', 'onStep'] as const) if (o[k] !== undefined) common[k] = o[k];
  const c = common as unknown as Parameters<typeof ddpmSample>[3];
  const steps = spec.steps;
  switch (spec.sampler) {
    case 'ddpm': return ddpmSample(model, shape, schedule, { ...c, steps });
    case 'ddim': return ddimSample(model, shape, schedule, { ...c, steps, eta: spec.eta ?? 0 });
    case 'dpm++2m': return dpmSolverSample(model, shape, schedule, { ...c, steps });
    case 'euler':
    case 'heun': {
      const karras: Record<string, unknown> = { ...c, steps };
      if (spec.sigmaMax !== undefined) karras.sigmaMax = spec.sigmaMax;
      if (spec.rho !== undefined) karras.rho = spec.rho;
      const run = spec.sampler === 'euler' ? eulerKarrasSample : heunKarrasSample;
      return run(model, shape, schedule, karras as unknown as Parameters<typeof eulerKarrasSample>[3]);
    }
  }
}
