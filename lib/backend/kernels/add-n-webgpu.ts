/**
 * AddN for webgpu in chunks that fit the device's storage-buffer limit.
 *
 * tfjs-backend-webgpu 4.22's AddN binds every input plus the output as storage buffers of ONE shader
 * (AddNPackedProgram), so more than maxStorageBuffersPerShaderStage − 1 inputs (7 at WebGPU's default limit of 8)
 * is a validation error and the sum reads as zeros. Here: sum the first `limit − 1` inputs with tfjs' own kernel,
 * then repeatedly the running sum plus the next `limit − 2`, releasing each partial sum. Same values as one
 * AddN up to float rounding of the summation order.
 */
import type * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../../errors';

type BackendWithLimits = { device: { limits: { readonly [name: string]: number | undefined } }; disposeData(dataId: object): boolean };

/** Inputs one AddN shader can take on this backend's device (one storage buffer is the output). */
export function addNInputsPerShader(backend: unknown): number {
  const limit = (backend as BackendWithLimits).device?.limits?.maxStorageBuffersPerShaderStage;
  if (typeof limit !== 'number' || limit < 3) {
    // 3 is the least that makes progress (running sum + one input + output); WebGPU guarantees 4 even in compatibility mode
    throw new InvalidArgumentError(`AddN on webgpu: the device reports maxStorageBuffersPerShaderStage = ${limit}, expected ≥ 3`);
  }
  return limit - 1;
}

/** Wraps tfjs' webgpu AddN (`original`) so that any number of inputs stays within the device's limit. */
export function chunkedAddN(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const tensors = args.inputs as unknown as tf.TensorInfo[];
    const per = addNInputsPerShader(args.backend);
    if (tensors.length <= per) return original(args);
    const backend = args.backend as unknown as BackendWithLimits;
    const sum = (chunk: tf.TensorInfo[]) => original({ ...args, inputs: chunk as unknown as tf.NamedTensorInfoMap }) as tf.TensorInfo;
    let acc = sum(tensors.slice(0, per));
    for (let i = per; i < tensors.length; i += per - 1) {
      const next = sum([acc, ...tensors.slice(i, i + per - 1)]);
      backend.disposeData(acc.dataId);
      acc = next;
    }
    return acc;
  };
}
