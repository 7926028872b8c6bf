/**
 * Named errors: bad input must say what was wrong and what was expected, never travel on as NaN.
 * Use the most specific class; the message names the argument, the value received and what is allowed.
 */
export class DiffusionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** An argument outside its allowed range or set (T <= 0, beta outside (0, 1), steps > T, unknown split …). */
export class InvalidArgumentError extends DiffusionError {}

/** Tensor shapes that do not fit together. */
export class ShapeMismatchError extends DiffusionError {}

/** A NaN or ±Infinity where finite numbers were required (a model output while sampling, a training loss …). */
export class NonFiniteError extends DiffusionError {}

/** A file (checkpoint, dataset cache, notebook) that cannot be read or does not match what was expected. */
export class CorruptFileError extends DiffusionError {}

/** A backend or package that was asked for but cannot be loaded here. */
export class BackendUnavailableError extends DiffusionError {}

/**
 * A WebGPU error that tfjs would otherwise only log: a validation error, out-of-memory or a lost device
 * (lib/backend/webgpu-guard.ts), a result lost because its command buffer was invalidated by such an error, or a
 * synchronous read (dataSync) of a GPU tensor, which Node cannot do. `kind` says which.
 */
export class WebGpuError extends DiffusionError {
  constructor(message: string, readonly kind: WebGpuErrorKind) {
    super(message);
  }
}

export type WebGpuErrorKind = 'validation' | 'out-of-memory' | 'internal' | 'device-lost' | 'lost-result' | 'sync-read';
