/**
 * Exercises of notebook 10 · Why diffusion? References: lib/models/vae.ts (reparameterize) and lib/models/gan.ts
 * (generatorLoss, non-saturating).
 */
import * as tf from '@tensorflow/tfjs';
import { generatorLoss } from '../models/gan';
import { reparameterize } from '../models/vae';
import type { CheckCase, ExerciseSpec, Value } from './types';

const asT = (v: Value) => v as tf.Tensor;

// ------------------------------------------------------------------------------------------------ 10-reparameterize

/** z = μ + σ·ε with a caller-chosen σ (the wrong answers). */
function zWith(mu: Value, logvar: Value, eps: Value, sigma: (lv: tf.Tensor) => tf.Tensor, sign = 1): Value {
  return tf.tidy(() => tf.add(asT(mu), tf.mul(tf.mul(sigma(asT(logvar)), sign), asT(eps))));
}

export const reparameterizeSpec: ExerciseSpec = {
  id: '10-reparameterize',
  notebook: '10-why-diffusion',
  functionName: 'reparameterize',
  title: 'The reparameterisation trick: a draw from q(z | x) that gradients flow through',
  cases(seed: number): CheckCase[] {
    const n = (k: number, shape: number[], mean = 0, std = 1) => tf.randomNormal(shape, mean, std, 'float32', seed * 100 + k);
    // log σ² spread over [−6, 3] (σ from 0.05 to 4.5): every wrong σ differs from exp(½ log σ²) there
    const lv = (k: number, shape: number[]) => tf.tidy(() => tf.sub(tf.mul(tf.randomUniform(shape, 0, 1, 'float32', seed * 100 + k), 9), 6));
    const b = 2 + (seed % 3);
    return [
      { name: `a batch of ${b}, 4 latent dimensions`, args: [n(1, [b, 4]), lv(2, [b, 4]), n(3, [b, 4])] },
      { name: 'one image, 16 latent dimensions (the notebook VAE\'s size)', args: [n(4, [1, 16], 0, 2), lv(5, [1, 16]), n(6, [1, 16])] },
      { name: 'log σ² = 0 (σ = 1): z = μ + ε', args: [n(7, [3, 2]), tf.zeros([3, 2]), n(8, [3, 2])] },
      { name: 'a very confident posterior (log σ² = −20): z ≈ μ', args: [n(9, [2, 3]), tf.fill([2, 3], -20), n(10, [2, 3])] },
    ];
  },
  reference: (mu, logvar, eps) => reparameterize(mu as tf.Tensor2D, logvar as tf.Tensor2D, eps as tf.Tensor2D),
  tolerance: { atol: 1e-6, rtol: 1e-5 },
  hint: 'The encoder gives log σ², not σ: σ = exp(½·log σ²). Then z = μ + σ·ε, element by element, with the ε you are given (do not draw new noise: the randomness must come in from outside for gradients to reach μ and σ).',
  wrong: {
    varianceNotStd: (mu, lv, eps) => zWith(mu, lv, eps, (x) => tf.exp(x)),
    logvarAsStd: (mu, lv, eps) => zWith(mu, lv, eps, (x) => x),
    noHalf: (mu, lv, eps) => zWith(mu, lv, eps, (x) => tf.exp(tf.mul(x, 2))),
    minus: (mu, lv, eps) => zWith(mu, lv, eps, (x) => tf.exp(tf.mul(x, 0.5)), -1),
    noMean: (_mu, lv, eps) => tf.tidy(() => tf.mul(tf.exp(tf.mul(asT(lv), 0.5)), asT(eps))),
  },
};

// ------------------------------------------------------------------------------------------------ 10-generator-loss

export const generatorLossSpec: ExerciseSpec = {
  id: '10-generator-loss',
  notebook: '10-why-diffusion',
  functionName: 'nonSaturatingLoss',
  title: 'The non-saturating generator loss −E log D(G(z)), stable for any logit',
  cases(seed: number): CheckCase[] {
    const logits = (k: number, n: number, std: number) => tf.randomNormal([n], 0, std, 'float32', seed * 100 + k);
    const far = 100 + 37 * (seed % 5); // D rejects these fakes beyond what exp() can hold in float32
    return [
      { name: '16 logits around 0 (D undecided)', args: [logits(1, 16, 1)] },
      { name: '8 logits, D fairly sure (std 4)', args: [logits(2, 8, 4)] },
      { name: 'D confidently right and wrong: ±30', args: [tf.tensor1d([-30, 30, -29.5, 31])] },
      { name: `D certain the fakes are fake: logits −${far} and −${far + 50} (σ underflows to 0)`, args: [tf.tensor1d([-far, -far - 50, 2])] },
    ];
  },
  reference: (l) => generatorLoss(l as tf.Tensor1D, 'non-saturating'),
  tolerance: { atol: 1e-5, rtol: 1e-5 },
  hint: 'Mean over the fakes of −log σ(l) = log(1 + e^−l) = softplus(−l). Written as −log(sigmoid(l)) it is right for moderate logits but gives Infinity once σ(l) underflows to 0 (l below about −90 in float32): compute softplus(−l) stably, e.g. max(−l, 0) + log(1 + e^−|l|).',
  wrong: {
    saturating: (l) => generatorLoss(l as tf.Tensor1D, 'saturating'),
    naiveLogSigmoid: (l) => tf.tidy(() => tf.neg(tf.mean(tf.log(tf.sigmoid(asT(l)))))),
    discriminatorsFakeTerm: (l) => tf.tidy(() => tf.mean(tf.softplus(asT(l)))),
    sumNotMean: (l) => tf.tidy(() => tf.sum(tf.softplus(tf.neg(asT(l))))),
  },
};
