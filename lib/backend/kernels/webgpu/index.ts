/**
 * The course's kernels for tfjs' webgpu backend (@tensorflow/tfjs-backend-webgpu 4.22): fewer dispatches and less GPU
 * time for a training step. Registering them is lib/backend's job (webgpuKernelConfigs); registerWebGPUKernels is the
 * same for scripts and tests, and keeps tfjs' originals reachable for comparisons.
 */
import * as tf from '@tensorflow/tfjs';
import { adamUpdateConfig, gradControlConfig } from './adam';
import { conv2dBackpropFilterConfig } from './conv2d-backprop-filter';
import { groupNormConfig, groupNormGradConfig } from './group-norm';

export {
  ADAM_UPDATE_KERNEL, GRAD_CONTROL_KERNEL, adamApply, adamAttrs, adamUpdate, adamUpdateComposite, fusedAdamAvailable,
  gradientControl, gradientControlComposite, readControl, type AdamHyper, type AdamUpdateResult,
} from './adam';
export { chooseSplitK, MIN_STEPS_PER_SLICE, setSplitK, TARGET_WORKGROUPS, type SplitK } from './conv2d-backprop-filter';

/** Every course kernel for 'webgpu'. Registering one replaces tfjs' own kernel of that name (if any). */
export const webgpuKernelConfigs: tf.KernelConfig[] = [
  adamUpdateConfig, gradControlConfig, conv2dBackpropFilterConfig, groupNormConfig, groupNormGradConfig,
];

const originals = new Map<string, tf.KernelConfig | undefined>();

/**
 * Register webgpuKernelConfigs (idempotent), replacing tfjs' kernels of the same names without its "already registered"
 * warning. Returns the names registered.
 */
export function registerWebGPUKernels(): string[] {
  for (const config of webgpuKernelConfigs) {
    const current = tf.getKernel(config.kernelName, 'webgpu');
    if (current?.kernelFunc === config.kernelFunc) continue;
    if (!originals.has(config.kernelName)) originals.set(config.kernelName, current);
    if (current) tf.unregisterKernel(config.kernelName, 'webgpu');
    tf.registerKernel(config);
  }
  return webgpuKernelConfigs.map((c) => c.kernelName);
}

/** Put tfjs' own kernels back (for a comparison in the same process); the course's are registered again later. */
export function unregisterWebGPUKernels(): void {
  for (const config of webgpuKernelConfigs) {
    if (tf.getKernel(config.kernelName, 'webgpu')?.kernelFunc !== config.kernelFunc) continue;
    tf.unregisterKernel(config.kernelName, 'webgpu');
    const original = originals.get(config.kernelName);
    if (original) tf.registerKernel(original);
  }
}
