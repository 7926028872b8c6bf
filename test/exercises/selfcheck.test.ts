import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { runChecks, selfCheck, selfCheckPassed } from '../../lib/exercises/selfcheck';
import { fixtureSpecs, qSampleSpec, cfgSpec } from '../grading/fixtures/specs';
import type { Value } from '../../lib/exercises/types';

function capture(): { lines: string[]; log: (s: string) => void } {
  const lines: string[] = [];
  return { lines, log: (s) => lines.push(s) };
}

describe('exercises/selfcheck', () => {
  let before = 0;
  beforeEach(() => (before = tf.memory().numTensors));
  afterEach(() => expect(tf.memory().numTensors).to.equal(before));

  for (const spec of fixtureSpecs) {
    it(`${spec.id}: the reference passes and every known-wrong answer fails`, () => {
      expect(runChecks(spec, spec.reference).every((r) => r.status === 'pass')).to.equal(true);
      for (const [name, wrong] of Object.entries(spec.wrong)) {
        const rs = runChecks(spec, wrong);
        expect(rs.some((r) => r.status !== 'pass'), name).to.equal(true);
      }
    });
  }

  it('prints one ✔ line per case and a summary', () => {
    const { lines, log } = capture();
    expect(selfCheckPassed(qSampleSpec, qSampleSpec.reference, { log })).to.equal(true);
    expect(lines.filter((l) => l.startsWith('✔'))).to.have.length(3);
    expect(lines[lines.length - 1]).to.contain('All 3 checks');
  });

  it('selfCheck prints the same report and returns nothing (a notebook cell shows no stray value)', () => {
    const a = capture();
    const b = capture();
    expect(selfCheck(qSampleSpec, qSampleSpec.reference, { log: a.log })).to.equal(undefined);
    selfCheckPassed(qSampleSpec, qSampleSpec.reference, { log: b.log });
    expect(a.lines).to.deep.equal(b.lines);
  });

  it('prints the reason and the hint on failure', () => {
    const { lines, log } = capture();
    expect(selfCheckPassed(cfgSpec, cfgSpec.wrong.wrongSign, { log })).to.equal(false);
    expect(lines[0]).to.match(/^✔ w = 0/); // w = 0 cannot tell the sign apart
    expect(lines[1]).to.match(/^✘ w = 1: .*expected .*got/);
    expect(lines[lines.length - 1]).to.equal(`Hint: ${cfgSpec.hint}`);
  });

  it('says "not attempted yet" for the stub and stops there', () => {
    const { lines, log } = capture();
    const stub = () => {
      throw new Error('Exercise test-q-sample is not implemented yet (TODO)');
    };
    expect(selfCheckPassed(qSampleSpec, stub, { log })).to.equal(false);
    expect(lines).to.have.length(1);
    expect(lines[0]).to.contain('not attempted yet');
  });

  it('reports other throws with their message, and a missing function', () => {
    const { lines, log } = capture();
    const bad = (x: Value) => (x as unknown as { nope(): void }).nope();
    expect(selfCheckPassed(qSampleSpec, bad, { log })).to.equal(false);
    expect(lines[0]).to.contain('threw TypeError');
    expect(lines[0]).to.contain('nope is not a function');
    const c2 = capture();
    expect(selfCheckPassed(qSampleSpec, undefined as never, { log: c2.log })).to.equal(false);
    expect(c2.lines[0]).to.contain('not a function');
  });

  it('frees the leaks of a sloppy answer and survives one that disposes or mutates its inputs', () => {
    const sloppy = (x0: Value, t: Value, n: Value, abar: Value) => {
      tf.ones([100]); // never disposed
      const out = qSampleSpec.reference(x0, t, n, abar);
      tf.dispose([x0 as tf.Tensor, n as tf.Tensor]);
      (abar as number[]).reverse();
      return out;
    };
    expect(runChecks(qSampleSpec, sloppy).map((r) => r.status)).to.deep.equal(['pass', 'pass', 'pass']);
  });

  it('is deterministic for a seed and differs across seeds', () => {
    const a = runChecks(qSampleSpec, qSampleSpec.wrong.missingSqrt, { seed: 3 });
    const b = runChecks(qSampleSpec, qSampleSpec.wrong.missingSqrt, { seed: 3 });
    const c = runChecks(qSampleSpec, qSampleSpec.wrong.missingSqrt, { seed: 4 });
    expect(a).to.deep.equal(b);
    expect(a[0].message).to.not.equal(c[0].message);
  });

  it('reports an async answer as a Promise', () => {
    const rs = runChecks(cfgSpec, async (a: Value) => a);
    expect(rs[0].status).to.equal('fail');
    expect(rs[0].message).to.contain('Promise');
  });
});
