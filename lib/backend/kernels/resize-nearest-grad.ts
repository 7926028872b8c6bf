/**
 * ResizeNearestNeighborGrad (gradient of tf.image.resizeNearestNeighbor, i.e. of 2× nearest upsampling in a U-Net)
 * as the exact adjoint of the forward resize: each output pixel reads one source pixel, so the gradient adds dy back
 * onto that source pixel.
 *
 * Why: both shipped kernels are wrong somewhere (found by the adjoint tests in test/backend):
 *   cpu  (@tensorflow/tfjs-backend-cpu 4.22) offsets dy by the IMAGE's batch stride: every image after the first gets
 *        a wrong gradient; it also ignores halfPixelCenters;
 *   wasm (@tensorflow/tfjs-backend-wasm 4.22) is right by default but wrong with halfPixelCenters = true.
 */
import * as tf from '@tensorflow/tfjs';
import { BackendWasm, Info, heap } from './wasm-calls';

/** Source row (or column) that output index `o` of the forward nearest-neighbour resize reads, as tfjs defines it. */
export function nearestSource(o: number, inSize: number, outSize: number, alignCorners: boolean, halfPixelCenters: boolean): number {
  const aligned = alignCorners && outSize > 1;
  const ratio = (aligned ? inSize - 1 : inSize) / (aligned ? outSize - 1 : outSize);
  const frac = halfPixelCenters ? ratio * (o + 0.5) : ratio * o;
  const nearest = Math.min(inSize - 1, alignCorners ? Math.round(frac) : Math.floor(frac));
  return halfPixelCenters ? Math.max(0, nearest) : nearest;
}

/** dx [B, inH, inW, C] from dy [B, outH, outW, C] (NHWC, flat arrays). */
export function resizeNearestGradValues(
  dy: ArrayLike<number>, dyShape: number[], imagesShape: number[], alignCorners: boolean, halfPixelCenters: boolean,
): Float32Array {
  const [batch, inH, inW, ch] = imagesShape;
  const [, outH, outW] = dyShape;
  const srcRow = Array.from({ length: outH }, (_, y) => nearestSource(y, inH, outH, alignCorners, halfPixelCenters));
  const srcCol = Array.from({ length: outW }, (_, x) => nearestSource(x, inW, outW, alignCorners, halfPixelCenters));
  const dx = new Float32Array(batch * inH * inW * ch);
  for (let b = 0; b < batch; b++) {
    for (let y = 0; y < outH; y++) {
      const rowBase = (b * inH + srcRow[y]) * inW;
      for (let x = 0; x < outW; x++) {
        const s0 = ((b * outH + y) * outW + x) * ch;
        const d0 = (rowBase + srcCol[x]) * ch;
        for (let c = 0; c < ch; c++) dx[d0 + c] += dy[s0 + c];
      }
    }
  }
  return dx;
}

/** The cpu backend's data access, as far as this kernel needs it. */
interface CpuBackend {
  data: { get(dataId: object): { values: ArrayLike<number> } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}

export const resizeNearestNeighborGradCpuKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const be = backend as unknown as CpuBackend;
  const { images, dy } = inputs as { images: tf.TensorInfo; dy: tf.TensorInfo };
  const { alignCorners, halfPixelCenters } = attrs as unknown as tf.ResizeNearestNeighborGradAttrs;
  const dx = resizeNearestGradValues(be.data.get(dy.dataId).values, dy.shape, images.shape, alignCorners, !!halfPixelCenters);
  return be.makeTensorInfo(images.shape, 'float32', dx);
};

export const resizeNearestNeighborGradWasmKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const be = backend as BackendWasm;
  const { images, dy } = inputs as { images: Info; dy: Info };
  const { alignCorners, halfPixelCenters } = attrs as unknown as tf.ResizeNearestNeighborGradAttrs;
  const dx = resizeNearestGradValues(heap(be, dy), dy.shape, images.shape, alignCorners, !!halfPixelCenters);
  const out = be.makeOutput(images.shape, 'float32');
  heap(be, out).set(dx);
  return out;
};
