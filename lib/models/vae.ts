/**
 * A convolutional variational auto-encoder (Kingma & Welling 2014), optionally class-conditional (Sohn et al. 2015),
 * the first baseline of "why diffusion?" (issue 14).
 *
 *   encoder  q(z | x, y) = N(μ, diag σ²):  conv stack (conv-stacks.ts, GroupNorm + SiLU) → [features; onehot(y)]
 *            → dense → (μ, log σ²)
 *   prior    p(z) = N(0, I)
 *   decoder  p(x | z, y) = N(x; m(z, y), s² I):  [z; onehot(y)] → conv decoder → tanh → the mean m in (−1, 1);
 *            s is ONE learned scale (the parameter 'decoder.logSigma', log s)
 *
 * The likelihood, and why: pixels are the course's float32 in [−1, 1], so the decoder is a Gaussian on them rather than
 * a Bernoulli (which is a normalised density only for binary pixels: on grey levels its "nats" are not a likelihood).
 * A FIXED s would be a hidden weight on the KL term (s² = ½ gives the plain MSE + KL; s = 1 blurs everything); a learned
 * s calibrates the balance itself (its optimum is the reconstruction's RMS error; Rybkin et al. 2021, "σ-VAE").
 *
 * The loss, per image, in nats (elbo()): with one reparameterised draw z = μ + σ·ε, ε ~ N(0, I),
 *   recon = −log p(x | z) = Σ_pixels [ (x − m)² / (2s²) + log s + ½·log 2π ]
 *   kl    = KL(q(z | x) ‖ p(z)) = ½ Σ_latent [ μ² + σ² − 1 − log σ² ]     (closed form)
 *   −ELBO = recon + kl ≥ −log p(x)
 * On pixels dequantised with uniform noise of one grey level (dequantize()), −ELBO/(D·ln 2) − log₂ Δ bounds the
 * discrete data's negative log-likelihood in bits per dimension (Theis et al. 2016), the unit diffusion papers report.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../errors';
import { createDense, dense, type DenseParams } from '../nn/layers';
import { ParamStore, zeros } from '../nn/params';
import { seedStream } from '../random';
import { checkCount, checkLr, checkStepInputs, oneHotClasses, orderedGrads, type StepOptimizer } from './baseline-common';
import {
  checkConvStack, convDecoder, type ConvDecoderParams, convEncoder, type ConvEncoderParams, createConvDecoder, createConvEncoder,
  decoderRows, encoderRows,
} from './conv-stacks';
import { countUnder, type SummaryRow } from './types';

export interface VaeConfig {
  kind: 'vae';
  /** Height = width of the images (28 for MNIST); divisible by 2^widths.length. */
  imageSize: number;
  channels: number;
  /** Encoder channels per level (each halves the size: [32, 64] gives 28 → 14 → 7); the decoder mirrors them. */
  widths: number[];
  /** Size of z. */
  latentDim: number;
  /** GroupNorm groups; must divide every width. */
  groups: number;
  /**
   * 0 or absent: unconditional; otherwise labels 0 … numClasses−1 condition q and p. The null class numClasses (what
   * omitted labels mean) is learned only if training replaces some labels by it (label dropout, as the U-Net's trainer does).
   */
  numClasses?: number;
  /** Initial log s of the decoder's Gaussian (default DEFAULT_LOG_SIGMA; training moves it to the reconstruction error). */
  logSigmaInit?: number;
  /** Seed of the initial weights. */
  seed: number;
}

/**
 * log 0.2: near the RMS reconstruction error a small VAE reaches on MNIST in a few hundred steps (≈ 0.25 in [−1, 1]
 * units). Adam moves log s by about lr per step, so from s = 1 it took 400 steps to get to 0.66 while the loss stayed
 * dominated by it; from 0.2 the same run reconstructed digits sharply (measured, issue-14 report).
 */
export const DEFAULT_LOG_SIGMA = Math.log(0.2);

/**
 * The notebook's VAE: 28 → 14 → 7 with 64 / 128 channels, 16 latent dims, class-conditional; 563,394 parameters. Its
 * training step at batch 64 took 0.7–0.9× the course U-Net's on the 2-core machine (issue-14 report, shared machine).
 */
export const NOTEBOOK_VAE: VaeConfig = {
  kind: 'vae', imageSize: 28, channels: 1, widths: [64, 128], latentDim: 16, groups: 8, numClasses: 10, seed: 0,
};

export function validateVaeConfig(c: VaeConfig): void {
  const bad = (msg: string) => { throw new InvalidArgumentError(`VAE config: ${msg}`); };
  if (c.kind !== 'vae') bad(`kind must be 'vae', got '${c.kind}'`);
  checkConvStack('VAE config', c.imageSize, c.channels, c.widths, c.groups);
  if (!(Number.isInteger(c.latentDim) && c.latentDim > 0)) bad(`latentDim must be a positive integer, got ${c.latentDim}`);
  if (c.numClasses !== undefined && !(Number.isInteger(c.numClasses) && c.numClasses >= 0)) bad(`numClasses must be an integer ≥ 0, got ${c.numClasses}`);
  if (c.logSigmaInit !== undefined && !Number.isFinite(c.logSigmaInit)) bad(`logSigmaInit must be a finite number, got ${c.logSigmaInit}`);
  if (!Number.isInteger(c.seed)) bad(`seed must be an integer, got ${c.seed}`);
}

/** The two outputs of the encoder, each [B, latentDim]. */
export interface Posterior { mu: tf.Tensor2D; logvar: tf.Tensor2D }

export class Vae {
  readonly params: ParamStore;
  readonly numClasses: number;
  /** log s of the decoder's Gaussian, shape [1]. */
  readonly logSigma: tf.Variable;
  private readonly encoder: ConvEncoderParams;
  private readonly head: DenseParams;
  private readonly decoder: ConvDecoderParams;

  constructor(readonly config: VaeConfig) {
    validateVaeConfig(config);
    const c = config;
    const s = (this.params = new ParamStore(c.seed));
    this.numClasses = c.numClasses ?? 0;
    const cond = this.numClasses > 0 ? this.numClasses + 1 : 0; // one-hot width, null class included
    this.encoder = createConvEncoder(s, 'encoder', c.imageSize, c.channels, c.widths, { kind: 'groupNormSilu', groups: c.groups });
    this.head = createDense(s, 'encoder.head', this.encoder.featureDim + cond, 2 * c.latentDim);
    this.decoder = createConvDecoder(s, 'decoder', c.latentDim + cond, c.imageSize, c.channels, c.widths, c.groups);
    this.logSigma = s.create('decoder.logSigma', [1], zeros);
    const init = c.logSigmaInit ?? DEFAULT_LOG_SIGMA;
    tf.tidy(() => this.logSigma.assign(tf.fill([1], init)));
  }

  /** Pixels per image (D in bits per dimension). */
  get dims(): number {
    return this.config.imageSize * this.config.imageSize * this.config.channels;
  }

  /** q(z | x, y): x [B, S, S, C] (classes int32 [B]; omitted → null class) → μ and log σ², each [B, latentDim]. */
  encode(x: tf.Tensor, classes?: tf.Tensor1D): Posterior {
    // one tidy around everything: a bad x or bad classes throws with nothing left behind
    const out = tf.tidy(() => {
      const onehot = oneHotClasses('VAE encode', this.numClasses, x.shape[0], classes);
      const h = convEncoder(this.encoder, x);
      return dense(this.head, onehot ? tf.concat([h, onehot], 1) : h);
    });
    const [mu, logvar] = tf.split(out, 2, 1) as tf.Tensor2D[];
    out.dispose();
    return { mu, logvar };
  }

  /** The decoder's mean m(z, y): z [B, latentDim] → [B, S, S, C] in (−1, 1). */
  decode(z: tf.Tensor2D, classes?: tf.Tensor1D): tf.Tensor4D {
    const l = this.config.latentDim;
    if (z.rank !== 2 || z.shape[1] !== l) throw new ShapeMismatchError(`VAE decode: z must be [B, ${l}], got [${z.shape}]`);
    return tf.tidy(() => {
      const onehot = oneHotClasses('VAE decode', this.numClasses, z.shape[0], classes);
      return convDecoder(this.decoder, onehot ? tf.concat([z, onehot], 1) : z);
    });
  }

  /** n images from the prior: z ~ N(0, I) drawn with `seed`, decoded to the mean (the usual picture; no pixel noise). */
  sample(n: number, seed: number, classes?: tf.Tensor1D): tf.Tensor4D {
    checkCount(n, 'VAE sample: n');
    return tf.tidy(() => this.decode(tf.randomNormal([n, this.config.latentDim], 0, 1, 'float32', seed), classes));
  }

  /** decode(μ(x)): the deterministic reconstruction of x. */
  reconstruct(x: tf.Tensor, classes?: tf.Tensor1D): tf.Tensor4D {
    return tf.tidy(() => this.decode(this.encode(x, classes).mu, classes));
  }

  paramCount(): number {
    return this.params.count();
  }

  summary(): SummaryRow[] {
    const s = this.params;
    const c = this.config;
    return [
      ...encoderRows(s, 'encoder', this.encoder),
      { name: 'encoder.head', outputShape: [2 * c.latentDim], params: countUnder(s, 'encoder.head') },
      ...decoderRows(s, 'decoder', this.decoder, c.channels),
      { name: 'decoder.logSigma', outputShape: [1], params: 1 },
    ];
  }

  dispose(): void {
    this.params.dispose();
  }
}

/** z = μ + exp(½·log σ²)·ε: a draw from q whose gradient flows to μ and log σ² (ε: a tensor, or drawn with a seed). */
export function reparameterize(mu: tf.Tensor2D, logvar: tf.Tensor2D, noise: tf.Tensor | number): tf.Tensor2D {
  if (!tf.util.arraysEqual(mu.shape, logvar.shape)) throw new ShapeMismatchError(`reparameterize: μ [${mu.shape}] and log σ² [${logvar.shape}] must have the same shape`);
  if (typeof noise !== 'number' && !tf.util.arraysEqual(noise.shape, mu.shape)) {
    throw new ShapeMismatchError(`reparameterize: ε must have μ's shape [${mu.shape}], got [${noise.shape}]`);
  }
  return tf.tidy(() => {
    const eps = typeof noise === 'number' ? tf.randomNormal(mu.shape, 0, 1, 'float32', noise) : noise;
    return tf.add(mu, tf.mul(tf.exp(tf.mul(logvar, 0.5)), eps)) as tf.Tensor2D;
  });
}

/** KL(N(μ, diag σ²) ‖ N(0, I)) per example, in nats: ½ Σ (μ² + σ² − 1 − log σ²) over the latent axis → [B]. */
export function gaussianKl(mu: tf.Tensor2D, logvar: tf.Tensor2D): tf.Tensor1D {
  if (!tf.util.arraysEqual(mu.shape, logvar.shape)) throw new ShapeMismatchError(`gaussianKl: μ [${mu.shape}] and log σ² [${logvar.shape}] must have the same shape`);
  return tf.tidy(() => tf.mul(tf.sum(tf.sub(tf.add(tf.square(mu), tf.exp(logvar)), tf.add(logvar, 1)), 1), 0.5) as tf.Tensor1D);
}

/**
 * −log N(x; mean, s²I) per example, in nats, summed over every non-batch axis → [B]:
 * Σ [ (x − mean)²/(2s²) + log s + ½·log 2π ]. logSigma: log s, a scalar-sized tensor ([] or [1]).
 */
export function gaussianNll(x: tf.Tensor, mean: tf.Tensor, logSigma: tf.Tensor): tf.Tensor1D {
  if (!tf.util.arraysEqual(x.shape, mean.shape)) throw new ShapeMismatchError(`gaussianNll: x [${x.shape}] and mean [${mean.shape}] must have the same shape`);
  if (logSigma.size !== 1) throw new ShapeMismatchError(`gaussianNll: log s must hold one number, got shape [${logSigma.shape}]`);
  if (x.rank < 2) throw new ShapeMismatchError(`gaussianNll: x must be a batch [B, …] of rank ≥ 2, got [${x.shape}]`);
  const d = x.size / x.shape[0];
  return tf.tidy(() => {
    const ls = tf.reshape(logSigma, []);
    const sq = tf.sum(tf.squaredDifference(x, mean), [...Array(x.rank).keys()].slice(1));
    // the constant part, d·(log s + ½ log 2π), is added once per example rather than per pixel
    return tf.add(tf.mul(sq, tf.mul(tf.exp(tf.mul(ls, -2)), 0.5)), tf.mul(tf.add(ls, 0.5 * Math.log(2 * Math.PI)), d)) as tf.Tensor1D;
  });
}

/** Width Δ of one grey level for data in [−1, 1] with `levels` levels (2/255 for 8-bit images). */
export function greyLevelWidth(levels = 256): number {
  if (!(Number.isInteger(levels) && levels >= 2)) throw new InvalidArgumentError(`levels must be an integer ≥ 2, got ${levels}`);
  return 2 / (levels - 1);
}

/** x + u, u ~ U(−Δ/2, Δ/2) per pixel (seeded): turns 8-bit pixels into a continuous density's data (Theis et al. 2016). */
export function dequantize(x: tf.Tensor, seed: number, levels = 256): tf.Tensor {
  const delta = greyLevelWidth(levels);
  return tf.tidy(() => tf.add(x, tf.randomUniform(x.shape, -delta / 2, delta / 2, 'float32', seed)));
}

/**
 * nats per image → bits per dimension of the discrete data: nats/(D·ln 2) − log₂ Δ. An upper bound on the discrete
 * negative log-likelihood when `nats` is −ELBO on dequantised pixels (see the header).
 */
export function bitsPerDim<T extends tf.Tensor>(nats: T, dims: number, levels = 256): T {
  checkCount(dims, 'bitsPerDim: dims');
  const offset = -Math.log2(greyLevelWidth(levels));
  return tf.tidy(() => tf.add(tf.div(nats, dims * Math.LN2), offset) as T);
}

/** The ELBO's terms per example [B], in nats (see the header). */
export interface ElboTerms { recon: tf.Tensor1D; kl: tf.Tensor1D; negElbo: tf.Tensor1D }

export interface ElboOptions {
  classes?: tf.Tensor1D;
  /** ε of the reparameterisation ([B, latentDim]); or `seed` to draw it. */
  noise?: tf.Tensor2D;
  seed?: number;
}

/** −ELBO of x (already dequantised, if wanted) with one reparameterised draw of z: recon, kl and their sum, per image. */
export function elbo(vae: Vae, x: tf.Tensor, opts: ElboOptions = {}): ElboTerms {
  const noiseSeed = seedStream(opts.seed).next();
  const { mu, logvar } = vae.encode(x, opts.classes);
  const terms = tf.tidy(() => {
    const z = reparameterize(mu, logvar, opts.noise ?? noiseSeed);
    const recon = gaussianNll(x, vae.decode(z, opts.classes), vae.logSigma);
    const kl = gaussianKl(mu, logvar);
    return { recon, kl, negElbo: tf.add(recon, kl) as tf.Tensor1D };
  });
  tf.dispose([mu, logvar]);
  return terms;
}

export interface VaeStepOptions {
  lr: number;
  /** Seeds the step's draws (ε, dequantisation noise): pass a new one per step. */
  seed: number;
  /** Weight of the KL term in the loss (β-VAE; default 1: the loss is −ELBO). The reported terms are unweighted. */
  beta?: number;
  /** Add uniform noise of one grey level to x first (default true: makes bitsPerDim a bound; see the header). */
  dequantize?: boolean;
  /** Grey levels of the data (default 256). */
  levels?: number;
}

/** Batch means of the step's terms (scalars, not read: the caller awaits their .data() and checks them for NaN). */
export interface VaeStepResult { loss: tf.Scalar; recon: tf.Scalar; kl: tf.Scalar; negElbo: tf.Scalar; bitsPerDim: tf.Scalar }

/**
 * The step's loss (mean over images of recon + β·kl), its gradients for every parameter in vae.params order, and the
 * unweighted terms; nothing applied, nothing read (lib/train's VaeTrainer hands loss and gradients to its update).
 */
export function vaeLossGrads(
  vae: Vae, batch: { x: tf.Tensor; classes?: tf.Tensor1D }, opts: Omit<VaeStepOptions, 'lr'>,
): VaeStepResult & { grads: tf.Tensor[] } {
  const beta = opts.beta ?? 1;
  if (!(beta >= 0 && Number.isFinite(beta))) throw new InvalidArgumentError(`VAE step: beta must be a finite number ≥ 0, got ${beta}`);
  if (!Number.isInteger(opts.seed)) throw new InvalidArgumentError(`VAE step: seed must be an integer, got ${opts.seed}`);
  const c = vae.config;
  checkStepInputs('VAE step', batch.x, c.imageSize, c.channels, vae.numClasses, batch.classes);
  const seeds = seedStream(opts.seed);
  const noiseSeed = seeds.next();
  const dqSeed = seeds.next();
  const levels = opts.levels ?? 256;
  const x = (opts.dequantize ?? true) ? dequantize(batch.x, dqSeed, levels) : batch.x.clone();
  let kept: Omit<VaeStepResult, 'loss'> | undefined;
  try {
    const { value, grads } = orderedGrads(() => {
      const t = elbo(vae, x, { classes: batch.classes, seed: noiseSeed });
      const negElbo = tf.mean(t.negElbo) as tf.Scalar;
      kept = {
        recon: tf.keep(tf.mean(t.recon) as tf.Scalar),
        kl: tf.keep(tf.mean(t.kl) as tf.Scalar),
        negElbo: tf.keep(negElbo),
        bitsPerDim: tf.keep(bitsPerDim(negElbo, vae.dims, levels)),
      };
      return tf.mean(tf.add(t.recon, tf.mul(t.kl, beta))) as tf.Scalar;
    }, vae.params.variables(), vae.params.names());
    return { loss: value, grads, ...(kept as Omit<VaeStepResult, 'loss'>) };
  } catch (e) {
    if (kept) tf.dispose(Object.values(kept));
    throw e;
  } finally {
    x.dispose();
  }
}

/**
 * One optimizer step on a batch: vaeLossGrads, then optimizer.apply(grads, lr) (lib/train's Adam built on
 * vae.params.variables()). Builds tensors only.
 */
export function vaeTrainStep(
  vae: Vae, optimizer: StepOptimizer, batch: { x: tf.Tensor; classes?: tf.Tensor1D }, opts: VaeStepOptions,
): VaeStepResult {
  checkLr(opts.lr, 'VAE step: lr');
  const { grads, ...result } = vaeLossGrads(vae, batch, opts);
  try {
    optimizer.apply(grads, opts.lr);
  } catch (e) {
    tf.dispose(Object.values(result));
    throw e;
  } finally {
    tf.dispose(grads);
  }
  return result;
}
