/**
 * Image grids as PNG bytes (node-canvas): digits in rows of `cols`, enlarged with nearest-neighbour pixels, with an
 * optional caption under each cell. The trajectory strip (./strip) is a one-row grid.
 */
import { createCanvas } from 'canvas';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, NonFiniteError, ShapeMismatchError } from '../errors';

export interface GridOptions {
  /** Images per row (default: ceil(√B), at most B). */
  cols?: number;
  /** Integer enlargement of every pixel (default 2). */
  scale?: number;
  /** Value range of the input: '[-1,1]' (default, the course's convention) or '[0,1]'. Values outside are clipped. */
  range?: '[-1,1]' | '[0,1]';
  /** One caption per image, drawn under it (a class label, 't=500' …). */
  labels?: string[];
  /** Gap between cells in output pixels (default 2). */
  padding?: number;
  /** Optional title line above the grid. */
  title?: string;
}

export const BACKGROUND = '#ffffff';
const LABEL_FONT_PX = 11;

/** Maps one input value to a byte: [-1,1] → (v+1)/2·255, [0,1] → v·255, clipped and rounded. */
export function toByte(v: number, range: '[-1,1]' | '[0,1]'): number {
  const u = range === '[-1,1]' ? (v + 1) / 2 : v;
  return Math.round(Math.min(1, Math.max(0, u)) * 255);
}

function checkPositiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0) throw new InvalidArgumentError(`${name} must be a positive integer, got ${v}`);
}

/**
 * Render a batch of images [B, H, W, C] (C = 1 grey or 3 RGB) as one PNG.
 * Reads the tensor once (awaited) and leaves it to the caller: `show(await imageGrid(x))`.
 */
export async function imageGrid(images: tf.Tensor4D, opts: GridOptions = {}): Promise<Buffer> {
  if (images.rank !== 4) {
    throw new ShapeMismatchError(`imageGrid: images must be rank 4 [B, H, W, C], got shape [${images.shape.join(', ')}]`);
  }
  const [b, h, w, c] = images.shape;
  if (b === 0 || h === 0 || w === 0) throw new InvalidArgumentError(`imageGrid: no pixels to draw (shape [${images.shape.join(', ')}])`);
  if (c !== 1 && c !== 3) throw new ShapeMismatchError(`imageGrid: channels must be 1 or 3, got ${c}`);
  const range = opts.range ?? '[-1,1]';
  if (range !== '[-1,1]' && range !== '[0,1]') throw new InvalidArgumentError(`imageGrid: range must be '[-1,1]' or '[0,1]', got ${range}`);
  const cols = opts.cols ?? Math.min(b, Math.ceil(Math.sqrt(b)));
  const scale = opts.scale ?? 2;
  const pad = opts.padding ?? 2;
  checkPositiveInt('cols', cols);
  checkPositiveInt('scale', scale);
  if (!Number.isInteger(pad) || pad < 0) throw new InvalidArgumentError(`padding must be an integer ≥ 0, got ${pad}`);
  const labels = opts.labels;
  if (labels && labels.length !== b) {
    throw new ShapeMismatchError(`imageGrid: ${labels.length} labels for ${b} images; give one label per image`);
  }

  const rows = Math.ceil(b / cols);
  const labelH = labels ? LABEL_FONT_PX + 4 : 0;
  const titleH = opts.title ? LABEL_FONT_PX + 8 : 0;
  const cellW = w * scale;
  const cellH = h * scale + labelH;
  const width = pad + cols * (cellW + pad);
  const height = titleH + pad + rows * (cellH + pad);

  const data = await images.data();
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = BACKGROUND;
  ctx.fillRect(0, 0, width, height);

  // Write pixels straight into the canvas buffer: exact values, no smoothing.
  // NaN would silently become black: a broken sample must be visible as an error instead (±Infinity just clips).
  let nans = 0;
  for (let i = 0; i < data.length; i++) if (Number.isNaN(data[i])) nans++;
  if (nans > 0) throw new NonFiniteError(`imageGrid: ${nans} of ${data.length} values are NaN`);
  const img = ctx.getImageData(0, 0, width, height);
  const px = img.data;
  for (let k = 0; k < b; k++) {
    const x0 = pad + (k % cols) * (cellW + pad);
    const y0 = titleH + pad + Math.floor(k / cols) * (cellH + pad);
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++) {
        const src = ((k * h + i) * w + j) * c;
        const r = toByte(data[src], range);
        const g = c === 3 ? toByte(data[src + 1], range) : r;
        const bl = c === 3 ? toByte(data[src + 2], range) : r;
        for (let di = 0; di < scale; di++) {
          let dst = ((y0 + i * scale + di) * width + x0 + j * scale) * 4;
          for (let dj = 0; dj < scale; dj++, dst += 4) {
            px[dst] = r;
            px[dst + 1] = g;
            px[dst + 2] = bl;
            px[dst + 3] = 255;
          }
        }
      }
  }
  ctx.putImageData(img, 0, 0);

  ctx.fillStyle = '#000000';
  ctx.textBaseline = 'top';
  if (opts.title) {
    ctx.font = `bold ${LABEL_FONT_PX + 1}px sans-serif`;
    ctx.textAlign = 'left';
    ctx.fillText(opts.title, pad, 3, width - 2 * pad);
  }
  if (labels) {
    ctx.font = `${LABEL_FONT_PX}px sans-serif`;
    ctx.textAlign = 'center';
    labels.forEach((text, k) => {
      const x0 = pad + (k % cols) * (cellW + pad);
      const y0 = titleH + pad + Math.floor(k / cols) * (cellH + pad) + h * scale + 2;
      ctx.fillText(text, x0 + cellW / 2, y0, cellW);
    });
  }
  return canvas.toBuffer('image/png');
}
