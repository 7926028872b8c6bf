/**
 * Evaluate an exercise cell alone, the same way in the grader's sandboxed runner and in the notebook's self-check: the
 * compiled cell (lib/grading/compile.ts) runs as a fresh CommonJS module in which `tf` is the only name defined besides
 * what it requires, and its `require` decides what lib looks like (policy.ts): the sandbox gives it the exercise's lib
 * view (LibView below), the self-check lib's real helpers that the spec allows and stubs for the rest.
 */
import * as path from 'path';
import * as vm from 'vm';
import { resolveLibSpecifier } from './policy';

export type RequireFn = (specifier: string) => unknown;

/** The virtual file name of a cell: its `./lib/...` imports resolve against the lib root next to it. */
export function cellFileName(libRoot: string): string {
  return path.posix.join(path.posix.dirname(libRoot), 'exercise-cell.js');
}

/**
 * The lib module key a cell's require(specifier) names, if it points into `libRoot` (absolute, or relative to the
 * cell's folder, e.g. a computed './lib/' + name), else undefined (a package or a Node built-in).
 */
export function libKeyOf(libRoot: string, specifier: string): string | undefined {
  if (typeof specifier !== 'string') return undefined;
  const abs = specifier.startsWith('.') ? path.posix.resolve(path.posix.dirname(libRoot), specifier) : specifier;
  if (!path.posix.isAbsolute(abs)) return undefined;
  const norm = path.posix.normalize(abs);
  if (norm !== libRoot && !norm.startsWith(libRoot + '/')) return undefined;
  return norm.slice(libRoot.length + 1).replace(/\.(ts|js)$/, '') || 'index';
}

/** Run CommonJS `code` as a module with the given require; `tf` is visible to it like a global. Returns its exports. */
export function evaluateModule(code: string, filename: string, require: RequireFn, tf: unknown): Record<string, unknown> {
  const module = { exports: {} as Record<string, unknown> };
  const fn = vm.compileFunction(code, ['exports', 'require', 'module', '__filename', '__dirname'], {
    filename,
    contextExtensions: [{ tf }],
  });
  fn.call(module.exports, module.exports, require, module, filename, path.posix.dirname(filename));
  return module.exports;
}

/**
 * Lib as the sandbox sees it: modules held in memory as code (the exercise's allowed helpers, transpiled, and a stub
 * that throws for every other module), loaded under the virtual root `libRoot`. Nothing of it is on disk.
 */
export class LibView {
  private readonly keys: Set<string>;
  private readonly cache = new Map<string, { exports: unknown }>();

  constructor(
    readonly libRoot: string,
    private readonly modules: Record<string, string>,
    private readonly fallback: RequireFn,
  ) {
    this.keys = new Set(Object.keys(modules));
  }

  /** require() for code at `from` (a lib key, or undefined for the cell itself). */
  requireFrom(from: string | undefined): RequireFn {
    return (specifier: string) => {
      const key =
        from === undefined || !String(specifier).startsWith('.')
          ? libKeyOf(this.libRoot, specifier)
          : resolveLibSpecifier(this.keys, from, specifier) ?? libKeyOf(this.libRoot, path.posix.join(this.libRoot, path.posix.dirname(from), specifier));
      return key === undefined ? this.fallback(specifier) : this.load(key, specifier);
    };
  }

  private load(key: string, specifier: string): unknown {
    const k = this.keys.has(key) ? key : this.keys.has(`${key}/index`) ? `${key}/index` : undefined;
    if (k === undefined) throw Object.assign(new Error(`Cannot find module '${specifier}'`), { code: 'MODULE_NOT_FOUND' });
    const cached = this.cache.get(k);
    if (cached) return cached.exports;
    const filename = `${this.libRoot}/${k}.js`;
    const module = { exports: {} as unknown };
    this.cache.set(k, module); // before running it: circular imports see the partial exports, as in Node
    try {
      const fn = vm.compileFunction(this.modules[k], ['exports', 'require', 'module', '__filename', '__dirname'], { filename });
      fn.call(module.exports, module.exports, this.requireFrom(k), module, filename, path.posix.dirname(filename));
    } catch (e) {
      this.cache.delete(k);
      throw e;
    }
    return module.exports;
  }
}

/** The code of a stub module: loading it throws the policy message (an Error named ExercisePolicyError). */
export function stubModule(message: string): string {
  return `throw Object.assign(new Error(${JSON.stringify(message)}), { name: 'ExercisePolicyError' });\n`;
}
