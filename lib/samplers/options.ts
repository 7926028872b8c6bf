/**
 * Unknown option names are errors for the few-step samplers: a misspelt or foreign option (`eta` given to Heun,
 * `spacing` to a Karras sampler) would otherwise be ignored without a word.
 */
import { InvalidArgumentError } from '../errors';
import type { SamplerOptions } from './types';

/** Every key of SamplerOptions (a compile error here when SamplerOptions gains or loses one: keep the two in step). */
export const SAMPLER_OPTION_KEYS: Record<keyof SamplerOptions, true> = {
  seed: true,
  onStep: true,
  returnTrajectory: true,
  clipX0: true,
  predictionType: true,
  classes: true,
  guidance: true,
  initialNoise: true,
  checkFinite: true,
  checkEvery: true,
};

/** Throws InvalidArgumentError naming the first key of `opts` that `known` lacks, and listing the known ones. */
export function checkOptionKeys(opts: object | undefined, known: Record<string, true>, who: string): void {
  if (opts === undefined) return;
  for (const k of Object.keys(opts)) {
    if (!Object.prototype.hasOwnProperty.call(known, k)) {
      throw new InvalidArgumentError(`${who}: unknown option '${k}'; expected one of ${Object.keys(known).sort().join(', ')}`);
    }
  }
}
