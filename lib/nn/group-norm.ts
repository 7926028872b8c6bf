/**
 * Group normalization (Wu & He 2018), optionally followed by SiLU: the formula lives here once.
 *
 * On the wasm backend with the native kernels built (lib/backend/kernels/native-blas.ts) it runs as ONE fused kernel
 * with a hand-written gradient; elsewhere as the composite of tfjs ops below. Both compute the same function (tests
 * compare them, and the gradient against finite differences).
 */
import * as tf from '@tensorflow/tfjs';
import { GROUP_NORM_GRAD_KERNEL, GROUP_NORM_KERNEL, type GroupNormAttrs } from '../backend/kernels/native-blas';

/** The composite: each sample's channels split into groups, normalised over (H, W, channels of the group). */
export function groupNormComposite(
  x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor, groups: number, eps: number, silu: boolean,
): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  return tf.tidy(() => {
    // rank 4 [B, H·W, G, C/G] so that every backend reduces it
    const g = tf.reshape(x, [b, h * w, groups, c / groups]);
    const { mean, variance } = tf.moments(g, [1, 3], true);
    const normed = tf.mul(tf.sub(g, mean), tf.rsqrt(tf.add(variance, eps)));
    const y = tf.add(tf.mul(tf.reshape(normed, [b, h, w, c]), gamma), beta) as tf.Tensor4D;
    return silu ? tf.mul(y, tf.sigmoid(y)) : y;
  });
}

/** True when the active backend has the fused kernel (wasm with the native addon). */
export function fusedGroupNormAvailable(): boolean {
  return tf.getKernel(GROUP_NORM_KERNEL, tf.getBackend()) !== undefined;
}

let gradientRegistered = false;
function registerGradient(): void {
  if (gradientRegistered) return;
  gradientRegistered = true;
  tf.registerGradient({
    kernelName: GROUP_NORM_KERNEL,
    inputsToSave: ['x', 'gamma', 'beta'],
    gradFunc: (dy, saved, attrs) => {
      const [x, gamma, beta] = saved;
      const [dx, dgamma, dbeta] = tf.engine().runKernel(
        GROUP_NORM_GRAD_KERNEL, { x, gamma, beta, dy: dy as tf.Tensor }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
      return { x: () => dx, gamma: () => dgamma, beta: () => dbeta };
    },
  });
}

/** [SiLU](GroupNorm(x)·γ + β) for x [B, H, W, C], γ and β [C]; C must be divisible by `groups`. */
export function groupNormOp(
  x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor, groups: number, eps: number, silu: boolean,
): tf.Tensor4D {
  if (!fusedGroupNormAvailable() || x.dtype !== 'float32') return groupNormComposite(x, gamma, beta, groups, eps, silu);
  registerGradient();
  const attrs: GroupNormAttrs = { groups, eps, silu };
  return tf.engine().runKernel(GROUP_NORM_KERNEL, { x, gamma, beta }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}
