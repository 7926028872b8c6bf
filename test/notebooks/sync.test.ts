// notebooks/ must be exactly what the generator makes from solutions/ (edit solutions, then `npm run generate-notebooks`).
import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { findExercises } from '../../lib/notebook/generate';
import { readNotebook } from '../../lib/notebook/ipynb';
import { ROOT, orphanLearnerNotebooks, planGeneration } from '../../lib/notebook/plan';

describe('notebooks/ in sync with solutions/', () => {
  const plan = planGeneration();

  it('there are solution notebooks, and each folder links lib → ../lib (tslab compiles only files under the folder)', () => {
    expect(plan.length).to.be.greaterThan(0);
    for (const dir of ['solutions', 'notebooks']) {
      const link = path.join(ROOT, dir, 'lib');
      expect(fs.lstatSync(link).isSymbolicLink(), `${dir}/lib must be a symlink`).to.equal(true);
      expect(fs.readlinkSync(link)).to.equal('../lib');
    }
  });

  for (const p of plan) {
    const rel = path.relative(ROOT, p.file);
    it(`${rel} is up to date`, () => {
      expect(p.actual !== null, `${rel} is missing: run 'npm run generate-notebooks'`).to.equal(true);
      expect(p.actual === p.expected, `${rel} differs from what the generator makes from solutions/: ` +
        `edit solutions/ only, then run 'npm run generate-notebooks'`).to.equal(true);
    });
  }

  it('no learner notebook without a solution', () => {
    expect(orphanLearnerNotebooks().map((f) => path.relative(ROOT, f))).to.deep.equal([]);
  });

  it('every exercise id of a notebook has a spec module lib/exercises/<nn>-*.ts exporting it', () => {
    for (const p of plan.filter((q) => q.file.includes(`${path.sep}solutions${path.sep}`))) {
      const rel = path.relative(ROOT, p.file);
      for (const ex of findExercises(readNotebook(p.file), rel)) {
        const nn = ex.id.slice(0, 2);
        const specDir = path.join(ROOT, 'lib', 'exercises');
        const files = fs.readdirSync(specDir).filter((f) => f.startsWith(`${nn}-`) && f.endsWith('.ts'));
        const ids = files.flatMap((f) => Object.values(require(path.join(specDir, f)) as Record<string, unknown>))
          .filter((v): v is { id: string } => typeof v === 'object' && v !== null && typeof (v as { id?: unknown }).id === 'string')
          .map((v) => v.id);
        expect(ids, `${rel}: exercise '${ex.id}' has no ExerciseSpec in lib/exercises/${nn}-*.ts`).to.include(ex.id);
      }
    }
  });
});
