/**
 * Thin typed wrappers that let a course kernel call the wasm backend's OWN kernels (Conv2D, Transpose, Slice …)
 * from inside a kernel function. Kernels cannot call tf ops (that would record on the gradient tape), so they
 * call other kernels' kernelFunc directly, the way tfjs' own backends do, and dispose their temporaries.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

export type { BackendWasm };
export type Info = tf.TensorInfo;

function wasmKernel(name: string): tf.KernelFunc {
  // The original kernels are captured before ours replace any of them (see wasm-kernels.ts).
  const k = originals.get(name) ?? tf.getKernel(name, 'wasm');
  if (!k) throw new Error(`wasm kernel '${name}' is not registered: is @tensorflow/tfjs-backend-wasm loaded?`);
  return k.kernelFunc;
}

/** Kernels of the wasm package that ours replace, kept so that we can still call (or fall back to) them. */
export const originals = new Map<string, tf.KernelConfig>();

export function run(backend: BackendWasm, name: string, inputs: tf.NamedTensorInfoMap, attrs: object = {}): Info {
  const out = wasmKernel(name)({ inputs, backend, attrs: attrs as tf.NamedAttrMap });
  return out as Info;
}

export function transpose(backend: BackendWasm, x: Info, perm: number[]): Info {
  return run(backend, 'Transpose', { x }, { perm });
}

/** NHWC conv2d, stride 1, with dilations and explicit [top, bottom] / [left, right] padding (all ≥ 0). */
export function conv2dExplicit(
  backend: BackendWasm, x: Info, filter: Info, dilations: [number, number],
  padH: [number, number], padW: [number, number],
): Info {
  return run(backend, 'Conv2D', { x, filter }, {
    strides: [1, 1], dilations, pad: [[0, 0], padH, padW, [0, 0]], dataFormat: 'NHWC', dimRoundingMode: undefined,
  });
}

export function slice(backend: BackendWasm, x: Info, begin: number[], size: number[]): Info {
  return run(backend, 'Slice', { x }, { begin, size });
}

export function dispose(backend: BackendWasm, ...infos: Info[]): void {
  for (const t of infos) backend.disposeData(t.dataId);
}

/** A view of a tensor's bytes on the wasm heap. Take views only after the last allocation: growth detaches them. */
export function heap(backend: BackendWasm, t: Info): Float32Array | Int32Array {
  return backend.typedArrayFromHeap(t) as Float32Array | Int32Array;
}
