/**
 * Which timesteps a sampler with fewer steps than T visits (diffusers' timestep_spacing, steps_offset 0):
 *   leading   t_i = i·⌊T/n⌋, descending          T=1000, n=10 → 900 … 0   (never visits T−1)
 *   trailing  round(T − i·T/n) − 1             T=1000, n=10 → 999 … 99  (starts at T−1)
 *   linspace  round(linspace(0, T−1, n)), desc. T=1000, n=10 → 999, 888 … 0
 *   quadratic ⌊(T−1)·(k/(n−1))²⌋, k = n−1 … 0    T=1000, n=10 → 999, 789, 604 … 12, 0  (dense near t = 0)
 * Rounding is half-to-even, as numpy's, so the first three equal diffusers' lists for every (T, n).
 * quadratic is the DDIM paper's "quadratic" choice (Song et al. 2021: τ_i = ⌊c·i²⌋) with c set so that it
 * starts at T−1 like linspace; diffusers has no such option. Where the squares crowd below one step apart (n close to
 * T), each step is raised to one above the next smaller, which keeps n distinct steps and still ends at T−1.
 */
import { InvalidArgumentError } from '../errors';

export type Spacing = 'leading' | 'trailing' | 'linspace' | 'quadratic';
export const SPACINGS: readonly Spacing[] = ['leading', 'trailing', 'linspace', 'quadratic'];

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
    case 'quadratic':
      return quadraticTimesteps(T, n);
    default:
      throw new InvalidArgumentError(`timestep spacing must be one of ${SPACINGS.join(', ')}; got '${spacing as string}'`);
  }
  return out;
}

/** The 'quadratic' list (see the header), in integer arithmetic so that no square lands a hair below an integer. */
function quadraticTimesteps(T: number, n: number): number[] {
  if (n === 1) return [T - 1];
  const m = n - 1;
  if ((T - 1) * m * m > Number.MAX_SAFE_INTEGER) {
    throw new InvalidArgumentError(`quadratic spacing needs (T − 1)·(n − 1)² ≤ 2^53 for exact steps, got T = ${T}, n = ${n}`);
  }
  const ascending: number[] = [];
  for (let k = 0; k <= m; k++) {
    const num = (T - 1) * k * k; // an exact integer (checked above), so ⌊num / m²⌋ is exact too
    const t = (num - (num % (m * m))) / (m * m);
    // t_k ≥ t_{k−1} + 1 keeps the steps distinct; t_m = T − 1 still holds because ⌊(T−1)s²⌋ + m(1−s) ≤ T−1 for m ≤ T−1.
    ascending.push(k === 0 ? t : Math.max(t, ascending[k - 1] + 1));
  }
  return ascending.reverse();
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
