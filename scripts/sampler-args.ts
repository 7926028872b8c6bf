// The sampler flags that npm run sample / evaluate / quality-table share:
//   --sampler ddpm|ddim|dpm++2m|euler|heun  --steps N | --calls N  [--eta η (ddim)]  [--sigma-max σ] [--rho ρ] (euler, heun)
// --calls N picks the most steps that make at most N model calls (Heun makes 2N − 1 calls in N steps). An option that
// belongs to another sampler is an error, never ignored.
import { InvalidArgumentError } from '../lib/errors';
import { checkSamplerName, checkSamplerSpec, modelCallsFor, stepsForCalls, type SamplerName, type SamplerSpec } from '../lib/samplers/named';

/** util.parseArgs option table of the sampler flags (all strings: parsed and checked by samplerSpecFromArgs). */
export const SAMPLER_FLAGS = {
  sampler: { type: 'string' },
  steps: { type: 'string' },
  calls: { type: 'string' },
  eta: { type: 'string' },
  'sigma-max': { type: 'string' },
  rho: { type: 'string' },
} as const;

export const SAMPLER_USAGE = '--sampler ddpm|ddim|dpm++2m|euler|heun (--steps N | --calls N) [--eta η: ddim] [--sigma-max σ] [--rho ρ]: euler, heun';

function positiveInt(raw: string, flag: string): number {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`${flag} must be a positive integer, got ${JSON.stringify(raw)}`);
  return v;
}

function finite(raw: string, flag: string): number {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v)) throw new InvalidArgumentError(`${flag} must be a number, got ${JSON.stringify(raw)}`);
  return v;
}

export interface SamplerDefaults {
  /** The schedule's T (checked against; DDPM's default is T steps). */
  T: number;
  /** Model calls when neither --steps nor --calls is given, for the samplers other than DDPM (default 50). */
  calls?: number;
  /** Sampler when --sampler is absent (default ddim). */
  sampler?: SamplerName;
}

/**
 * The sampler flags of `values` → a checked SamplerSpec (with the model calls it makes). Without --steps/--calls: DDPM
 * takes every step of the schedule, the others defaults.calls calls.
 */
export function samplerSpecFromArgs(values: Record<string, unknown>, d: SamplerDefaults): SamplerSpec & { calls: number } {
  const s = (k: keyof typeof SAMPLER_FLAGS) => values[k] as string | undefined;
  const sampler = s('sampler') === undefined ? (d.sampler ?? 'ddim') : checkSamplerName(s('sampler')!);
  if (s('steps') !== undefined && s('calls') !== undefined) throw new InvalidArgumentError('give --steps or --calls, not both');
  let steps: number;
  if (s('steps') !== undefined) steps = positiveInt(s('steps')!, '--steps');
  else if (s('calls') !== undefined) {
    const calls = positiveInt(s('calls')!, '--calls');
    steps = stepsForCalls(sampler, calls);
  } else steps = sampler === 'ddpm' ? d.T : stepsForCalls(sampler, Math.min(d.calls ?? 50, d.T));
  if (steps > d.T) throw new InvalidArgumentError(`${steps} steps exceed the schedule's T = ${d.T}`);
  const spec: SamplerSpec = { sampler, steps };
  if (s('eta') !== undefined) {
    if (sampler !== 'ddim') throw new InvalidArgumentError(`--eta applies to --sampler ddim only, not ${sampler}`);
    spec.eta = finite(s('eta')!, '--eta');
    if (!(spec.eta >= 0 && spec.eta <= 1)) throw new InvalidArgumentError(`--eta must lie in [0, 1], got ${spec.eta}`);
  }
  for (const [flag, key] of [['sigma-max', 'sigmaMax'], ['rho', 'rho']] as const) {
    if (s(flag) === undefined) continue;
    if (sampler !== 'euler' && sampler !== 'heun') throw new InvalidArgumentError(`--${flag} applies to --sampler euler or heun only, not ${sampler}`);
    const v = finite(s(flag)!, `--${flag}`);
    if (!(v > 0)) throw new InvalidArgumentError(`--${flag} must be positive, got ${v}`);
    spec[key] = v;
  }
  checkSamplerSpec(spec, d.T);
  return { ...spec, calls: modelCallsFor(sampler, steps) };
}
