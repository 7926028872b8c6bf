// Notebooks compile lib with tslab's own TypeScript and options (not tsconfig.json): non-strict, Node10 resolution, and
// its runtime loader resolves './lib/x' only to a FILE x.ts, never to a folder's index.ts. These checks keep lib usable
// from notebooks even though tsc (strict) passes.
import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';

const ROOT = path.resolve(__dirname, '..', '..');
const LIB = path.join(ROOT, 'lib');

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return tsFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

function relativeImports(source: string): string[] {
  // TypeScript's own pre-processor: real import/export/require specifiers only, not text in comments.
  return ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName).filter((n) => n.startsWith('.'));
}

function notebookCode(file: string): string {
  const nb = JSON.parse(fs.readFileSync(file, 'utf8')) as { cells: { cell_type: string; source: string | string[] }[] };
  return nb.cells
    .filter((c) => c.cell_type === 'code')
    .map((c) => (Array.isArray(c.source) ? c.source.join('') : c.source))
    .join('\n');
}

describe('lib as tslab sees it', () => {
  it('every relative import in lib/ names a file, not a folder (tslab cannot load a folder index)', () => {
    const bad: string[] = [];
    for (const file of tsFiles(LIB)) {
      for (const spec of relativeImports(fs.readFileSync(file, 'utf8'))) {
        const target = path.resolve(path.dirname(file), spec);
        if (!fs.existsSync(`${target}.ts`)) bad.push(`${path.relative(ROOT, file)}: '${spec}'`);
      }
    }
    expect(bad, `imports that do not name a .ts file:\n${bad.join('\n')}`).to.deep.equal([]);
  });

  it("every './lib/…' import in the notebooks names a lib file", () => {
    const bad: string[] = [];
    for (const dir of ['solutions', 'notebooks']) {
      const d = path.join(ROOT, dir);
      if (!fs.existsSync(d)) continue;
      for (const f of fs.readdirSync(d).filter((n) => n.endsWith('.ipynb'))) {
        for (const spec of relativeImports(notebookCode(path.join(d, f)))) {
          if (!spec.startsWith('./lib/')) continue;
          if (!fs.existsSync(path.join(LIB, `${spec.slice('./lib/'.length)}.ts`))) bad.push(`${dir}/${f}: '${spec}'`);
        }
      }
    }
    expect(bad, bad.join('\n')).to.deep.equal([]);
  });

  it("compiles without errors under tslab's TypeScript and non-strict options", function () {
    this.timeout(180000);
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const tts = require('@tslab/typescript-for-tslab') as typeof ts;
    const options: ts.CompilerOptions = {
      module: tts.ModuleKind.ESNext,
      moduleResolution: tts.ModuleResolutionKind.Node10,
      esModuleInterop: true,
      target: tts.ScriptTarget.ES2022,
      lib: ['lib.es2022.d.ts'],
      declaration: true,
      resolveJsonModule: true,
      skipLibCheck: true,
      noEmit: true,
      types: ['node'],
      typeRoots: [path.join(ROOT, 'node_modules', '@types')],
    };
    // lib/grading runs under ts-node (strict), never inside a notebook.
    const roots = tsFiles(LIB).filter((f) => !f.startsWith(path.join(LIB, 'grading') + path.sep));
    const program = tts.createProgram(roots, options);
    const diags = tts.getPreEmitDiagnostics(program).map((d) => {
      const where = d.file ? `${path.relative(ROOT, d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}` : '';
      return `${where} ${tts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
    expect(diags, diags.join('\n')).to.deep.equal([]);
  });
});
