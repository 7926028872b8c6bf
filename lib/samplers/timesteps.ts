/**
 * Which timesteps a sampler with fewer steps than T visits (diffusers' timestep_spacing, steps_offset 0):
 *   leading   t_i = i·⌊T/n⌋, descending          T=1000, n=10 → 900 … 0   (never visits T−1)
 *   trailing  round(T − i·T/n) − 1             T=1000, n=10 → 999 … 99  (starts at T−1)
 *   linspace  round(linspace(0, T−1, n)), desc. T=1000, n=10 → 999, 888 … 0
 * Rounding is half-to-even, as numpy's, so the lists equal diffusers' for every (T, n).
 */
import { InvalidArgumentError } from '../errors';

export type Spacing = 'leading' | 'trailing' | 'linspace';
export const SPACINGS: readonly Spacing[] = ['leading', 'trailing', 'linspace'];

/** numpy.round: halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** n distinct descending timesteps in [0, T) for 1 ≤ n ≤ T. */
export function spacedTimesteps(T: number, n: number, spacing: Spacing = 'trailing'): number[] {
  if (!Number.isInteger(T) || T <= 0) throw new InvalidArgumentError(`T must be a positive integer, got ${T}`);
  if (!Number.isInteger(n) || n <= 0 || n > T) {
    throw new InvalidArgumentError(`number of sampling steps must be an integer in [1, T = ${T}], got ${n}`);
  }
  const out: number[] = [];
  switch (spacing) {
    case 'leading': {
      const ratio = Math.floor(T / n);
      for (let i = n - 1; i >= 0; i--) out.push(i * ratio);
      break;
    }
    case 'trailing': {
      const ratio = T / n;
      for (let i = 0; i < n; i++) out.push(roundHalfEven(T - i * ratio) - 1);
      break;
    }
    case 'linspace': {
      if (n === 1) return [T - 1]; // numpy's linspace(0, T−1, 1) is [0]; one step must start from pure noise
      const step = (T - 1) / (n - 1);
      for (let i = n - 1; i >= 0; i--) out.push(i === n - 1 ? T - 1 : roundHalfEven(i * step));
      break;
    }
    default:
      throw new InvalidArgumentError(`timestep spacing must be one of ${SPACINGS.join(', ')}; got '${spacing as string}'`);
  }
  return out;
}

/** Custom timesteps: non-empty, integers in [0, T), strictly descending (as diffusers requires). */
export function checkCustomTimesteps(timesteps: readonly number[], T: number): number[] {
  if (timesteps.length === 0) throw new InvalidArgumentError('custom timesteps must not be empty');
  timesteps.forEach((t, i) => {
    if (!Number.isInteger(t) || t < 0 || t >= T) throw new InvalidArgumentError(`custom timestep ${t} must be an integer in [0, ${T - 1}]`);
    if (i > 0 && t >= timesteps[i - 1]) {
      throw new InvalidArgumentError(`custom timesteps must be strictly descending, got ${timesteps[i - 1]} then ${t}`);
    }
  });
  return [...timesteps];
}
