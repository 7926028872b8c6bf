/**
 * Every exercise of the course, found in the spec modules beside this file: lib/exercises/<nn>-<name>.ts, each exporting
 * one or more ExerciseSpec objects. Discovered at run time, so a new notebook's spec file is picked up without editing a
 * list here (the grader and the tests that loop over all exercises call allSpecs()).
 */
import * as fs from 'fs';
import * as path from 'path';
import { CorruptFileError, InvalidArgumentError } from '../errors';
import type { ExerciseSpec } from './types';

/** Spec modules are named like '01-forward-process.ts'. */
export const SPEC_FILE = /^\d\d-[a-z0-9-]+\.ts$/;

/** Structural test for an ExerciseSpec export (modules may export helpers too). */
export function isExerciseSpec(x: unknown): x is ExerciseSpec {
  if (typeof x !== 'object' || x === null) return false;
  const s = x as Partial<ExerciseSpec>;
  return (
    typeof s.id === 'string' &&
    typeof s.functionName === 'string' &&
    typeof s.cases === 'function' &&
    typeof s.reference === 'function' &&
    typeof s.tolerance === 'object' &&
    typeof s.wrong === 'object'
  );
}

/** The spec module files present in `dir` (default: this folder), sorted. */
export function specFiles(dir: string = __dirname): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => SPEC_FILE.test(f))
    .sort()
    .map((f) => path.join(dir, f));
}

/** Load the specs exported by the given modules; ids must be unique. */
export function loadSpecs(files: string[]): ExerciseSpec[] {
  const byId = new Map<string, { spec: ExerciseSpec; file: string }>();
  for (const file of files) {
    let mod: Record<string, unknown>;
    try {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      mod = require(file);
    } catch (e) {
      throw new CorruptFileError(`exercise spec module ${file} failed to load: ${(e as Error).message}`);
    }
    for (const value of Object.values(mod)) {
      if (!isExerciseSpec(value)) continue;
      const seen = byId.get(value.id);
      if (seen && seen.spec !== value) {
        throw new InvalidArgumentError(`exercise id '${value.id}' is defined twice: in ${seen.file} and ${file}; ids must be unique`);
      }
      byId.set(value.id, { spec: value, file });
    }
  }
  return [...byId.values()].map((v) => v.spec).sort((a, b) => a.id.localeCompare(b.id));
}

/** Every exercise spec of the course, sorted by id. */
export function allSpecs(): ExerciseSpec[] {
  return loadSpecs(specFiles());
}

/** The spec with this id, or an InvalidArgumentError listing the known ids. */
export function specById(id: string, specs: ExerciseSpec[] = allSpecs()): ExerciseSpec {
  const s = specs.find((x) => x.id === id);
  if (!s) throw new InvalidArgumentError(`unknown exercise id '${id}'; known: ${specs.map((x) => x.id).join(', ') || '(none)'}`);
  return s;
}
