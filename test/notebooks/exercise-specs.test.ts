// The exercise specs of every notebook: lib's reference passes its own checks, every known-wrong answer fails at least
// one case, nothing leaks, and the cases are reproducible from a seed.
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as path from 'path';
import { isExerciseSpec } from '../../lib/exercises/index';
import { checkCases } from '../../lib/exercises/selfcheck';
import { disposeValue } from '../../lib/exercises/codec';
import type { ExerciseSpec } from '../../lib/exercises/types';

const DIR = path.join(__dirname, '..', '..', 'lib', 'exercises');
const specs: ExerciseSpec[] = fs.readdirSync(DIR).filter((f) => /^[0-9][0-9]-.*\.ts$/.test(f)).sort()
  .flatMap((f) => Object.values(require(path.join(DIR, f)) as Record<string, unknown>).filter(isExerciseSpec));

describe('exercise specs of every notebook', () => {
  it('exist, with unique ids that match their notebook', () => {
    expect(specs.length).to.be.greaterThan(0);
    expect(new Set(specs.map((s) => s.id)).size).to.equal(specs.length);
    for (const s of specs) expect(s.id.slice(0, 2), s.id).to.equal(s.notebook.slice(0, 2));
  });

  for (const spec of specs) {
    describe(spec.id, () => {
      it('the reference passes every public case, without leaking tensors', async () => {
        await checkCases(spec, spec.reference); // burn-in: backends allocate on first use
        const before = tf.memory().numTensors;
        const results = await checkCases(spec, spec.reference);
        expect(tf.memory().numTensors).to.equal(before);
        expect(results.length).to.be.greaterThan(1);
        for (const r of results) expect(r.status, `${r.name}: ${r.message}`).to.equal('pass');
      });

      it('has at least two known-wrong answers, and each fails at least one case', async () => {
        const wrong = Object.entries(spec.wrong);
        expect(wrong.length).to.be.greaterThanOrEqual(2);
        for (const [name, fn] of wrong) {
          const results = await checkCases(spec, fn);
          expect(results.some((r) => r.status !== 'pass'), `wrong answer '${name}' passed every case`).to.equal(true);
        }
      });

      it('cases are reproducible from the seed', () => {
        const a = spec.cases(3);
        const b = spec.cases(3);
        try {
          expect(a.map((c) => c.name)).to.deep.equal(b.map((c) => c.name));
          // tensors anywhere in the arguments (e.g. a list of gradients) are compared by value
          const plain = (v: unknown): unknown => v instanceof tf.Tensor ? Array.from(v.dataSync())
            : Array.isArray(v) ? v.map(plain) : v;
          const flat = (cs: typeof a) => cs.map((c) => c.args.map(plain));
          expect(flat(a)).to.deep.equal(flat(b));
        } finally {
          disposeValue(a.map((c) => c.args));
          disposeValue(b.map((c) => c.args));
        }
      });
    });
  }
});
