/**
 * Noise schedules and every per-step coefficient of the forward and reverse process.
 *
 * INDEX CONVENTION (used everywhere in lib): code timesteps are t = 0 … T−1, and code index t is the papers' step t+1.
 *   betas[t]          = β_{t+1}                                  (Ho et al. number steps 1 … T)
 *   alphasCumprod[t]  = ᾱ_{t+1} = ∏_{s=0..t} (1 − betas[s])      (so alphasCumprod[0] = 1 − betas[0])
 *   alphasCumprodPrev[t] = alphasCumprod[t−1], and alphasCumprodPrev[0] = 1 (ᾱ_0 = 1: x at "step −1" is the data)
 * A noisy sample at code index t is x_t = √ᾱ[t]·x0 + √(1−ᾱ[t])·ε; index T−1 is the noisiest (≈ N(0, I)).
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from './errors';
import { makeRng } from './random';

export type ScheduleKind = 'linear' | 'cosine' | 'sigmoid' | 'quadratic' | 'custom';

/** Names of the per-step arrays, for `schedule.at(name, t)`. */
export type ScheduleField =
  | 'betas'
  | 'alphas'
  | 'alphasCumprod'
  | 'alphasCumprodPrev'
  | 'sqrtAlphasCumprod'
  | 'sqrtOneMinusAlphasCumprod'
  | 'sqrtRecipAlphasCumprod'
  | 'sqrtRecipm1AlphasCumprod'
  | 'posteriorVariance'
  | 'posteriorLogVarianceClipped'
  | 'posteriorMeanCoef1'
  | 'posteriorMeanCoef2'
  | 'snr';

/** What a checkpoint stores: the betas are the schedule (all else is derived); kind/params are provenance. */
export interface ScheduleJSON {
  kind: ScheduleKind;
  T: number;
  params: Record<string, number>;
  betas: number[];
}

/**
 * q(x_{prev} | x_t, x0) for a jump from ᾱ_t down to ᾱ_prev (prev = t−1 in DDPM, any earlier step when striding):
 *   mean = coef1·x0 + coef2·x_t,  variance = (1−ᾱ_prev)/(1−ᾱ_t)·(1 − ᾱ_t/ᾱ_prev)
 * with coef1 = √ᾱ_prev·β/(1−ᾱ_t), coef2 = √(ᾱ_t/ᾱ_prev)·(1−ᾱ_prev)/(1−ᾱ_t) and β = 1 − ᾱ_t/ᾱ_prev (Ho et al. eq. 6–7).
 * The schedule's posterior fields and the strided samplers both use this one function.
 */
export function posteriorCoefficients(alphaBarT: number, alphaBarPrev: number): { coef1: number; coef2: number; variance: number; beta: number } {
  const beta = 1 - alphaBarT / alphaBarPrev;
  const oneMinusT = 1 - alphaBarT;
  return {
    beta,
    coef1: (Math.sqrt(alphaBarPrev) * beta) / oneMinusT,
    coef2: (Math.sqrt(alphaBarT / alphaBarPrev) * (1 - alphaBarPrev)) / oneMinusT,
    variance: ((1 - alphaBarPrev) / oneMinusT) * beta,
  };
}

function checkT(T: number): void {
  if (!Number.isInteger(T) || T <= 0) throw new InvalidArgumentError(`T must be a positive integer, got ${T}`);
}

function checkUnitOpen(name: string, v: number): void {
  if (!(v > 0 && v < 1)) throw new InvalidArgumentError(`${name} must lie in (0, 1), got ${v}`);
}

/** numpy.linspace(a, b, n) in float64 (endpoint included; n = 1 gives [a]). */
export function linspace(a: number, b: number, n: number): Float64Array {
  const out = new Float64Array(n);
  if (n === 1) {
    out[0] = a;
    return out;
  }
  const step = (b - a) / (n - 1);
  for (let i = 0; i < n; i++) out[i] = a + i * step;
  out[n - 1] = b;
  return out;
}

/** Betas from a continuous ᾱ(u), u ∈ [0, 1]: β_i = min(1 − ᾱ((i+1)/T)/ᾱ(i/T), maxBeta) (Nichol & Dhariwal eq. 17). */
function betasFromAlphaBar(T: number, alphaBar: (u: number) => number, maxBeta: number): Float64Array {
  const betas = new Float64Array(T);
  for (let i = 0; i < T; i++) {
    const b = 1 - alphaBar((i + 1) / T) / alphaBar(i / T);
    betas[i] = Math.min(b, maxBeta);
  }
  return betas;
}

const sigmoidFn = (x: number): number => 1 / (1 + Math.exp(-x));

export class NoiseSchedule {
  readonly T: number;
  readonly betas: Float64Array;
  readonly alphas: Float64Array;
  readonly alphasCumprod: Float64Array;
  /** ᾱ of the previous step; 1 at t = 0. */
  readonly alphasCumprodPrev: Float64Array;
  readonly sqrtAlphasCumprod: Float64Array;
  readonly sqrtOneMinusAlphasCumprod: Float64Array;
  /** 1/√ᾱ_t and √(1/ᾱ_t − 1): x0 = sqrtRecip·x_t − sqrtRecipm1·ε. */
  readonly sqrtRecipAlphasCumprod: Float64Array;
  readonly sqrtRecipm1AlphasCumprod: Float64Array;
  /** β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t): the variance of q(x_{t−1} | x_t, x0). Zero at t = 0. Not β_t. */
  readonly posteriorVariance: Float64Array;
  /** log β̃_t with the t = 0 entry (log 0) replaced by log β̃_1, as in Ho et al.'s code; log β_0 when T = 1. */
  readonly posteriorLogVarianceClipped: Float64Array;
  /** Posterior mean = coef1·x0 + coef2·x_t. */
  readonly posteriorMeanCoef1: Float64Array;
  readonly posteriorMeanCoef2: Float64Array;
  /** Signal-to-noise ratio ᾱ_t / (1 − ᾱ_t). */
  readonly snr: Float64Array;

  /** Prefer the static factories; `betas` must each lie in (0, 1). */
  constructor(betas: ArrayLike<number>, readonly kind: ScheduleKind = 'custom', readonly params: Readonly<Record<string, number>> = {}) {
    const T = betas.length;
    if (T === 0) throw new InvalidArgumentError('a schedule needs at least one beta (T must be a positive integer), got T = 0');
    this.T = T;
    this.betas = Float64Array.from(betas);
    this.betas.forEach((b, i) => {
      if (!(b > 0 && b < 1)) throw new InvalidArgumentError(`beta[${i}] must lie in (0, 1), got ${b}`);
    });
    const f = () => new Float64Array(T);
    this.alphas = f();
    this.alphasCumprod = f();
    this.alphasCumprodPrev = f();
    this.sqrtAlphasCumprod = f();
    this.sqrtOneMinusAlphasCumprod = f();
    this.sqrtRecipAlphasCumprod = f();
    this.sqrtRecipm1AlphasCumprod = f();
    this.posteriorVariance = f();
    this.posteriorLogVarianceClipped = f();
    this.posteriorMeanCoef1 = f();
    this.posteriorMeanCoef2 = f();
    this.snr = f();
    let prod = 1;
    for (let t = 0; t < T; t++) {
      const a = 1 - this.betas[t];
      this.alphas[t] = a;
      this.alphasCumprodPrev[t] = prod;
      prod *= a;
      this.alphasCumprod[t] = prod;
      this.sqrtAlphasCumprod[t] = Math.sqrt(prod);
      this.sqrtOneMinusAlphasCumprod[t] = Math.sqrt(1 - prod);
      this.sqrtRecipAlphasCumprod[t] = Math.sqrt(1 / prod);
      this.sqrtRecipm1AlphasCumprod[t] = Math.sqrt(1 / prod - 1);
      const p = posteriorCoefficients(prod, this.alphasCumprodPrev[t]);
      this.posteriorVariance[t] = p.variance;
      this.posteriorMeanCoef1[t] = p.coef1;
      this.posteriorMeanCoef2[t] = p.coef2;
      this.snr[t] = prod / (1 - prod);
    }
    for (let t = 0; t < T; t++) {
      const v = t > 0 ? this.posteriorVariance[t] : T > 1 ? this.posteriorVariance[1] : this.betas[0];
      this.posteriorLogVarianceClipped[t] = Math.log(v);
    }
  }

  /** Ho et al.: β linear from betaStart to betaEnd (1e-4 → 0.02 at T = 1000). */
  static linear(T = 1000, betaStart = 1e-4, betaEnd = 0.02): NoiseSchedule {
    checkT(T);
    checkUnitOpen('betaStart', betaStart);
    checkUnitOpen('betaEnd', betaEnd);
    return new NoiseSchedule(linspace(betaStart, betaEnd, T), 'linear', { betaStart, betaEnd });
  }

  /**
   * "Quadratic" = sqrt-linear (diffusers' scaled_linear, Stable Diffusion): √β linear from √betaStart to √betaEnd,
   * so β_t = (√βs + t/(T−1)·(√βe − √βs))². Same end points as linear, smaller betas in between.
   */
  static quadratic(T = 1000, betaStart = 1e-4, betaEnd = 0.02): NoiseSchedule {
    checkT(T);
    checkUnitOpen('betaStart', betaStart);
    checkUnitOpen('betaEnd', betaEnd);
    const r = linspace(Math.sqrt(betaStart), Math.sqrt(betaEnd), T).map((x) => x * x);
    return new NoiseSchedule(r, 'quadratic', { betaStart, betaEnd });
  }

  /**
   * Nichol & Dhariwal (2021): ᾱ(u) = f(u)/f(0), f(u) = cos²((u + s)/(1 + s)·π/2), u = t/T, with β clipped at maxBeta
   * (unclipped, the last β is 1 and sampling divides by √ᾱ = 0). Unclipped steps have ᾱ equal to the closed form.
   */
  static cosine(T = 1000, s = 0.008, maxBeta = 0.999): NoiseSchedule {
    checkT(T);
    if (!(s >= 0)) throw new InvalidArgumentError(`cosine offset s must be >= 0, got ${s}`);
    checkUnitOpen('maxBeta', maxBeta);
    return new NoiseSchedule(betasFromAlphaBar(T, (u) => cosineAlphaBar(u, s), maxBeta), 'cosine', { s, maxBeta });
  }

  /**
   * Sigmoid schedule (Chen 2023, "On the importance of noise scheduling"; lucidrains' sigmoid_beta_schedule):
   * ᾱ(u) = (σ(end/τ) − σ((u(end − start) + start)/τ)) / (σ(end/τ) − σ(start/τ)), β clipped at maxBeta.
   */
  static sigmoid(T = 1000, start = -3, end = 3, tau = 1, maxBeta = 0.999): NoiseSchedule {
    checkT(T);
    if (!(end > start)) throw new InvalidArgumentError(`sigmoid schedule needs end > start, got start=${start}, end=${end}`);
    if (!(tau > 0)) throw new InvalidArgumentError(`sigmoid temperature tau must be > 0, got ${tau}`);
    checkUnitOpen('maxBeta', maxBeta);
    const vs = sigmoidFn(start / tau);
    const ve = sigmoidFn(end / tau);
    const ab = (u: number) => (ve - sigmoidFn((u * (end - start) + start) / tau)) / (ve - vs);
    return new NoiseSchedule(betasFromAlphaBar(T, ab, maxBeta), 'sigmoid', { start, end, tau, maxBeta });
  }

  /** Any betas, each in (0, 1). */
  static fromBetas(betas: ArrayLike<number>): NoiseSchedule {
    return new NoiseSchedule(betas, 'custom');
  }

  toJSON(): ScheduleJSON {
    return { kind: this.kind, T: this.T, params: { ...this.params }, betas: Array.from(this.betas) };
  }

  static fromJSON(json: unknown): NoiseSchedule {
    const j = json as Partial<ScheduleJSON> | null;
    if (!j || typeof j !== 'object' || !Array.isArray(j.betas) || j.betas.some((b) => typeof b !== 'number')) {
      throw new InvalidArgumentError('schedule JSON must be an object with a numeric "betas" array');
    }
    if (j.T !== undefined && j.T !== j.betas.length) {
      throw new InvalidArgumentError(`schedule JSON says T = ${j.T} but holds ${j.betas.length} betas`);
    }
    const kinds: ScheduleKind[] = ['linear', 'cosine', 'sigmoid', 'quadratic', 'custom'];
    const kind = j.kind && kinds.includes(j.kind) ? j.kind : 'custom';
    return new NoiseSchedule(j.betas, kind, j.params ?? {});
  }

  /** Checks that every timestep is an integer in [0, T); returns them as numbers. (Tensors: see `at`.) */
  checkTimesteps(t: ArrayLike<number> | number): number[] {
    const values = typeof t === 'number' ? [t] : Array.from(t);
    for (const v of values) {
      if (!Number.isInteger(v) || v < 0 || v >= this.T) {
        throw new InvalidArgumentError(`timestep must be an integer in [0, ${this.T - 1}] (T = ${this.T}), got ${v}`);
      }
    }
    return values;
  }

  /**
   * The per-step field `name` at timesteps t, as a float32 tensor shaped [B, 1, …, 1] (rank `ndims`) that broadcasts
   * against a batch of data of that rank: ndims = 4 for images [B, H, W, C], 2 for points [B, D].
   * `t` may be an int32 Tensor1D, an array, or one number (then B = 1; it still broadcasts over any batch).
   * Numbers and arrays are range-checked and looked up on the JS side. A tensor is never read back (that would stall a
   * GPU every training step): its values are looked up on the device (schedule.lookup), and a timestep outside
   * [0, T) gives NaN, which the trainer's and samplers' finite checks then report.
   */
  at(name: ScheduleField, t: tf.Tensor | ArrayLike<number> | number, ndims = 4): tf.Tensor {
    return this.lookup(this[name], t, ndims);
  }

  /** `at` for any per-step table of T values (e.g. a loss weight per timestep). */
  lookup(table: ArrayLike<number>, t: tf.Tensor | ArrayLike<number> | number, ndims = 4): tf.Tensor {
    if (!Number.isInteger(ndims) || ndims < 1) throw new InvalidArgumentError(`ndims must be a positive integer, got ${ndims}`);
    if (table.length !== this.T) throw new ShapeMismatchError(`lookup table has ${table.length} values, the schedule T = ${this.T}`);
    const ones = new Array<number>(ndims - 1).fill(1);
    if (t instanceof tf.Tensor) {
      if (t.rank !== 1) throw new ShapeMismatchError(`timesteps must be a 1-D tensor [B], got shape [${t.shape}]`);
      if (t.dtype !== 'int32') throw new InvalidArgumentError(`timesteps must be an int32 tensor, got ${t.dtype}`);
      const T = this.T;
      return tf.tidy(() => {
        // gather from a clamped index (backends differ on out-of-range indices), then NaN where t was outside [0, T);
        // min/max rather than clipByValue, which wasm computes on int32 data as if it were float32
        const clamped = tf.minimum(tf.maximum(t, tf.scalar(0, 'int32')), tf.scalar(T - 1, 'int32'));
        const values = tf.gather(tf.tensor1d(Float32Array.from(table), 'float32'), clamped);
        const inRange = tf.logicalAnd(tf.greaterEqual(t, 0), tf.less(t, T));
        return tf.reshape(tf.where(inRange, values, tf.fill(values.shape, NaN)), [t.shape[0], ...ones]);
      });
    }
    const idx = this.checkTimesteps(t);
    const vals = Float32Array.from(idx, (i) => table[i]);
    return tf.tensor(vals, [idx.length, ...ones], 'float32');
  }

  /**
   * `batch` timesteps drawn uniformly from 0 … T−1 INCLUSIVE (floor(u·T), u ∈ [0, 1)), seeded, on the JS side.
   * (tf.randomUniform with dtype int32 rounds, which would draw T itself and halve the end points.)
   */
  drawTimesteps(batch: number, seed?: number): Int32Array {
    if (!Number.isInteger(batch) || batch <= 0) throw new InvalidArgumentError(`batch must be a positive integer, got ${batch}`);
    const rng = makeRng(seed ?? Math.floor(Math.random() * 2 ** 32));
    const ts = new Int32Array(batch);
    for (let i = 0; i < batch; i++) ts[i] = Math.min(this.T - 1, Math.floor(rng() * this.T));
    return ts;
  }

  /** drawTimesteps as an int32 tensor [B]. */
  sampleTimesteps(batch: number, seed?: number): tf.Tensor1D {
    return tf.tensor1d(this.drawTimesteps(batch, seed), 'int32');
  }
}

/** The cosine schedule's continuous ᾱ(u) = f(u)/f(0), u = t/T ∈ [0, 1] (exported for plots and tests). */
export function cosineAlphaBar(u: number, s = 0.008): number {
  const f = (x: number) => Math.cos(((x + s) / (1 + s)) * (Math.PI / 2)) ** 2;
  return f(u) / f(0);
}
