/**
 * Timing of one convolution layer's forward pass and both gradients on the ACTIVE backend, for `npm run bench` and
 * for comparing backends (speed is measured here, never asserted in tests). Medians of `reps` runs after a warm-up.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors';

export interface ConvLayerSpec {
  batch: number;
  size: number; // square input, size × size
  inChannels: number;
  outChannels: number;
  filter: number; // square filter
  stride: 1 | 2;
  pad: 'same' | 'valid';
}

export interface ConvLayerTiming {
  backend: string;
  forwardMs: number;
  filterGradMs: number;
  inputGradMs: number;
}

/** The layer measured for the closing note: batch 64, 28×28×32 → 32, 3×3, stride 1, 'same'. */
export const REALISTIC_CONV: ConvLayerSpec = { batch: 64, size: 28, inChannels: 32, outChannels: 32, filter: 3, stride: 1, pad: 'same' };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function timeIt(f: () => tf.Tensor, reps: number): number {
  f().dispose(); // warm-up: kernel set-up, operator caches, heap growth
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const out = f();
    out.dataSync(); // wait for the result, whatever the backend
    times.push(performance.now() - t0);
    out.dispose();
  }
  return median(times);
}

export function measureConvLayer(spec: ConvLayerSpec = REALISTIC_CONV, reps = 5): ConvLayerTiming {
  if (!Number.isInteger(reps) || reps < 1) throw new InvalidArgumentError(`reps must be an integer ≥ 1, got ${reps}`);
  const { batch, size, inChannels, outChannels, filter, stride, pad } = spec;
  const x = tf.randomNormal([batch, size, size, inChannels], 0, 1, 'float32', 1) as tf.Tensor4D;
  const w = tf.randomNormal([filter, filter, inChannels, outChannels], 0, 0.1, 'float32', 2) as tf.Tensor4D;
  const dy = tf.tidy(() => tf.onesLike(tf.conv2d(x, w, stride, pad)));
  const attrs = { strides: stride, pad, dataFormat: 'NHWC' as const };
  try {
    return {
      backend: tf.getBackend(),
      forwardMs: timeIt(() => tf.conv2d(x, w, stride, pad), reps),
      filterGradMs: timeIt(() => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy },
        { ...attrs, filterShape: w.shape }) as tf.Tensor, reps),
      inputGradMs: timeIt(() => tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: w },
        { ...attrs, inputShape: x.shape }) as tf.Tensor, reps),
    };
  } finally {
    tf.dispose([x, w, dy]);
  }
}
