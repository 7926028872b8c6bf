import { expect } from 'chai';
import { expectRejects } from '../math/helpers';
import * as tf from '@tensorflow/tfjs';
import { loadMnist } from '../../lib/data/mnist';
import { imageGrid, toByte } from '../../lib/viz/grid';
import { trajectoryStrip } from '../../lib/viz/strip';
import { decodePng } from './png';
import { InvalidArgumentError, NonFiniteError, ShapeMismatchError } from '../../lib/errors';

const grey = (d: { width: number; px: Uint8ClampedArray }, x: number, y: number) => {
  const i = (y * d.width + x) * 4;
  expect(d.px[i], `R=G=B at (${x}, ${y})`).to.equal(d.px[i + 1]);
  return d.px[i];
};
const darkPixelsIn = (d: { width: number; px: Uint8ClampedArray }, x0: number, y0: number, x1: number, y1: number) => {
  let n = 0;
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) if (d.px[(y * d.width + x) * 4] < 128) n++;
  return n;
};

describe('viz/grid', () => {
  // 3 images 4×5: all −1 (black) except image k has +1 (white) at (row k, col 2) and 0 at (0, 0).
  const make = () =>
    tf.tidy(() => {
      const v = new Float32Array(3 * 4 * 5).fill(-1);
      for (let k = 0; k < 3; k++) {
        v[k * 20 + k * 5 + 2] = 1;
        v[k * 20] = 0;
      }
      return tf.tensor4d(v, [3, 4, 5, 1]);
    });

  it('maps [-1,1] to bytes: −1 → 0, 0 → 128, 1 → 255; clips outside', () => {
    expect([toByte(-1, '[-1,1]'), toByte(0, '[-1,1]'), toByte(1, '[-1,1]')]).to.deep.equal([0, 128, 255]);
    expect([toByte(0, '[0,1]'), toByte(0.5, '[0,1]'), toByte(1, '[0,1]')]).to.deep.equal([0, 128, 255]);
    expect([toByte(-7, '[-1,1]'), toByte(3, '[-1,1]'), toByte(-Infinity, '[0,1]')]).to.deep.equal([0, 255, 0]);
  });

  it('draws every pixel at its place and value (scale 3, 2 columns, padding 2)', async () => {
    const before = tf.memory().numTensors;
    const x = make();
    const d = await decodePng(await imageGrid(x, { cols: 2, scale: 3 }));
    // Layout: width = 2 + 2·(5·3 + 2) = 36, height = 2 + 2·(4·3 + 2) = 30.
    expect([d.width, d.height]).to.deep.equal([36, 30]);
    for (let k = 0; k < 3; k++) {
      const x0 = 2 + (k % 2) * 17;
      const y0 = 2 + Math.floor(k / 2) * 14;
      for (let i = 0; i < 4; i++)
        for (let j = 0; j < 5; j++) {
          const want = i === k && j === 2 ? 255 : i === 0 && j === 0 ? 128 : 0;
          for (const [di, dj] of [[0, 0], [2, 2], [1, 2]]) expect(grey(d, x0 + 3 * j + dj, y0 + 3 * i + di), `img ${k} (${i},${j})`).to.equal(want);
        }
    }
    expect(grey(d, 0, 0)).to.equal(255); // white padding
    expect(grey(d, 35, 29)).to.equal(255); // empty 4th cell
    x.dispose();
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('an MNIST digit comes back byte for byte (white ink on black)', async () => {
    const test = loadMnist('test');
    const { x, y } = test.batch([3]);
    const d = await decodePng(await imageGrid(x, { scale: 1, padding: 0 }));
    expect([d.width, d.height]).to.deep.equal([28, 28]);
    for (let p = 0; p < 784; p++) expect(d.px[4 * p], `pixel ${p}`).to.equal(test.images[3 * 784 + p]);
    expect(Math.max(...test.images.subarray(3 * 784, 4 * 784))).to.equal(255);
    tf.dispose([x, y]);
  });

  it("range '[0,1]' and RGB input", async () => {
    const x = tf.tensor4d([1, 0, 0.5, 0, 1, 0], [1, 1, 2, 3]);
    const d = await decodePng(await imageGrid(x, { range: '[0,1]', scale: 1, padding: 0 }));
    expect(Array.from(d.px.subarray(0, 8))).to.deep.equal([255, 0, 128, 255, 0, 255, 0, 255]);
    x.dispose();
  });

  it('renders labels and a title (ink appears in the caption band, different text → different pixels)', async () => {
    const x = make();
    const plain = await decodePng(await imageGrid(x, { cols: 3, scale: 4 }));
    const a = await decodePng(await imageGrid(x, { cols: 3, scale: 4, labels: ['7', '8', '9'] }));
    const b = await decodePng(await imageGrid(x, { cols: 3, scale: 4, labels: ['1', '2', '3'] }));
    expect(a.height).to.be.greaterThan(plain.height);
    const band = [0, 2 + 16, a.width, a.height] as const; // below the first row of images
    expect(darkPixelsIn(a, ...band)).to.be.greaterThan(5);
    expect(Buffer.from(a.px).equals(Buffer.from(b.px))).to.equal(false);
    const t = await decodePng(await imageGrid(x, { cols: 3, scale: 4, title: 'hello' }));
    expect(darkPixelsIn(t, 0, 0, t.width, 12)).to.be.greaterThan(5);
    x.dispose();
  });

  it('rejects bad input with named errors', async () => {
    const x = make();
    const r3 = tf.zeros([4, 5, 1]);
    const empty = tf.zeros([0, 4, 5, 1]) as tf.Tensor4D;
    const twoCh = tf.zeros([1, 4, 5, 2]) as tf.Tensor4D;
    await expectRejects(() => imageGrid(r3 as unknown as tf.Tensor4D), ShapeMismatchError, /rank 4/);
    await expectRejects(() => imageGrid(empty), InvalidArgumentError, /no pixels/);
    await expectRejects(() => imageGrid(twoCh), ShapeMismatchError, /channels/);
    await expectRejects(() => imageGrid(x, { labels: ['a'] }), ShapeMismatchError, /1 labels for 3 images/);
    await expectRejects(() => imageGrid(x, { cols: 0 }), InvalidArgumentError, /cols/);
    await expectRejects(() => imageGrid(x, { scale: 1.5 }), InvalidArgumentError, /scale/);
    const nan = tf.tensor4d([0, NaN, 1, NaN], [1, 2, 2, 1]);
    await expectRejects(() => imageGrid(nan), NonFiniteError, /2 of 4 values are NaN/);
    tf.dispose([x, r3, empty, twoCh, nan]);
  });
});

describe('viz/strip', () => {
  it('shows image `index` of each snapshot in one row with t captions, leaving no tensors behind', async () => {
    const before = tf.memory().numTensors;
    // Snapshot f of a batch of 2: image 1 is uniform with value −1 + f·0.5 (0, 64, 128 … in bytes).
    const snaps = [0, 1, 2].map((f) =>
      tf.tidy(() => tf.concat([tf.fill([1, 4, 4, 1], 1), tf.fill([1, 4, 4, 1], -1 + f * 0.5)]) as tf.Tensor4D),
    );
    const png = await trajectoryStrip(snaps, [999, 500, 0], { index: 1, scale: 2 });
    const d = await decodePng(png);
    expect(d.width).to.equal(2 + 3 * (8 + 2));
    [0, 64, 128].forEach((want, f) => expect(grey(d, 2 + f * 10 + 3, 2 + 3)).to.equal(want));
    expect(darkPixelsIn(d, 0, 2 + 8, d.width, d.height)).to.be.greaterThan(5); // captions
    // A stacked [F, H, W, C] tensor gives the same picture as the list of its frames.
    const stacked = tf.tidy(() => tf.concat(snaps.map((s) => s.slice([1], [1]))) as tf.Tensor4D);
    expect((await trajectoryStrip(stacked, [999, 500, 0], { scale: 2 })).equals(png)).to.equal(true);
    tf.dispose([...snaps, stacked]);
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('rejects mismatched frames and timesteps', async () => {
    const before = tf.memory().numTensors;
    const a = tf.zeros([4, 4, 1]);
    const b = tf.zeros([5, 5, 1]);
    const batch = tf.zeros([2, 4, 4, 1]);
    await expectRejects(() => trajectoryStrip([a, a], [1]), ShapeMismatchError, /1 timesteps for 2 frames/);
    await expectRejects(() => trajectoryStrip([a, b], [1, 2]), ShapeMismatchError, /frame 1/);
    await expectRejects(() => trajectoryStrip([batch], [0], { index: 2 }), InvalidArgumentError, /index 2/);
    await expectRejects(() => trajectoryStrip([], []), InvalidArgumentError, /no frames/);
    tf.dispose([a, b, batch]);
    expect(tf.memory().numTensors).to.equal(before);
  });
});
