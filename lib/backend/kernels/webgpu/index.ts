/**
 * The course's kernels for tfjs' webgpu backend (@tensorflow/tfjs-backend-webgpu 4.22): fewer dispatches and less GPU
 * time for a training step. This module lists their KernelConfigs (webgpuKernelConfigs) and exports the ops that use
 * them; registering them is lib/backend/webgpu-kernels.ts's job (registerWebGpuKernels, the one registry, which also
 * keeps tfjs' originals for comparisons: withTfjsWebGpuKernels).
 */
import * as tf from '@tensorflow/tfjs';
import { adamUpdateConfig, gradControlConfig } from './adam';
import { conv2dBackpropFilterConfig } from './conv2d-backprop-filter';
import { emaUpdateConfig } from './ema';
import { groupNormConfig, groupNormGradConfig } from './group-norm';

export {
  ADAM_UPDATE_KERNEL, ControlMasks, GRAD_CONTROL_KERNEL, adamApply, adamAttrs, adamUpdate, adamUpdateComposite, fusedAdamAvailable,
  globalNorm, gradientControl, gradientControlComposite, readControl, type AdamHyper, type AdamUpdateResult, type Control, type ControlInputs,
} from './adam';
export { EMA_UPDATE_KERNEL, emaApply, emaUpdate, emaUpdateComposite, fusedEmaAvailable } from './ema';
export { chooseSplitK, MIN_STEPS_PER_SLICE, setSplitK, TARGET_WORKGROUPS, type SplitK } from './conv2d-backprop-filter';

/** Every course kernel for 'webgpu'. Registering one replaces tfjs' own kernel of that name (if any). */
export const webgpuKernelConfigs: tf.KernelConfig[] = [
  adamUpdateConfig, gradControlConfig, emaUpdateConfig, conv2dBackpropFilterConfig, groupNormConfig, groupNormGradConfig,
];
