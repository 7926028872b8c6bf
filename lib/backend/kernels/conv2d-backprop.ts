/**
 * Gradients of a 2-D convolution for the wasm backend, both expressed as ONE call of wasm's own XNNPACK Conv2D,
 * so they run at forward-convolution speed (wasm ships no filter gradient, and a naive-loop input gradient).
 *
 * Notation (NHWC): x [B, H, W, Ci], filter w [kh, kw, Ci, Co], dy [B, Ho, Wo, Co], stride s, padding top/left p.
 *   dw[i, j, c, o] = Σ_{b, y, x} xpad[b, y·s + i, x·s + j, c] · dy[b, y, x, o]
 *     → a convolution of x viewed as [Ci, H, W, B] ("batch" = Ci, "channels" = B) with dy viewed as the filter
 *       [Ho, Wo, B, Co], dilated by s; its [Ci, kh, kw, Co] output, transposed, is dw.
 *   dx[b, y, x, c] = Σ_{i, j, o} dy[b, (y + p − i)/s, (x + p − j)/s, o] · w[i, j, c, o]   (only where s divides)
 *     → a stride-1 convolution of dy with s−1 zeros inserted between its pixels, by the filter flipped in
 *       space with its in/out channels swapped, padded by kh − 1 − p on top.
 */
import * as tf from '@tensorflow/tfjs';
import {
  BackendWasm, Info, conv2dExplicit, dispose, heap, originals, slice, transpose,
} from './wasm-calls';

type Pad = tf.Conv2DBackpropFilterAttrs['pad'];

function convInfo(xShape: number[], filterShape: number[], strides: [number, number] | number, pad: Pad,
  dimRoundingMode: 'floor' | 'round' | 'ceil' | undefined, dataFormat: 'NHWC' | 'NCHW', kernel: string) {
  if (dataFormat !== 'NHWC') {
    // The wasm forward Conv2D rejects NCHW too, so no gradient of a wasm convolution can arrive here in NCHW.
    throw new Error(`${kernel} on wasm supports dataFormat 'NHWC' only, got '${dataFormat}'`);
  }
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number], filterShape as [number, number, number, number],
    strides, 1, pad, dimRoundingMode, false, 'channelsLast');
}

export const conv2DBackpropFilterKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const be = backend as BackendWasm;
  const { x, dy } = inputs as { x: Info; dy: Info };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const info = convInfo(x.shape, filterShape, strides, pad, dimRoundingMode, dataFormat, 'Conv2DBackpropFilter');
  const [batch, h, w, inC] = x.shape;
  const [kh, kw] = filterShape;
  const [, outH, outW] = dy.shape;
  const { strideHeight: sh, strideWidth: sw } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  // Rows of the padded input that the filter actually touches: −top … (outH−1)·sh + kh − 1 − top.
  let bottom = (outH - 1) * sh + kh - top - h;
  let right = (outW - 1) * sw + kw - left - w;
  const temps: Info[] = [];
  let xs = x;
  if (bottom < 0 || right < 0) {
    // Rows/columns past the last window are never read: crop them (the conv cannot take a negative padding).
    xs = slice(be, x, [0, 0, 0, 0], [batch, h + Math.min(bottom, 0), w + Math.min(right, 0), inC]);
    temps.push(xs);
    bottom = Math.max(bottom, 0);
    right = Math.max(right, 0);
  }
  const xT = transpose(be, xs, [3, 1, 2, 0]); // [Ci, H, W, B]
  const dyT = transpose(be, dy, [1, 2, 0, 3]); // [Ho, Wo, B, Co]
  temps.push(xT, dyT);
  const out = conv2dExplicit(be, xT, dyT, [sh, sw], [top, bottom], [left, right]); // [Ci, kh, kw, Co]
  temps.push(out);
  const dw = transpose(be, out, [1, 2, 0, 3]);
  dispose(be, ...temps);
  return dw;
};

/** w [kh, kw, Ci, Co] → w' [kh, kw, Co, Ci] with w'[i, j, o, c] = w[kh−1−i, kw−1−j, c, o]. */
function flipAndSwap(be: BackendWasm, filter: Info): Info {
  const [kh, kw, inC, outC] = filter.shape;
  const out = be.makeOutput([kh, kw, outC, inC], 'float32');
  const src = heap(be, filter);
  const dst = heap(be, out);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const s0 = ((kh - 1 - i) * kw + (kw - 1 - j)) * inC * outC;
      const d0 = (i * kw + j) * outC * inC;
      for (let c = 0; c < inC; c++) {
        for (let o = 0; o < outC; o++) dst[d0 + o * inC + c] = src[s0 + c * outC + o];
      }
    }
  }
  return out;
}

/** dy [B, Ho, Wo, C] → [B, (Ho−1)·sh + 1, (Wo−1)·sw + 1, C] with zeros between the original pixels. */
function zeroDilate(be: BackendWasm, dy: Info, sh: number, sw: number): Info {
  const [batch, outH, outW, ch] = dy.shape;
  const dh = (outH - 1) * sh + 1;
  const dw = (outW - 1) * sw + 1;
  const out = be.makeOutput([batch, dh, dw, ch], 'float32');
  const src = heap(be, dy);
  const dst = heap(be, out);
  dst.fill(0); // makeOutput's memory is not cleared
  for (let b = 0; b < batch; b++) {
    for (let y = 0; y < outH; y++) {
      for (let x = 0; x < outW; x++) {
        const s0 = ((b * outH + y) * outW + x) * ch;
        dst.set(src.subarray(s0, s0 + ch), ((b * dh + y * sh) * dw + x * sw) * ch);
      }
    }
  }
  return out;
}

export const conv2DBackpropInputKernel: tf.KernelFunc = (args) => {
  const { inputs, backend, attrs } = args;
  const be = backend as BackendWasm;
  const { dy, filter } = inputs as { dy: Info; filter: Info };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const info = convInfo(inputShape, filter.shape, strides, pad, dimRoundingMode, dataFormat, 'Conv2DBackpropInput');
  const [, h, w] = inputShape;
  const [kh, kw] = filter.shape;
  const [, outH, outW] = dy.shape;
  const { strideHeight: sh, strideWidth: sw } = info;
  const padTop = kh - 1 - info.padInfo.top;
  const padLeft = kw - 1 - info.padInfo.left;
  const padBottom = h - ((outH - 1) * sh + 1) - padTop + kh - 1;
  const padRight = w - ((outW - 1) * sw + 1) - padLeft + kw - 1;
  if (Math.min(padTop, padLeft, padBottom, padRight) < 0) {
    // Only explicit paddings wider than the filter get here ('same'/'valid' never do): use wasm's own loop.
    const original = originals.get('Conv2DBackpropInput');
    if (!original) throw new Error('Conv2DBackpropInput: the wasm package kernel was not captured');
    return original.kernelFunc(args);
  }
  const dilated = sh === 1 && sw === 1 ? dy : zeroDilate(be, dy, sh, sw);
  const flipped = flipAndSwap(be, filter);
  const dx = conv2dExplicit(be, dilated, flipped, [1, 1], [padTop, padBottom], [padLeft, padRight]);
  dispose(be, flipped);
  if (dilated !== dy) dispose(be, dilated);
  return dx;
};
