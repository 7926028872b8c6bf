/**
 * The lib that an exercise's cell sees in the sandbox: every lib module, as code held in memory (nothing on disk), where
 * the modules the spec allows (libAllowed and what they load) are lib's real code, transpiled, and every other one — the
 * module holding the answer, lib/exercises with its references, lib/grading — is a stub whose loading throws the
 * policy message (lib/exercises/policy.ts). So lib's answer cannot be reached directly, through another lib module, by
 * a computed path, or by reading its source: inside the sandbox it does not exist.
 */
import { stubModule } from '../exercises/cell';
import { allowedLibModules, ExercisePolicyError, libModules, libUseMessage } from '../exercises/policy';
import type { ExerciseSpec } from '../exercises/types';

/** Never part of an exercise's view, whatever a spec says: the specs (with references) and the grader. */
const NEVER_ALLOWED = /^(exercises|grading)(\/|$)/;

/** Module key -> code for the sandbox's LibView (lib/exercises/cell.ts). */
export function buildLibView(libDir: string, spec: Pick<ExerciseSpec, 'id' | 'libAllowed'>): Record<string, string> {
  for (const k of spec.libAllowed ?? []) {
    if (NEVER_ALLOWED.test(k)) throw new ExercisePolicyError(`exercise ${spec.id}: libAllowed may not name ./lib/${k}`);
  }
  const allowed = allowedLibModules(libDir, spec);
  const view: Record<string, string> = {};
  for (const key of libModules(libDir)) {
    const code = NEVER_ALLOWED.test(key) ? undefined : allowed.get(key);
    view[key] = code ?? stubModule(libUseMessage(spec, key));
  }
  return view;
}
