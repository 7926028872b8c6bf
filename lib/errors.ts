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
