/**
 * A DCGAN-style generative adversarial network (Goodfellow et al. 2014; Radford et al. 2016), optionally
 * class-conditional, the second baseline of "why diffusion?" (issue 14).
 *
 *   generator      G(z, y): [z; onehot(y)] → dense → 7×7×w → (GroupNorm + SiLU → nearest ×2 → 3×3 conv) per level
 *                  → GroupNorm + SiLU → 3×3 conv → tanh: an image in (−1, 1)            (conv-stacks.ts' decoder)
 *   discriminator  D(x, y): 3×3 stride-2 convs + LeakyReLU(0.2), no normalisation (28 → 14 → 7) → flatten φ(x)
 *                  → logit ψ(φ) + ⟨E[y], φ⟩ (the projection discriminator, Miyato & Koyama 2018)  (conv-stacks.ts' encoder)
 *
 * Choices, and why. DCGAN used batch norm in both networks; here the generator uses GroupNorm (one fused native
 * kernel, and a sample does not depend on the rest of its batch: no running statistics, 1 or 64 samples give the same
 * images) and the discriminator none at all, so that it scores real and fake images in ONE batch (their concatenation:
 * one convolution call each, no statistics mixed between the two halves). Nearest ×2 + conv instead of transposed
 * convolutions: no checkerboard artefacts, and its gradient exists on every backend the course runs.
 *
 * Losses, with D(x) = σ(logit), in the stable form −log σ(l) = softplus(−l), −log(1 − σ(l)) = softplus(l):
 *   discriminator              E_x softplus(−D_logit(x)) + E_z softplus(D_logit(G(z)))
 *   generator, non-saturating  E_z softplus(−D_logit(G(z)))    (= −log D(G(z)): strong gradients while D wins)
 *   generator, saturating      −E_z softplus(D_logit(G(z)))    (= log(1 − D(G(z))), the minimax game's; it vanishes
 *                                                                when D confidently rejects the fakes, early in training)
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../errors';
import { classEmbedding, type ClassEmbeddingParams } from '../nn/embedding';
import { createDense, dense, type DenseParams } from '../nn/layers';
import { fanInNormal, ParamStore } from '../nn/params';
import { seedStream } from '../random';
import { checkClasses, checkCount, checkLr, checkStepInputs, oneHotClasses, orderedGrads, type StepOptimizer } from './baseline-common';
import {
  checkConvStack, convDecoder, type ConvDecoderParams, convEncoder, type ConvEncoderParams, createConvDecoder, createConvEncoder,
  decoderRows, encoderRows,
} from './conv-stacks';
import { countUnder, type SummaryRow } from './types';

export interface GanConfig {
  kind: 'gan';
  /** Height = width of the images (28 for MNIST); divisible by 2^levels of each network. */
  imageSize: number;
  channels: number;
  /** Size of z ~ N(0, I). */
  latentDim: number;
  /** Generator channels per level, shallow → deep ([32, 64]: 7×7×64 → 14×14×32 → 28×28×32 → image). */
  generatorWidths: number[];
  /** Discriminator channels per level ([32, 64]: 28 → 14×14×32 → 7×7×64). */
  discriminatorWidths: number[];
  /** The generator's GroupNorm groups; must divide every generator width. */
  groups: number;
  /** Negative slope of the discriminator's LeakyReLU (default 0.2, DCGAN's). */
  leakySlope?: number;
  /**
   * 0 or absent: unconditional; otherwise labels 0 … numClasses−1 condition G and D. The null class numClasses (what
   * omitted labels mean) is learned only if training replaces some labels by it (label dropout, as the U-Net's trainer does).
   */
  numClasses?: number;
  /** Seed of the initial weights. */
  seed: number;
}

/**
 * The notebook's GAN: 48 / 96 channels in both networks, 64-dim z, class-conditional; 420,625 generator + 98,497
 * discriminator parameters. Its training step (D and G) at batch 64 took 0.7–0.8× the course U-Net's on the 2-core
 * machine (issue-14 report, shared machine).
 */
export const NOTEBOOK_GAN: GanConfig = {
  kind: 'gan', imageSize: 28, channels: 1, latentDim: 64, generatorWidths: [48, 96], discriminatorWidths: [48, 96],
  groups: 8, leakySlope: 0.2, numClasses: 10, seed: 0,
};

/** Adam's settings for GANs (Radford et al. 2016: β1 = 0.5 damps the oscillation of the two players); lr 2e-4 there. */
export const GAN_ADAM = { beta1: 0.5, beta2: 0.999, epsilon: 1e-8 };

export function validateGanConfig(c: GanConfig): void {
  const bad = (msg: string) => { throw new InvalidArgumentError(`GAN config: ${msg}`); };
  if (c.kind !== 'gan') bad(`kind must be 'gan', got '${c.kind}'`);
  checkConvStack('GAN config (generator)', c.imageSize, c.channels, c.generatorWidths, c.groups);
  checkConvStack('GAN config (discriminator)', c.imageSize, c.channels, c.discriminatorWidths);
  if (!(Number.isInteger(c.latentDim) && c.latentDim > 0)) bad(`latentDim must be a positive integer, got ${c.latentDim}`);
  if (c.leakySlope !== undefined && !(c.leakySlope >= 0 && c.leakySlope < 1)) bad(`leakySlope must be in [0, 1), got ${c.leakySlope}`);
  if (c.numClasses !== undefined && !(Number.isInteger(c.numClasses) && c.numClasses >= 0)) bad(`numClasses must be an integer ≥ 0, got ${c.numClasses}`);
  if (!Number.isInteger(c.seed)) bad(`seed must be an integer, got ${c.seed}`);
}

export class Gan {
  /** Both networks' parameters: names under 'generator.' and 'discriminator.' (one store: one checkpoint, one count). */
  readonly params: ParamStore;
  readonly numClasses: number;
  private readonly generator: ConvDecoderParams;
  private readonly disc: ConvEncoderParams;
  private readonly discOut: DenseParams;
  private readonly discClass?: ClassEmbeddingParams;

  constructor(readonly config: GanConfig) {
    validateGanConfig(config);
    const c = config;
    const s = (this.params = new ParamStore(c.seed));
    this.numClasses = c.numClasses ?? 0;
    const cond = this.numClasses > 0 ? this.numClasses + 1 : 0;
    this.generator = createConvDecoder(s, 'generator', c.latentDim + cond, c.imageSize, c.channels, c.generatorWidths, c.groups);
    this.disc = createConvEncoder(s, 'discriminator', c.imageSize, c.channels, c.discriminatorWidths, { kind: 'leakyRelu', slope: c.leakySlope ?? 0.2 });
    const f = this.disc.featureDim;
    this.discOut = createDense(s, 'discriminator.out', f, 1);
    if (this.numClasses > 0) {
      // rows of std 1/√F: the projection ⟨E[y], φ⟩ starts on the scale of ψ(φ) (lib/nn's default std 1 would swamp it)
      const table = s.create('discriminator.class.table', [this.numClasses + 1, f], fanInNormal(f));
      this.discClass = { table, numClasses: this.numClasses, embDim: f };
    }
  }

  /** G(z, y): z [B, latentDim] (classes int32 [B]; omitted → null class) → images [B, S, S, C] in (−1, 1). */
  generate(z: tf.Tensor2D, classes?: tf.Tensor1D): tf.Tensor4D {
    const l = this.config.latentDim;
    if (z.rank !== 2 || z.shape[1] !== l) throw new ShapeMismatchError(`GAN generate: z must be [B, ${l}], got [${z.shape}]`);
    return tf.tidy(() => {
      const onehot = oneHotClasses('GAN generate', this.numClasses, z.shape[0], classes);
      return convDecoder(this.generator, onehot ? tf.concat([z, onehot], 1) : z);
    });
  }

  /** D's logits: x [B, S, S, C] (classes [B]; omitted → null class) → [B]; σ(logit) is the probability "real". */
  discriminate(x: tf.Tensor, classes?: tf.Tensor1D): tf.Tensor1D {
    checkClasses('GAN discriminate', this.numClasses, x.shape[0], classes);
    return tf.tidy(() => {
      const phi = convEncoder(this.disc, x);
      let logit = tf.reshape(dense(this.discOut, phi), [-1]) as tf.Tensor1D;
      if (this.discClass) {
        const labels = classes ?? (tf.fill([x.shape[0]], this.numClasses, 'int32') as tf.Tensor1D);
        logit = tf.add(logit, tf.sum(tf.mul(classEmbedding(this.discClass, labels), phi), 1));
      }
      return logit;
    });
  }

  /** n images from z ~ N(0, I) drawn with `seed`. */
  sample(n: number, seed: number, classes?: tf.Tensor1D): tf.Tensor4D {
    checkCount(n, 'GAN sample: n');
    return tf.tidy(() => this.generate(tf.randomNormal([n, this.config.latentDim], 0, 1, 'float32', seed), classes));
  }

  /** The generator's variables in store order (build its Adam on exactly this list). */
  generatorVariables(): tf.Variable[] {
    return this.part('generator').map(([, v]) => v);
  }

  /** The discriminator's variables in store order (build its Adam on exactly this list). */
  discriminatorVariables(): tf.Variable[] {
    return this.part('discriminator').map(([, v]) => v);
  }

  /** Parameter names of 'generator' or 'discriminator', in store order. */
  partNames(which: 'generator' | 'discriminator'): string[] {
    return this.part(which).map(([n]) => n);
  }

  private part(which: 'generator' | 'discriminator'): [string, tf.Variable][] {
    return this.params.entries().filter(([n]) => n.startsWith(`${which}.`));
  }

  paramCount(): number {
    return this.params.count();
  }

  summary(): SummaryRow[] {
    const s = this.params;
    const rows = [...decoderRows(s, 'generator', this.generator, this.config.channels), ...encoderRows(s, 'discriminator', this.disc)];
    rows.push({ name: 'discriminator.out', outputShape: [1], params: countUnder(s, 'discriminator.out') });
    if (this.discClass) rows.push({ name: 'discriminator.class', outputShape: [1], params: countUnder(s, 'discriminator.class') });
    return rows;
  }

  dispose(): void {
    this.params.dispose();
  }
}

/**
 * softplus(x) = log(1 + eˣ) as max(x, 0) + log1p(e^−|x|): never overflows (e^−|x| ≤ 1) and keeps log1p's precision for
 * large |x|, on every backend whatever its own Softplus kernel does. Its gradient through relu and abs is σ(x)
 * exactly, at 0 too (relu' = 0 and |x|' = −1 there: 0 + ½).
 */
export function softplus<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.add(tf.relu(x), tf.log1p(tf.exp(tf.neg(tf.abs(x))))) as T);
}

function checkLogits(what: string, ...logits: tf.Tensor[]): void {
  for (const l of logits) if (l.rank !== 1) throw new ShapeMismatchError(`${what}: logits must be [B], got [${l.shape}]`);
}

/** −E log D(x) − E log(1 − D(G(z))) = mean softplus(−real) + mean softplus(fake), in nats. */
export function discriminatorLoss(realLogits: tf.Tensor1D, fakeLogits: tf.Tensor1D): tf.Scalar {
  checkLogits('discriminatorLoss', realLogits, fakeLogits);
  return tf.tidy(() => tf.add(tf.mean(softplus(tf.neg(realLogits))), tf.mean(softplus(fakeLogits))) as tf.Scalar);
}

export type GeneratorLossKind = 'non-saturating' | 'saturating';

/** The generator's loss on D's logits for fakes (see the header); default the non-saturating −E log D(G(z)). */
export function generatorLoss(fakeLogits: tf.Tensor1D, kind: GeneratorLossKind = 'non-saturating'): tf.Scalar {
  checkLogits('generatorLoss', fakeLogits);
  if (kind === 'non-saturating') return tf.tidy(() => tf.mean(softplus(tf.neg(fakeLogits))) as tf.Scalar);
  if (kind === 'saturating') return tf.tidy(() => tf.neg(tf.mean(softplus(fakeLogits))) as tf.Scalar);
  throw new InvalidArgumentError(`generatorLoss: kind must be 'non-saturating' or 'saturating', got '${kind}'`);
}

export interface GanStepOptions {
  lrG: number;
  lrD: number;
  /** Seeds z: pass a new one per step. */
  seed: number;
  generatorLoss?: GeneratorLossKind;
}

/**
 * Scalars of the step, not read (the caller awaits .data() and checks for NaN): both losses, and D's mean probability
 * "real" on the real batch and on the fakes, before D's update (DCGAN's D(x) and D(G(z))).
 */
export interface GanStepResult { dLoss: tf.Scalar; gLoss: tf.Scalar; dReal: tf.Scalar; dFake: tf.Scalar }

/** D's half of a step: its loss, gradients (in gan.discriminatorVariables() order) and mean probabilities "real". */
export interface DiscriminatorGrads { value: tf.Scalar; grads: tf.Tensor[]; dReal: tf.Scalar; dFake: tf.Scalar }

/**
 * discriminatorLoss(D(x), D(G(z))) and its gradients for D's variables, G fixed (the fakes are made outside the tape:
 * D's gradients need none of G's activations). Real and fake go through D as ONE batch (D has no normalisation, so each
 * image's logit is independent of the others). Builds tensors only; z and the inputs stay the caller's.
 */
export function discriminatorGrads(gan: Gan, x: tf.Tensor, classes: tf.Tensor1D | undefined, z: tf.Tensor2D): DiscriminatorGrads {
  const b = x.shape[0];
  const held: tf.Tensor[] = [];
  let probs: tf.Scalar[] = [];
  try {
    const fake = gan.generate(z, classes);
    held.push(fake);
    const both = tf.concat([x, fake], 0);
    held.push(both);
    const bothClasses = classes ? tf.concat([classes, classes], 0) : undefined;
    if (bothClasses) held.push(bothClasses);
    const d = orderedGrads(() => {
      const [real, fakeL] = tf.split(gan.discriminate(both, bothClasses), [b, b]) as tf.Tensor1D[];
      probs = [tf.keep(tf.mean(tf.sigmoid(real)) as tf.Scalar), tf.keep(tf.mean(tf.sigmoid(fakeL)) as tf.Scalar)];
      return discriminatorLoss(real, fakeL);
    }, gan.discriminatorVariables(), gan.partNames('discriminator'));
    return { value: d.value, grads: d.grads, dReal: probs[0], dFake: probs[1] };
  } catch (e) {
    tf.dispose(probs);
    throw e;
  } finally {
    tf.dispose(held);
  }
}

/** G's half of a step: generatorLoss(D(G(z))) through D as it is now, and its gradients for G's variables. */
export function generatorGrads(
  gan: Gan, classes: tf.Tensor1D | undefined, z: tf.Tensor2D, kind?: GeneratorLossKind,
): { value: tf.Scalar; grads: tf.Tensor[] } {
  return orderedGrads(
    () => generatorLoss(gan.discriminate(gan.generate(z, classes), classes), kind),
    gan.generatorVariables(), gan.partNames('generator'));
}

/** z for a step of `batch` images, drawn with the step's seed (ganTrainStep and lib/train's GanTrainer draw it alike). */
export function stepLatents(gan: Gan, batch: number, seed: number): tf.Tensor2D {
  return tf.randomNormal([batch, gan.config.latentDim], 0, 1, 'float32', seedStream(seed).next()) as tf.Tensor2D;
}

/** The checks of a step's inputs and options, made before any tape starts (baseline-common: a throw inside leaks). */
export function checkGanStep(gan: Gan, batch: { x: tf.Tensor; classes?: tf.Tensor1D }, seed: number): void {
  if (!Number.isInteger(seed)) throw new InvalidArgumentError(`GAN step: seed must be an integer, got ${seed}`);
  const c = gan.config;
  checkStepInputs('GAN step', batch.x, c.imageSize, c.channels, gan.numClasses, batch.classes);
}

/**
 * One alternating step on a real batch (labels, if conditional, are also the fakes' labels):
 *   z ~ N(0, I) (seeded); D: minimise discriminatorLoss(D(x), D(G(z))) with G fixed → optD.apply;
 *   G: minimise generatorLoss(D(G(z))) through the UPDATED D, with the same z → optG.apply.
 * optD / optG: lib/train's Adam built on gan.discriminatorVariables() / gan.generatorVariables() (GAN_ADAM settings).
 */
export function ganTrainStep(
  gan: Gan, optD: StepOptimizer, optG: StepOptimizer, batch: { x: tf.Tensor; classes?: tf.Tensor1D }, opts: GanStepOptions,
): GanStepResult {
  checkLr(opts.lrD, 'GAN step: lrD');
  checkLr(opts.lrG, 'GAN step: lrG');
  checkGanStep(gan, batch, opts.seed);
  const { x, classes } = batch;
  const z = stepLatents(gan, x.shape[0], opts.seed);
  const held: tf.Tensor[] = [];
  try {
    const d = discriminatorGrads(gan, x, classes, z);
    held.push(d.value, d.dReal, d.dFake);
    try {
      optD.apply(d.grads, opts.lrD);
    } finally {
      tf.dispose(d.grads);
    }
    const g = generatorGrads(gan, classes, z, opts.generatorLoss);
    held.push(g.value);
    try {
      optG.apply(g.grads, opts.lrG);
    } finally {
      tf.dispose(g.grads);
    }
    return { dLoss: d.value, gLoss: g.value, dReal: d.dReal, dFake: d.dFake };
  } catch (e) {
    tf.dispose(held);
    throw e;
  } finally {
    z.dispose();
  }
}
