/**
 * Which parts of lib an exercise cell may use. An exercise asks the learner to write a formula that lib already has; a
 * cell that calls lib's own function (directly, through another lib module, or by a computed path) has not written it.
 *
 * Rule: an exercise cell is graded alone, with `tf` and nothing else from the notebook. It may import only the lib
 * modules its spec names in `libAllowed` (helpers such as './lib/schedule'; none by default) — those modules and the
 * lib modules they load at run time. Every other lib module, the one holding the answer included, is replaced by a stub
 * that throws ExercisePolicyError with the message below:
 * - in the grader's sandbox, lib exists only as such a view (lib/grading/libview.ts): the real sources are not there
 *   to read, eval or reach by another path;
 * - the notebook's self-check evaluates the exercise cell the same way (selfcheck.ts), so the two never disagree.
 */
import * as fs from 'fs';
import * as path from 'path';
import { DiffusionError } from '../errors';
import type { ExerciseSpec } from './types';

/** A lib module the exercise's cell may not use was imported. */
export class ExercisePolicyError extends DiffusionError {}

/** The module key of a lib file: its path under lib/ without extension, '/'-separated ('schedule', 'nn/layers'). */
export function libModuleKey(libDir: string, file: string): string {
  return path.relative(libDir, file).split(path.sep).join('/').replace(/\.(ts|js)$/, '');
}

/** Every module of lib (.ts and .js files; declaration files and notebook links skipped), as keys, sorted. */
export function libModules(libDir: string): string[] {
  const keys: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const f = path.join(dir, e.name);
      if (e.isDirectory()) walk(f);
      else if (e.isFile() && /\.(ts|js)$/.test(e.name) && !e.name.endsWith('.d.ts')) keys.push(libModuleKey(libDir, f));
    }
  };
  walk(libDir);
  return [...new Set(keys)].sort();
}

/** The text a stub throws, the same in the grader and the self-check. */
export function libUseMessage(spec: Pick<ExerciseSpec, 'id' | 'libAllowed'>, key: string): string {
  const allowed = spec.libAllowed ?? [];
  const what = allowed.length > 0 ? `only ${allowed.map((m) => `./lib/${m}`).join(', ')} (and tf)` : 'no lib module (only tf)';
  return (
    `exercise ${spec.id} is graded on your own code: its cell may use ${what}, but it loaded ./lib/${key}. ` +
    `Write the formula with tf yourself (lib's version is what your answer is compared with).`
  );
}

/** Resolve a relative specifier written in lib module `from` to a lib module key, or undefined if it leaves lib. */
export function resolveLibSpecifier(keys: ReadonlySet<string>, from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const joined = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec)).replace(/\.(ts|js)$/, '');
  if (joined.startsWith('..') || joined.startsWith('/')) return undefined;
  if (keys.has(joined)) return joined;
  if (keys.has(`${joined}/index`)) return `${joined}/index`;
  return undefined;
}

/** Transpiled (CommonJS) code of a lib module: what actually runs, with type-only imports gone. */
export function transpileLibModule(libDir: string, key: string): string {
  const file = [`${key}.ts`, `${key}.js`].map((f) => path.join(libDir, f)).find((f) => fs.existsSync(f));
  if (!file) throw new ExercisePolicyError(`lib has no module ${key}`);
  const text = fs.readFileSync(file, 'utf8');
  if (file.endsWith('.js')) return text;
  // Loaded here, not at the top: the notebooks import this file, and most self-checks never need TypeScript.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const ts = require('typescript') as typeof import('typescript');
  const options = { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true };
  return ts.transpileModule(text, { compilerOptions: options, fileName: file }).outputText;
}

/** The lib modules a transpiled module requires at run time (relative specifiers that stay inside lib). */
export function runtimeLibImports(keys: ReadonlySet<string>, from: string, code: string): string[] {
  const found = new Set<string>();
  for (const m of code.matchAll(/\brequire\(\s*(["'])([^"'\n]+)\1\s*\)/g)) {
    const k = resolveLibSpecifier(keys, from, m[2]);
    if (k !== undefined) found.add(k);
  }
  return [...found].sort();
}

/**
 * The modules an exercise's cell may load: its spec's `libAllowed` and everything they load at run time, with each
 * module's transpiled code (what the grader's lib view holds). Throws if a named helper does not exist.
 */
export function allowedLibModules(libDir: string, spec: Pick<ExerciseSpec, 'id' | 'libAllowed'>): Map<string, string> {
  const keys = new Set(libModules(libDir));
  const out = new Map<string, string>();
  const queue = [...(spec.libAllowed ?? [])];
  for (const k of queue) {
    if (!keys.has(k)) throw new ExercisePolicyError(`exercise ${spec.id}: libAllowed names ./lib/${k}, which is not a lib module`);
  }
  while (queue.length > 0) {
    const k = queue.shift()!;
    if (out.has(k)) continue;
    const code = transpileLibModule(libDir, k);
    out.set(k, code);
    for (const dep of runtimeLibImports(keys, k, code)) if (!out.has(dep)) queue.push(dep);
  }
  return out;
}
