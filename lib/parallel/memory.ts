/** Memory figures for the benchmark and the data-parallel workers. */
import * as tf from '@tensorflow/tfjs';

/**
 * Size of the wasm backend's heap in bytes (undefined on other backends). It grows to the largest working set and
 * never shrinks, so its current size is also its peak.
 */
export function wasmHeapBytes(): number | undefined {
  if (tf.getBackend() !== 'wasm') return undefined;
  const wasm = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm;
  return wasm?.HEAPU8?.buffer.byteLength;
}

/** Peak resident set size of this process (all threads) so far, in bytes. */
export function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}
