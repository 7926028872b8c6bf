/**
 * The hook for the course's own WGSL kernels on the webgpu backend: export each one's tfjs KernelConfig
 * (`{ kernelName, backendName: 'webgpu', kernelFunc }`) in this list. lib/backend/webgpu-kernels.ts registers every
 * entry after tfjs' own webgpu kernels (replacing a tfjs kernel of the same name, which it keeps for the tests),
 * before the backend is activated. A kernel runs its shader through `backend.runWebGPUProgram(program, …)`, so the
 * error guard (lib/backend/webgpu-guard.ts) covers it without further work.
 *
 * Empty on this branch: the kernels themselves (fused Adam, Conv2DBackpropFilter as implicit GEMM, GroupNorm+SiLU)
 * arrive from their own branch, one file per kernel family in this folder, each tested against the cpu backend.
 */
import type * as tf from '@tensorflow/tfjs';

export const webgpuKernelConfigs: readonly tf.KernelConfig[] = [];
