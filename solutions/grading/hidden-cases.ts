/**
 * Hidden edge cases, per exercise id, added to the graded cases (never shown to learners; the grader computes the
 * expected values with lib's reference). Each function gets the exercise's first hidden seed. Inputs must be Values.
 * Random inputs with other seeds come for free from points.json's hiddenSeeds; add cases here for edges that the
 * public cases do not cover (see docs/grading.md).
 */
import type { CheckCase } from '../../lib/exercises/types';

export const hiddenCases: Record<string, (seed: number) => CheckCase[]> = {
  // A schedule of a different length than the public cases use, so that hard-coded T or indices are caught.
  '01-alpha-bar': () => [{ name: 'T = 7, uneven betas', args: [[0.01, 0.2, 0.05, 0.5, 0.3, 0.9, 0.999]] }],
};
