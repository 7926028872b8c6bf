// The headless runner on small throwaway notebooks (no lib imports, so each run is ~2 s of kernel start).
import { expect } from 'chai';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { stubLine, toLearner } from '../../lib/notebook/generate';
import { NotebookCell, emptyNotebook, readNotebook, serializeNotebook, splitSource } from '../../lib/notebook/ipynb';
import { cleanErrorText, formatFailures, quoteDiagnosticLines, runNotebook } from '../../lib/notebook/run';

function code(src: string, tags: string[] = [], extra: Record<string, unknown> = {}): NotebookCell {
  return { cell_type: 'code', metadata: { ...(tags.length ? { tags } : {}), ...extra } as NotebookCell['metadata'], source: splitSource(src), outputs: [], execution_count: null };
}
function md(src: string): NotebookCell {
  return { cell_type: 'markdown', metadata: {}, source: splitSource(src) };
}

describe('notebook runner (tslab kernel)', function () {
  this.timeout(60000);
  let dir: string;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nbrun-')); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  function write(name: string, cells: NotebookCell[], learner = false): string {
    const nb = emptyNotebook();
    nb.cells = cells;
    const file = path.join(dir, name);
    fs.writeFileSync(file, serializeNotebook(learner ? toLearner(nb, name) : nb));
    return file;
  }

  it('runs every cell, records outputs, sees fast mode, and never touches the source', async () => {
    const file = write('ok.ipynb', [
      md('# title'),
      code('const n: number = 6 * 7;\nconsole.log(`n=${n}`);'),
      code('console.log(`fast=${process.env.DIFFUSION_FAST ?? "unset"}`);'),
      code('n + 1'),
    ]);
    const before = fs.readFileSync(file, 'utf8');
    const out = path.join(dir, 'out', 'ok.ipynb');
    const seen: number[] = [];
    const r = await runNotebook(file, { outFile: out, fast: true, onCell: (_c, n) => seen.push(n) });
    expect(r.ok, formatFailures(r)).to.equal(true);
    expect(seen).to.deep.equal([1, 2, 3]);
    expect(fs.readFileSync(file, 'utf8')).to.equal(before);
    const executed = readNotebook(out);
    expect(JSON.stringify(executed.cells[1].outputs)).to.contain('n=42');
    expect(JSON.stringify(executed.cells[2].outputs)).to.contain('fast=1');
    expect(JSON.stringify(executed.cells[3].outputs)).to.contain('43');
    expect(executed.cells[3].execution_count).to.equal(3);
    expect(r.seconds).to.be.greaterThan(0);
  });

  it('fails with the cell number and the real TypeScript diagnostic, and stops there', async () => {
    const file = write('type-error.ipynb', [
      md('intro'),
      code('const a = 1;'),
      code("const b: number = 'not a number';"),
      code('console.log("never runs");'),
    ]);
    const r = await runNotebook(file, { outFile: path.join(dir, 'out', 'type-error.ipynb') });
    expect(r.ok).to.equal(false);
    expect(r.failures).to.have.length(1);
    expect(r.failures[0].cellNumber).to.equal(3);
    expect(r.failures[0].codeCellNumber).to.equal(2);
    expect(r.failures[0].message).to.contain("Type 'string' is not assignable to type 'number'");
    expect(r.failures[0].message).to.contain("    > const b: number = 'not a number';");
    expect(r.notRun).to.equal(1);
    const text = formatFailures(r);
    expect(text).to.match(/type-error\.ipynb: cell 3 \(code cell 2, "const b: number = 'not a number';"\) failed/);
    expect(text).to.contain('1 later code cell(s) did not run');
  });

  it('reports a runtime exception with its message, without tslab-internal stack frames', async () => {
    const file = write('throws.ipynb', [code('function f(): number { throw new RangeError("t must be in 0…T-1, got 1000"); }\nf();')]);
    const r = await runNotebook(file, { outFile: path.join(dir, 'out', 'throws.ipynb') });
    expect(r.ok).to.equal(false);
    expect(r.failures[0].message).to.contain('RangeError: t must be in 0…T-1, got 1000');
    expect(r.failures[0].message).not.to.contain('node_modules/tslab');
  });

  it('in a learner notebook tolerates the stub in exercise/selfcheck cells and runs the cells after them', async () => {
    const cells = [
      code('// EXERCISE 09-double: double it\nfunction double(x: number): number {\n  // BEGIN SOLUTION\n  return 2 * x;\n  // END SOLUTION\n}', ['exercise'], { exercise: { id: '09-double' } }),
      code('function selfCheck(_spec: unknown, fn: (x: number) => number) { if (fn(2) !== 4) throw new Error("wrong"); }\nselfCheck(null, double);', ['selfcheck']),
      code('console.log("after the exercise");'),
    ];
    const learner = write('09-learner.ipynb', cells, true);
    const r = await runNotebook(learner, { outFile: path.join(dir, 'out', '09-learner.ipynb') });
    expect(r.learner).to.equal(true);
    expect(r.ok, formatFailures(r)).to.equal(true);
    expect(r.cells.map((c) => [c.status, c.tolerated])).to.deep.equal([['ok', false], ['error', true], ['ok', false]]);
    expect(r.cells[1].stderr).to.contain(stubLine('09-double').match(/Exercise .*\(TODO\)/)![0]);
    expect(JSON.stringify(readNotebook(r.outFile).cells[2].outputs)).to.contain('after the exercise');

    // The same notebook as a solution: everything passes, nothing is tolerated.
    const solution = write('09-solution.ipynb', cells);
    const s = await runNotebook(solution, { outFile: path.join(dir, 'out', '09-solution.ipynb') });
    expect(s.ok, formatFailures(s)).to.equal(true);
    expect(s.cells.every((c) => c.status === 'ok')).to.equal(true);
  });

  it('in a learner notebook, any other error — even in a tagged cell — fails the run', async () => {
    const file = write('09-broken.ipynb', [
      code('// EXERCISE 09-double: double it\nfunction double(x: number): number {\n  // BEGIN SOLUTION\n  return 2 * x;\n  // END SOLUTION\n}', ['exercise'], { exercise: { id: '09-double' } }),
      code('const y: string = double(1);\nselfCheck(null, double);', ['selfcheck']),
    ], true);
    const r = await runNotebook(file, { outFile: path.join(dir, 'out', '09-broken.ipynb') });
    expect(r.ok).to.equal(false);
    expect(r.failures[0].cellNumber).to.equal(2);
    expect(r.failures[0].message).to.contain("Type 'number' is not assignable to type 'string'");
  });

  it('refuses to overwrite its source', async () => {
    const file = write('self.ipynb', [code('1')]);
    let err: unknown;
    try { await runNotebook(file, { outFile: file }); } catch (e) { err = e; }
    expect(String(err)).to.match(/InvalidArgumentError: .*never overwritten/);
  });
});

describe('runner error text', () => {
  it('quotes the cell line of each diagnostic, once, and flags positions outside the cell', () => {
    const src = 'const a = 1;\nconst b: number = "x";';
    const msg = quoteDiagnosticLines("2:7 - Type 'string' is not assignable to type 'number'.\n2:7 - again\n87:112 - in lib", src);
    expect(msg.split('\n')).to.deep.equal([
      "2:7 - Type 'string' is not assignable to type 'number'.",
      '    > const b: number = "x";',
      '2:7 - again',
      '87:112 - in lib',
      '(a line:col that does not fit this cell points into a file the cell imports, e.g. under lib/)',
    ]);
  });

  it('drops tslab-internal stack frames but keeps the error and the cell frames', () => {
    const text = 'Error: boom\n    at evalmachine.<anonymous>:2:7\n    at Script.runInThisContext (node:vm:135:14)\n' +
      '    at Object.execute (/x/node_modules/tslab/dist/executor.js:160:38)\n';
    expect(cleanErrorText(text)).to.equal('Error: boom\n    at evalmachine.<anonymous>:2:7');
    expect(cleanErrorText('')).to.match(/without writing an error message/);
  });
});

describe('notebook runner: a kernel that dies', function () {
  this.timeout(60000);
  it('is reported at its cell instead of hanging until the timeout', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nbdead-'));
    try {
      const nb = emptyNotebook();
      nb.cells = [code('console.log("alive");'), code('// what a crashing kernel prints goes to its own stderr (fd 2), not to the cell\nrequire("fs").writeSync(2, "last words\\n");\nprocess.exit(3);'), code('1')];
      const file = path.join(dir, 'dies.ipynb');
      fs.writeFileSync(file, serializeNotebook(nb));
      const started = Date.now();
      const r = await runNotebook(file, { outFile: path.join(dir, 'out', 'dies.ipynb'), cellTimeoutSeconds: 40 });
      expect(Date.now() - started).to.be.lessThan(30000);
      expect(r.ok).to.equal(false);
      expect(r.failures[0].cellNumber).to.equal(2);
      expect(r.failures[0].status).to.equal('dead');
      expect(formatFailures(r)).to.contain('killed the kernel');
      expect(r.failures[0].message).to.contain('last words');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
