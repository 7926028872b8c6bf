// Test helper: decode PNG bytes (checking the signature) back into RGBA pixels with node-canvas.
import { expect } from 'chai';
import { createCanvas, loadImage } from 'canvas';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Decode PNG bytes back to RGBA pixels. */
export async function decodePng(png: Buffer): Promise<{ width: number; height: number; px: Uint8ClampedArray }> {
  expect(png.subarray(0, 8).equals(PNG_SIGNATURE), 'PNG signature').to.equal(true);
  const img = await loadImage(png);
  const c = createCanvas(img.width, img.height);
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0);
  return { width: img.width, height: img.height, px: ctx.getImageData(0, 0, img.width, img.height).data };
}
