/**
 * Turn a learner's exercise cell (TypeScript) into a CommonJS module for the sandbox: transpile only (no type check,
 * like running the cell; syntax errors are reported), point `./lib/...` imports at the repository's lib, and export the
 * function the exercise asks for. Runs in the grader: transpiling untrusted text executes none of it.
 */
import * as path from 'path';
import * as ts from 'typescript';

export const COMPILER_OPTIONS: ts.CompilerOptions = {
  module: ts.ModuleKind.CommonJS,
  target: ts.ScriptTarget.ES2022,
  esModuleInterop: true,
};

/** Name under which the compiled cell exports the learner's function. */
export const EXPORT_NAME = '__exercise_function__';

export type CompiledCell = { ok: true; code: string } | { ok: false; error: string };

/** './lib/x', '../lib/x', 'lib/x' as the notebooks write them (notebooks/lib is a link to lib). */
const LIB_SPECIFIER = /^(?:\.\.?\/)+lib(\/.*)?$/;

export function rewriteLibImports(code: string, libDir: string): string {
  return code.replace(/require\((["'])([^"'\n]+)\1\)/g, (whole, _q: string, spec: string) => {
    const m = LIB_SPECIFIER.exec(spec);
    if (!m) return whole;
    return `require(${JSON.stringify(path.join(libDir, m[1] ?? ''))})`;
  });
}

export function compileCell(source: string, functionName: string, libDir: string): CompiledCell {
  if (!/^[A-Za-z_$][\w$]*$/.test(functionName)) return { ok: false, error: `invalid function name ${JSON.stringify(functionName)}` };
  const out = ts.transpileModule(source, { compilerOptions: COMPILER_OPTIONS, fileName: 'exercise.ts', reportDiagnostics: true });
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
