// The self-check in a real tslab kernel: it sees each exercise cell's last run (tslab's execute handler is hooked when
// the first cell imports it) and says what a learner needs: run the cell first, the compiler's message, a name from
// another cell, lib's own answer. One small notebook, run headlessly, in a folder of this test inside the repository
// (tslab resolves ./lib and node_modules from the notebook's folder).
import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { BackendUnavailableError } from '../../lib/errors';
import { COURSE_METADATA_KEY, emptyNotebook, readNotebook, serializeNotebook, splitSource, type NotebookCell } from '../../lib/notebook/ipynb';
import { runNotebook } from '../../lib/notebook/run';

const REPO = path.resolve(__dirname, '..', '..');

const CELLS: [string, string[]][] = [
  [`import * as tf from '@tensorflow/tfjs';
import { selfCheck } from './lib/exercises/selfcheck';
import { alphaBarSpec, forwardStepSpec } from './lib/exercises/01-forward-process';
import { forwardStep } from './lib/forward';   // as notebook 01 does: lib's function of the exercise's name`, []],
  ['await selfCheck(alphaBarSpec);', ['selfcheck']], // 1: before its exercise cell ran
  ['await selfCheck(forwardStepSpec);', ['selfcheck']], // 2: before; lib's forwardStep is visible under that name
  [`// EXERCISE 01-forward-step: does not compile
function forwardStep(x: tf.Tensor, t: number, n: tf.Tensor, b: number[]): tf.Tensor {
  return x.mul(undefinedName);
}`, ['exercise']],
  ['await selfCheck(forwardStepSpec);', ['selfcheck']], // 4
  ['function runningProduct(xs: number[]): number[] { let p = 1; return xs.map((x) => (p *= x)); }\nconst SHIFT = 0;', []],
  [`// EXERCISE 01-alpha-bar: uses a constant of another cell
function alphaBar(betas: number[]): number[] { return runningProduct(betas.map((b) => 1 - b - SHIFT)); }`, ['exercise']],
  ['await selfCheck(alphaBarSpec);', ['selfcheck']], // 7
  [`// EXERCISE 01-alpha-bar: a helper function of another cell only
function alphaBar(betas: number[]): number[] { return runningProduct(betas.map((b) => 1 - b)); }`, ['exercise']],
  ['await selfCheck(alphaBarSpec);', ['selfcheck']], // 9
  [`// EXERCISE 01-forward-step: lib's own answer
import { forwardStep as libStep } from './lib/forward';
import { NoiseSchedule } from './lib/schedule';
function forwardStep(x: tf.Tensor, t: number, n: tf.Tensor, b: number[]): tf.Tensor {
  return libStep(x, t, n, NoiseSchedule.fromBetas(b));
}`, ['exercise']],
  ['await selfCheck(forwardStepSpec);', ['selfcheck']], // 11
];

describe('exercises/selfcheck in a tslab kernel', function () {
  this.timeout(300000);
  let dir = '';
  let outputs: string[] = [];

  before(async function () {
    fs.mkdirSync(path.join(REPO, 'out'), { recursive: true });
    dir = fs.mkdtempSync(path.join(REPO, 'out', 'test-selfcheck-'));
    fs.symlinkSync(path.join(REPO, 'lib'), path.join(dir, 'lib'));
    const nb = emptyNotebook();
    nb.metadata[COURSE_METADATA_KEY] = { learner: true }; // lets the run go on past the cells that fail on purpose
    nb.cells = CELLS.map(([src, tags]): NotebookCell => {
      const m = /^\/\/ EXERCISE (\S+):/.exec(src);
      return { cell_type: 'code', metadata: { tags, ...(m ? { exercise: { id: m[1] } } : {}) }, source: splitSource(src), outputs: [], execution_count: null };
    });
    fs.writeFileSync(path.join(dir, 'check.ipynb'), serializeNotebook(nb));
    try {
      const r = await runNotebook(path.join(dir, 'check.ipynb'), { outFile: path.join(dir, 'out.ipynb'), fast: true });
      const done = readNotebook(r.outFile);
      outputs = done.cells.map((c) => (c.outputs ?? []).map((o) => [].concat((o as { text?: never }).text ?? []).join('')).join(''));
    } catch (e) {
      if (e instanceof BackendUnavailableError) {
        console.log(`      skipped: ${e.message}`);
        this.skip();
      }
      throw e;
    }
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('before the exercise cell ran: says to run it, and never checks lib\'s function of the same name', () => {
    expect(outputs[1]).to.contain('the exercise cell has not run yet in this session');
    expect(outputs[2]).to.contain('the exercise cell has not run yet in this session');
    expect(outputs[2]).to.contain('comes from another cell');
    expect(outputs[2]).to.not.match(/✔|checks of/);
  });

  it('an exercise cell that did not compile: the compiler\'s message, not "not attempted"', () => {
    expect(outputs[4]).to.contain('did not compile');
    expect(outputs[4]).to.contain("Cannot find name 'undefinedName'");
    expect(outputs[4]).to.not.contain('not attempted');
  });

  it('a constant from another cell is named; a helper function from another cell comes along', () => {
    expect(outputs[7]).to.contain('SHIFT is defined in another cell');
    expect(outputs[9]).to.match(/All \d+ checks of alphaBar \(exercise 01-alpha-bar\) passed/);
  });

  it("lib's own answer is refused with the grader's message", () => {
    expect(outputs[11]).to.contain('exercise 01-forward-step is graded on your own code');
  });
});
