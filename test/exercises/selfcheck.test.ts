import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { alphaBarSpec, forwardStepSpec } from '../../lib/exercises/01-forward-process';
import { ExercisePolicyError } from '../../lib/exercises/policy';
import {
  checkCases, clearCellRuns, exerciseIdOfSource, lastCellRun, otherCellSources, recordCellRun, selfCheck, selfCheckPassed,
} from '../../lib/exercises/selfcheck';
import type { Value } from '../../lib/exercises/types';
import { cfgSpec, fixtureSpecs, qSampleSpec } from '../grading/fixtures/specs';

function capture(): { lines: string[]; log: (s: string) => void } {
  const lines: string[] = [];
  return { lines, log: (s) => lines.push(s) };
}

const ALPHA_BAR_OK = `// EXERCISE 01-alpha-bar: ᾱ
function alphaBar(betas: number[]): number[] {
  const out: number[] = [];
  let p = 1;
  for (const b of betas) out.push((p *= 1 - b));
  return out;
}`;

describe('exercises/selfcheck', () => {
  let before = 0;
  beforeEach(() => (before = tf.memory().numTensors));
  afterEach(() => expect(tf.memory().numTensors).to.equal(before));

  for (const spec of fixtureSpecs) {
    it(`${spec.id}: the reference passes and every known-wrong answer fails`, async () => {
      expect((await checkCases(spec, spec.reference)).every((r) => r.status === 'pass')).to.equal(true);
      for (const [name, wrong] of Object.entries(spec.wrong)) {
        expect((await checkCases(spec, wrong)).some((r) => r.status !== 'pass'), name).to.equal(true);
      }
    });
  }

  it('prints one ✔ line per case and a summary', async () => {
    const { lines, log } = capture();
    expect(await selfCheckPassed(qSampleSpec, qSampleSpec.reference, { log })).to.equal(true);
    expect(lines.filter((l) => l.startsWith('✔'))).to.have.length(3);
    expect(lines[lines.length - 1]).to.contain('All 3 checks');
  });

  it('selfCheck prints the same report and resolves to nothing (a notebook cell shows no stray value)', async () => {
    const a = capture();
    const b = capture();
    expect(await selfCheck(qSampleSpec, qSampleSpec.reference, { log: a.log })).to.equal(undefined);
    await selfCheckPassed(qSampleSpec, qSampleSpec.reference, { log: b.log });
    expect(a.lines).to.deep.equal(b.lines);
  });

  it('prints the reason and the hint on failure', async () => {
    const { lines, log } = capture();
    expect(await selfCheckPassed(cfgSpec, cfgSpec.wrong.wrongSign, { log })).to.equal(false);
    expect(lines[0]).to.match(/^✔ w = 0/); // w = 0 cannot tell the sign apart
    expect(lines[1]).to.match(/^✘ w = 1: .*expected .*got/);
    expect(lines[lines.length - 1]).to.equal(`Hint: ${cfgSpec.hint}`);
  });

  it('says "not attempted yet" for the stub and stops there', async () => {
    const { lines, log } = capture();
    const stub = () => {
      throw new Error('Exercise test-q-sample is not implemented yet (TODO)');
    };
    expect(await selfCheckPassed(qSampleSpec, stub, { log })).to.equal(false);
    expect(lines).to.have.length(1);
    expect(lines[0]).to.contain('not attempted yet');
  });

  it('reports other throws with their message, and a given non-function', async () => {
    const { lines, log } = capture();
    const bad = (x: Value) => (x as unknown as { nope(): void }).nope();
    expect(await selfCheckPassed(qSampleSpec, bad, { log })).to.equal(false);
    expect(lines[0]).to.contain('threw TypeError');
    expect(lines[0]).to.contain('nope is not a function');
    const c2 = capture();
    expect(await selfCheckPassed(qSampleSpec, 3 as never, { log: c2.log })).to.equal(false);
    expect(c2.lines[0]).to.contain('not a function');
  });

  it('frees the leaks of a sloppy answer and survives one that disposes or mutates its inputs', async () => {
    const sloppy = (x0: Value, t: Value, n: Value, abar: Value) => {
      tf.ones([100]); // never disposed
      const out = qSampleSpec.reference(x0, t, n, abar);
      tf.dispose([x0 as tf.Tensor, n as tf.Tensor]);
      (abar as number[]).reverse();
      return out;
    };
    expect((await checkCases(qSampleSpec, sloppy)).map((r) => r.status)).to.deep.equal(['pass', 'pass', 'pass']);
  });

  it('is deterministic for a seed and differs across seeds', async () => {
    const a = await checkCases(qSampleSpec, qSampleSpec.wrong.missingSqrt, { seed: 3 });
    const b = await checkCases(qSampleSpec, qSampleSpec.wrong.missingSqrt, { seed: 3 });
    const c = await checkCases(qSampleSpec, qSampleSpec.wrong.missingSqrt, { seed: 4 });
    expect(a).to.deep.equal(b);
    expect(a[0].message).to.not.equal(c[0].message);
  });

  it('awaits an async answer (e.g. one that reads a value with await t.data()), and frees what it leaks', async () => {
    const asyncCfg = async (u: tf.Tensor, c: tf.Tensor, w: number) => {
      const wt = tf.scalar(w);
      await wt.data();
      return tf.add(u, tf.mul(tf.sub(c, u), wt));
    };
    expect((await checkCases(cfgSpec, asyncCfg as never)).every((r) => r.status === 'pass')).to.equal(true);
  });

  describe('checking the exercise cell as the grader does', () => {
    it('evaluates the cell alone: a correct cell passes', async () => {
      const { lines, log } = capture();
      expect(await selfCheckPassed(alphaBarSpec, undefined, { log, source: ALPHA_BAR_OK })).to.equal(true);
      expect(lines[lines.length - 1]).to.match(/All \d+ checks of alphaBar/);
    });

    it('a helper function from another cell comes with it; a constant from another cell does not, and it says so', async () => {
      const cell = `// EXERCISE 01-alpha-bar: ᾱ\nfunction alphaBar(betas: number[]): number[] { return runningProduct(betas.map((b) => 1 - b)); }`;
      const helper = `const runningProduct = (xs: number[]) => { let p = 1; return xs.map((x) => (p *= x)); };`;
      const a = capture();
      expect(await selfCheckPassed(alphaBarSpec, undefined, { log: a.log, source: cell, otherSources: ['const unrelated = 1;', helper] })).to.equal(true);
      const withConst = `// EXERCISE 01-alpha-bar: ᾱ\nfunction alphaBar(betas: number[]): number[] { return betas.map((_, i) => ONE - betas.slice(0, i + 1).reduce((s) => s, 0) * 0 - 0) as number[]; }`;
      const b = capture();
      expect(await selfCheckPassed(alphaBarSpec, undefined, { log: b.log, source: withConst, otherSources: ['const ONE = 1;'] })).to.equal(false);
      expect(b.lines.join('\n')).to.contain('ReferenceError: ONE is not defined');
      expect(b.lines.join('\n')).to.contain('must define ONE itself');
    });

    it('a cell that uses lib\'s own answer is told so, with the same message the grader gives', async () => {
      const cell = `// EXERCISE 01-forward-step: one step\nimport { forwardStep as libStep } from './lib/forward';\nimport { NoiseSchedule } from './lib/schedule';\n` +
        `function forwardStep(x: tf.Tensor, t: number, n: tf.Tensor, betas: number[]) { return libStep(x, t, n, NoiseSchedule.fromBetas(betas)); }`;
      const { lines, log } = capture();
      expect(await selfCheckPassed(forwardStepSpec, undefined, { log, source: cell })).to.equal(false);
      expect(lines.join('\n')).to.contain('exercise 01-forward-step is graded on your own code');
      expect(lines.join('\n')).to.contain('./lib/forward');
      // a computed path is caught the same way
      const computed = `// EXERCISE 01-forward-step: x\nfunction forwardStep(...a: any[]) { const m = require('./lib/' + 'forward'); return m.forwardStep(...a); }`;
      const c = capture();
      expect(await selfCheckPassed(forwardStepSpec, undefined, { log: c.log, source: computed })).to.equal(false);
      expect(c.lines.join('\n')).to.contain('is graded on your own code');
      expect(() => { throw new ExercisePolicyError('x'); }).to.throw(ExercisePolicyError);
    });

    it('a cell with a syntax error is reported with the compiler\'s message', async () => {
      const { lines, log } = capture();
      expect(await selfCheckPassed(alphaBarSpec, undefined, { log, source: '// EXERCISE 01-alpha-bar: x\nfunction alphaBar(b: number[] { return b; }' })).to.equal(false);
      expect(lines[0]).to.contain('does not compile: line 2');
    });
  });

  describe('in a tslab kernel: the recorded runs of the cells', () => {
    beforeEach(() => clearCellRuns());
    after(() => clearCellRuns());

    it('without a run of the exercise cell it says to run it (outside tslab: nothing named like it exists)', async () => {
      const { lines, log } = capture();
      expect(await selfCheckPassed(alphaBarSpec, undefined, { log })).to.equal(false);
      expect(lines).to.deep.equal(['✘ alphaBar (exercise 01-alpha-bar): alphaBar is not defined: run the exercise cell above (its first line is // EXERCISE 01-alpha-bar: …), then this cell']);
    });

    it('finds the exercise id of a cell and keeps the last run of each exercise cell, and the others in order', () => {
      expect(exerciseIdOfSource('\n// EXERCISE 01-alpha-bar: x\nfunction f() {}')).to.equal('01-alpha-bar');
      expect(exerciseIdOfSource('const a = 1; // EXERCISE 01-alpha-bar: x')).to.equal(undefined);
      recordCellRun('function helperZ() { return 1; }', true, '');
      recordCellRun('// EXERCISE 99-test: first\nconst v = 1;', true, '');
      recordCellRun('// EXERCISE 99-test: again\nconst v = 2;', false, '3:1 - oops');
      expect(lastCellRun('99-test')!.source).to.contain('again');
      expect(otherCellSources('99-test').slice(-1)[0]).to.contain('helperZ');
    });

    it('a cell that did not compile is reported with tslab\'s message, not as "not attempted" and not by checking another function', async () => {
      recordCellRun('// EXERCISE 01-alpha-bar: x\nfunction alphaBar(b: number[]): number[] { return b.map((x) => x * y); }', false, "2:60 - Cannot find name 'y'.\n");
      const { lines, log } = capture();
      expect(await selfCheckPassed(alphaBarSpec, undefined, { log })).to.equal(false);
      expect(lines).to.have.length(1);
      expect(lines[0]).to.contain('did not compile');
      expect(lines[0]).to.contain("2:60 - Cannot find name 'y'.");
      expect(lines[0]).to.not.contain('not attempted');
    });

    it('checks the last successful run of the exercise cell', async () => {
      recordCellRun(ALPHA_BAR_OK, true, '');
      const { lines, log } = capture();
      expect(await selfCheckPassed(alphaBarSpec, undefined, { log })).to.equal(true);
      expect(lines[lines.length - 1]).to.contain('passed');
    });
  });
});
