/**
 * The contract between solution notebooks, learner notebooks, self-check cells and the grader.
 *
 * An exercise is ONE function that the learner writes in a marked code cell. The cell is self-contained: it is graded
 * alone, as if run in a fresh notebook with only `tf` defined (helpers it needs go in the same cell). It may import
 * '@tensorflow/tfjs' and only the lib modules its spec allows (`libAllowed`, see policy.ts), and defines the function
 * named `functionName`. The function may be async (e.g. to read a value with `await t.data()`): its result is awaited.
 * Arguments and results cross a process boundary when graded, so they are limited to `Value`s:
 * numbers, booleans, strings, tensors, and (nested) arrays / plain objects of those — never class instances
 * (pass e.g. `schedule.alphasCumprod` as a number[] instead of the schedule object).
 *
 * Cell markers in solutions/*.ipynb (the generator turns these into learner notebooks):
 *   // EXERCISE <id>: <title>          first line of the cell; id = '<nn>-<kebab-name>', e.g. '01-q-sample'
 *   // BEGIN SOLUTION                  the lines between these two markers are replaced in notebooks/
 *   // END SOLUTION                    by: throw new Error('Exercise <id> is not implemented yet (TODO)')
 * and the cell's metadata carries { "tags": ["exercise"], "exercise": { "id": "<id>" } }.
 * The next code cell is the self-check:  await selfCheck(<spec>)  from './lib/exercises/selfcheck', which checks the
 * exercise cell's last run the way the grader will (see selfcheck.ts).
 */
import type * as tf from '@tensorflow/tfjs';

export type Value =
  | number
  | boolean
  | string
  | null
  | tf.Tensor
  | Value[]
  | { [key: string]: Value };

/** One input to check: the arguments the learner's function is called with. */
export interface CheckCase {
  /** Short description shown in reports, e.g. 't = T-1 (last step)'. */
  name: string;
  args: Value[];
}

export interface Tolerance {
  /** |got - expected| <= atol + rtol * |expected|, elementwise. */
  atol: number;
  rtol: number;
}

export interface ExerciseSpec {
  /** '<nn>-<kebab-name>', e.g. '01-q-sample'. Unique across the course. */
  id: string;
  /** Notebook file name without extension, e.g. '01-forward-process'. */
  notebook: string;
  /** Name of the function the learner defines in the exercise cell. */
  functionName: string;
  title: string;
  /** Public cases, deterministic for a given seed (random inputs + edge cases). Builds tensors: call inside tf.tidy-free code and dispose after use. */
  cases(seed: number): CheckCase[];
  /** lib's own implementation, applied to the same arguments (the single source of truth). */
  reference(...args: Value[]): Value;
  tolerance: Tolerance;
  /** One or two sentences that help a learner whose answer failed. */
  hint: string;
  /** Known-wrong answers (off-by-one t, wrong sign, missing sqrt …) that the checks MUST reject. Tests assert they fail. */
  wrong: Record<string, (...args: Value[]) => Value>;
  /**
   * Lib modules the exercise cell may import as helpers, as keys under lib/ ('schedule'); default none. Never the module
   * that holds the answer: the grader's lib view replaces every other lib module by a stub that throws (policy.ts).
   */
  libAllowed?: string[];
}
