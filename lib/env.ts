/**
 * Run-time switches read from the environment, in one place.
 *
 * DIFFUSION_FAST=1  shrinks training steps, batch sizes and sample counts so that every notebook
 *                   runs headlessly in a few minutes (the test suite sets it).
 */
export function isFastMode(): boolean {
  const v = process.env.DIFFUSION_FAST;
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

/** Pick `fast` in fast mode, `normal` otherwise (e.g. `steps = fastOr(20, 2000)`). */
export function fastOr<T>(fast: T, normal: T): T {
  return isFastMode() ? fast : normal;
}
