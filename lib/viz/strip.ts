/**
 * One image across timesteps — a forward (noising) or reverse (sampling) trajectory — as a one-row PNG with a
 * `t=…` caption under each frame.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../errors';
import { GridOptions, imageGrid } from './grid';

export interface StripOptions extends Omit<GridOptions, 'cols' | 'labels'> {
  /** Which image of each batched snapshot to show (default 0). */
  index?: number;
  /** Caption prefix (default 't='); timesteps are printed as given (code convention 0 … T−1). */
  prefix?: string;
}

/**
 * frames: either one tensor [F, H, W, C] (frame f = timestep f), or a list of F snapshots, each [H, W, C] or
 * [B, H, W, C] (image `index` of each is taken) — e.g. the x_t a sampler kept at a few steps.
 * timesteps: one per frame, used for captions. Async like imageGrid (one awaited read).
 */
export async function trajectoryStrip(frames: tf.Tensor4D | tf.Tensor[], timesteps: number[], opts: StripOptions = {}): Promise<Buffer> {
  const index = opts.index ?? 0;
  const count = Array.isArray(frames) ? frames.length : frames.shape[0];
  if (count === 0) throw new InvalidArgumentError('trajectoryStrip: no frames given');
  if (timesteps.length !== count) {
    throw new ShapeMismatchError(`trajectoryStrip: ${timesteps.length} timesteps for ${count} frames; give one per frame`);
  }
  const stacked = tf.tidy(() => {
    if (!Array.isArray(frames)) {
      if (frames.rank !== 4) throw new ShapeMismatchError(`trajectoryStrip: frames must be [F, H, W, C], got [${frames.shape.join(', ')}]`);
      return frames.clone();
    }
    const one = frames.map((f, i) => {
      if (f.rank === 3) return f as tf.Tensor3D;
      if (f.rank === 4) {
        if (!Number.isInteger(index) || index < 0 || index >= f.shape[0]) {
          throw new InvalidArgumentError(`trajectoryStrip: index ${index} is outside the batch of frame ${i} (size ${f.shape[0]})`);
        }
        return tf.squeeze(tf.slice(f, [index, 0, 0, 0], [1, -1, -1, -1]), [0]) as tf.Tensor3D;
      }
      throw new ShapeMismatchError(`trajectoryStrip: frame ${i} must be [H, W, C] or [B, H, W, C], got [${f.shape.join(', ')}]`);
    });
    const shape0 = one[0].shape.join(',');
    one.forEach((f, i) => {
      if (f.shape.join(',') !== shape0) throw new ShapeMismatchError(`trajectoryStrip: frame ${i} is [${f.shape}], frame 0 is [${shape0}]`);
    });
    return tf.stack(one) as tf.Tensor4D;
  });
  try {
    const prefix = opts.prefix ?? 't=';
    return await imageGrid(stacked, { ...opts, cols: count, labels: timesteps.map((t) => `${prefix}${t}`) });
  } finally {
    stacked.dispose();
  }
}
