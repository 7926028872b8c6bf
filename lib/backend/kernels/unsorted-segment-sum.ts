/**
 * UnsortedSegmentSum for the wasm backend: out[s, …] = Σ_{i : ids[i] = s} x[i, …].
 * It is the gradient of tf.gather (e.g. a class-embedding lookup), which wasm does not ship.
 * Ids outside [0, numSegments) are dropped, as in TensorFlow. A plain JS loop over the heap: the work is one
 * add per input element, far below the cost of the layers around it.
 */
import * as tf from '@tensorflow/tfjs';
import { BackendWasm, Info, heap } from './wasm-calls';

export const unsortedSegmentSumKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const be = backend as BackendWasm;
  const { x, segmentIds } = inputs as { x: Info; segmentIds: Info };
  const { numSegments } = attrs as unknown as tf.UnsortedSegmentSumAttrs;
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new Error(`UnsortedSegmentSum on wasm: x must be float32 or int32, got ${x.dtype}`);
  }
  const idRank = segmentIds.shape.length;
  const inner = tf.util.sizeFromShape(x.shape.slice(idRank));
  const out = be.makeOutput([numSegments, ...x.shape.slice(idRank)], x.dtype);
  const dst = heap(be, out); // views after the allocation above (heap growth would detach earlier ones)
  const src = heap(be, x);
  const ids = heap(be, segmentIds);
  dst.fill(0);
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue;
    const s0 = i * inner;
    const d0 = s * inner;
    for (let k = 0; k < inner; k++) dst[d0 + k] += src[s0 + k];
  }
  return out;
};
