/**
 * Turn a learner's exercise cell (TypeScript) into CommonJS code for the sandbox and the self-check: transpile only (no
 * type check, like running the cell; syntax errors are reported), point `./lib/...` imports at a lib root (the sandbox's
 * lib view), and export the function the exercise asks for. Transpiling untrusted text executes none of it.
 */
import * as path from 'path';
import type * as TS from 'typescript';

// TypeScript is loaded on first use: notebooks import this file (through the self-check) and rarely need it.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const typescript = (): typeof TS => require('typescript') as typeof TS;

export function compilerOptions(): TS.CompilerOptions {
  const ts = typescript();
  return { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true };
}

/** Name under which the compiled cell exports the learner's function. */
export const EXPORT_NAME = '__exercise_function__';

/** Where lib is inside the sandbox (a virtual path: lib exists there only as the exercise's lib view). */
export const SANDBOX_LIB = '/course/lib';

// Not a discriminated union: tslab compiles lib without strictNullChecks (see callIsolated's CallOutcome).
export interface CompiledCell {
  ok: boolean;
  code?: string;
  error?: string;
}

/** './lib/x', '../lib/x', 'lib/x' as the notebooks write them (notebooks/lib is a link to lib). */
const LIB_SPECIFIER = /^(?:\.\.?\/)+lib(\/.*)?$/;

export function rewriteLibImports(code: string, libDir: string): string {
  return code.replace(/require\((["'])([^"'\n]+)\1\)/g, (whole, _q: string, spec: string) => {
    const m = LIB_SPECIFIER.exec(spec);
    if (!m) return whole;
    return `require(${JSON.stringify(path.posix.join(libDir, m[1] ?? ''))})`;
  });
}

/** A RangeError from a JavaScript stack overflow (deeply nested source), as opposed to any other failure. */
export function isStackOverflow(e: unknown): boolean {
  return e instanceof RangeError && /call stack/i.test(e.message);
}

export const NESTING_ADVICE = 'its call stack overflowed; split the nested expression into named steps';

/** Transpile a module (lib's helpers for the sandbox's runner) to CommonJS. */
export function transpile(source: string, fileName: string): string {
  return typescript().transpileModule(source, { compilerOptions: compilerOptions(), fileName }).outputText;
}

export function compileCell(source: string, functionName: string, libDir: string = SANDBOX_LIB): CompiledCell {
  if (!/^[A-Za-z_$][\w$]*$/.test(functionName)) return { ok: false, error: `invalid function name ${JSON.stringify(functionName)}` };
  const ts = typescript();
  let out: TS.TranspileOutput;
  try {
    out = ts.transpileModule(source, { compilerOptions: compilerOptions(), fileName: 'exercise.ts', reportDiagnostics: true });
  } catch (e) {
    // TypeScript's parser recurses once per nesting level: ~1,000 nested parentheses overflow its stack (seen).
    if (isStackOverflow(e)) return { ok: false, error: `does not compile: it is nested too deeply for TypeScript's parser (${NESTING_ADVICE})` };
    throw e;
  }
  const errors = (out.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length > 0) {
    const d = errors[0];
    const where = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
    const at = where ? `line ${where.line + 1}, column ${where.character + 1}: ` : '';
    return { ok: false, error: `does not compile: ${at}${ts.flattenDiagnosticMessageText(d.messageText, '\n')}` };
  }
  // typeof is safe for an undeclared name; by the end of the module any let/const is initialized.
  const tail = `\n;module.exports[${JSON.stringify(EXPORT_NAME)}] = (typeof ${functionName} !== 'undefined') ? ${functionName} : undefined;\n`;
  return { ok: true, code: rewriteLibImports(out.outputText, libDir) + tail };
}
