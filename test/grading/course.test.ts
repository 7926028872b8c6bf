// The real course: every exercise spec in lib/exercises, the solutions/ and notebooks/ that exist now (the list grows).
import { expect } from 'chai';
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { disposeValue } from '../../lib/exercises/codec';
import { compareValues } from '../../lib/exercises/compare';
import { allSpecs } from '../../lib/exercises';
import { callIsolatedAsync } from '../../lib/exercises/call';
import { readValue } from '../../lib/exercises/codec';
import { loadGradingConfig, ruleFor } from '../../lib/grading/config';
import { PreparedExercise, type SubmissionGrade } from '../../lib/grading/grade';
import { extractExercises, readSubmission } from '../../lib/grading/extract';
import { hiddenCases } from '../../solutions/grading/hidden-cases'; // also makes tsc check the instructor's file

const REPO = path.resolve(__dirname, '..', '..');
const config = loadGradingConfig(path.join(REPO, 'solutions', 'grading'));
const specs = allSpecs();
const withExercises = (dir: string) =>
  fs.existsSync(path.join(REPO, dir))
    ? fs.readdirSync(path.join(REPO, dir)).filter((f) => f.endsWith('.ipynb') && extractExercises(readSubmission(path.join(REPO, dir, f))).cells.size > 0).sort()
    : [];

describe('grading: the course exercises', function () {
  this.timeout(300000);

  for (const spec of specs) {
    it(`${spec.id}: every known-wrong answer fails a graded check; cases are reproducible`, async () => {
      const before = tf.memory().numTensors;
      const prep = await PreparedExercise.prepare(spec, ruleFor(config, spec.id), config.hiddenCases[spec.id]);
      const again = await PreparedExercise.prepare(spec, ruleFor(config, spec.id), config.hiddenCases[spec.id]);
      try {
        expect(prep.cases.some((c) => !c.hidden), 'public cases').to.equal(true); // hidden ones may all repeat public inputs
        prep.cases.forEach((c, i) => expect(JSON.stringify(c.encodedArgs), c.name).to.equal(JSON.stringify(again.cases[i].encodedArgs)));
        for (const [name, wrong] of Object.entries(spec.wrong)) {
          let caught = false;
          for (const c of prep.cases) {
            const out = await callIsolatedAsync(wrong, c.args);
            const got = out.ok ? await readValue(out.value) : undefined;
            if (out.ok) disposeValue(out.value);
            if (!out.ok || !compareValues(got, c.expected, spec.tolerance).ok) caught = true;
          }
          expect(caught, `known-wrong answer '${name}' passes every graded check`).to.equal(true);
        }
      } finally {
        prep.dispose();
        again.dispose();
      }
      expect(tf.memory().numTensors).to.equal(before);
    });
  }

  it('solutions/grading/points.json names only existing exercises (exercises it omits get the default points)', () => {
    const unknown = Object.keys(config.exercises).filter((id) => !specs.some((s) => s.id === id));
    expect(unknown, 'ids in points.json without a spec in lib/exercises').to.deep.equal([]);
    const omitted = specs.filter((s) => !config.exercises[s.id]).map((s) => s.id);
    expect(config.hiddenCases).to.equal(hiddenCases);
    for (const id of Object.keys(hiddenCases)) expect(specs.some((s) => s.id === id), `hidden cases for unknown ${id}`).to.equal(true);
    if (omitted.length > 0) console.warn(`      note: no points set for ${omitted.join(', ')} (default ${config.defaults.points})`);
  });

  const solutions = withExercises('solutions');
  const learners = withExercises('notebooks');
  if (solutions.length + learners.length > 0) {
    describe('npm run grade on solutions/ and notebooks/', () => {
      let grades: Omit<SubmissionGrade, 'file'>[] = [];
      let out = '';
      before(async () => {
        out = fs.mkdtempSync(path.join(os.tmpdir(), 'grading-course-'));
        const inputs = [...solutions.map((f) => `solutions/${f}`), ...learners.map((f) => `notebooks/${f}`)];
        // Through the CLI, as an instructor runs it (two inputs at a time would collide on names: grade each folder's files).
        await new Promise<void>((resolve, reject) =>
          execFile(
            process.execPath,
            ['-r', 'ts-node/register', 'scripts/grade.ts', 'solutions', 'notebooks', '--out', out, '--jobs', '2'],
            { cwd: REPO, env: { ...process.env, TS_NODE_TRANSPILE_ONLY: 'true' }, maxBuffer: 1 << 24 },
            (err, _stdout, stderr) => (err ? reject(new Error(`grade failed: ${stderr}`)) : resolve()),
          ),
        );
        expect(inputs.length).to.be.greaterThan(0);
        grades = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
      });
      after(() => fs.rmSync(out, { recursive: true, force: true }));

      for (const f of solutions) {
        it(`solutions/${f} scores full marks`, () => {
          const g = grades.find((x) => x.name === `solutions/${f}`)!;
          expect(g.notes).to.deep.equal([]);
          for (const e of g.exercises) expect(e.status, `${e.id}: ${e.reason}`).to.equal('passed');
          expect(g.total).to.equal(g.maxTotal);
          expect(g.maxTotal).to.be.greaterThan(0);
        });
      }
      for (const f of learners) {
        it(`notebooks/${f} (untouched) scores zero on every exercise`, () => {
          const g = grades.find((x) => x.name === `notebooks/${f}`)!;
          for (const e of g.exercises) expect(e.status, `${e.id}: ${e.reason}`).to.equal('not-attempted');
          expect(g.total).to.equal(0);
        });
      }
      it('writes the gradebook with one row per notebook', () => {
        const rows = fs.readFileSync(path.join(out, 'gradebook.csv'), 'utf8').trim().split('\n');
        expect(rows[0].startsWith('submission,')).to.equal(true);
        expect(rows.length).to.be.greaterThan(solutions.length + learners.length);
      });
    });
  }
});
