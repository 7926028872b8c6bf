/**
 * MaxPoolGrad for the wasm backend: dy of each pooling window goes to the window's maximum (the first one in
 * row-major order on ties, as the cpu backend does). The kernel shipped with @tensorflow/tfjs-backend-wasm 4.22
 * routes some windows' gradient to the wrong pixel (3 of 72 windows in a 2×2/stride-2 test; see test/backend),
 * which would silently mis-train the digit classifier used for evaluation.
 */
import * as tf from '@tensorflow/tfjs';
import { BackendWasm, Info, heap } from './wasm-calls';

export const maxPoolGradKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const be = backend as BackendWasm;
  const { dy, input } = inputs as { dy: Info; input: Info };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as tf.MaxPoolGradAttrs;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  const { batchSize, inHeight, inWidth, inChannels: ch, outHeight, outWidth, filterHeight, filterWidth,
    strideHeight, strideWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const out = be.makeOutput(input.shape, 'float32');
  const dx = heap(be, out); // views after the allocation (heap growth would detach earlier ones)
  const x = heap(be, input);
  const g = heap(be, dy);
  dx.fill(0);
  for (let b = 0; b < batchSize; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      const y0 = oy * strideHeight - top;
      for (let ox = 0; ox < outWidth; ox++) {
        const x0 = ox * strideWidth - left;
        for (let c = 0; c < ch; c++) {
          let best = -Infinity;
          let at = -1;
          for (let fy = 0; fy < filterHeight; fy++) {
            const y = y0 + fy;
            if (y < 0 || y >= inHeight) continue;
            for (let fx = 0; fx < filterWidth; fx++) {
              const xx = x0 + fx;
              if (xx < 0 || xx >= inWidth) continue;
              const i = ((b * inHeight + y) * inWidth + xx) * ch + c;
              if (x[i] > best || at < 0) { best = x[i]; at = i; }
            }
          }
          if (at >= 0) dx[at] += g[((b * outHeight + oy) * outWidth + ox) * ch + c];
        }
      }
    }
  }
  return out;
};
