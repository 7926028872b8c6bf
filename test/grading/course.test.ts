// The real course: every exercise spec in lib/exercises, the solutions/ and notebooks/ that exist now (the list grows).
import { expect } from 'chai';
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { disposeValue, encodeValue } from '../../lib/exercises/codec';
import { allSpecs } from '../../lib/exercises';
import { checkCases, PUBLIC_SEED } from '../../lib/exercises/selfcheck';
import type { CheckCase } from '../../lib/exercises/types';
import { emptyNotebook, serializeNotebook, splitSource, type NotebookCell } from '../../lib/notebook/ipynb';
import { alternatives } from '../exercises/alternatives';
import { sandboxAvailable } from './helpers';
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

/** The submissions of the audit that were graded wrongly (as real notebooks: an exercise cell, helpers in cells). */
function auditNotebook(cells: string[]): string {
  const nb = emptyNotebook();
  const code = (src: string): NotebookCell => {
    const m = /^\/\/ EXERCISE (\S+):/.exec(src);
    return { cell_type: 'code', metadata: m ? { tags: ['exercise'], exercise: { id: m[1] } } : {}, source: splitSource(src), outputs: [], execution_count: null };
  };
  nb.cells.push(code("import * as tf from '@tensorflow/tfjs';"), ...cells.map(code));
  return serializeNotebook(nb);
}
const AUDIT: Record<string, string> = {
  'alpha-bar-float32.ipynb': auditNotebook([
    '// EXERCISE 01-alpha-bar: float32 cumprod\nfunction alphaBar(betas: number[]): number[] {\n  return tf.tidy(() => tf.cumprod(tf.sub(1, tf.tensor1d(betas))).arraySync() as number[]);\n}',
  ]),
  'alpha-bar-helper-cell.ipynb': auditNotebook([
    'function alphaBars(betas: number[]): number[] {\n  let p = 1;\n  return betas.map((b) => (p *= 1 - b));\n}',
    '// EXERCISE 01-alpha-bar: with a helper\nfunction alphaBar(betas: number[]): number[] {\n  return alphaBars(betas);\n}',
  ]),
  'posterior-variance-float32.ipynb': auditNotebook([
    `// EXERCISE 02-posterior-variance: float32 ops
function posteriorVariance(betas: number[]): number[] {
  return tf.tidy(() => {
    const b = tf.tensor1d(betas);
    const abar = tf.cumprod(tf.sub(1, b));
    const prev = tf.concat([tf.ones([1]), abar.slice(0, betas.length - 1)]);
    return tf.div(tf.mul(b, tf.sub(1, prev)), tf.sub(1, abar)).arraySync() as number[];
  });
}`,
  ]),
  'group-norm-eps-outside-sqrt.ipynb': auditNotebook([
    `// EXERCISE 05-group-norm: ε outside the square root
function groupNorm(x: tf.Tensor4D, groups: number, gamma: tf.Tensor1D, beta: tf.Tensor1D): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  return tf.tidy(() => {
    const g = tf.reshape(x, [b, h * w, groups, c / groups]);
    const { mean, variance } = tf.moments(g, [1, 3], true);
    const normed = tf.div(tf.sub(g, mean), tf.add(tf.sqrt(variance), 1e-5));
    return tf.add(tf.mul(tf.reshape(normed, [b, h, w, c]), gamma), beta) as tf.Tensor4D;
  });
}`,
  ]),
};

describe('grading: the course exercises', function () {
  this.timeout(300000);

  for (const spec of specs) {
    describe(spec.id, () => {
      const rule = ruleFor(config, spec.id);
      /** The graded cases by where they come from: the public seed, each hidden seed, the instructor's edges. */
      const caseSets = (): [string, CheckCase[]][] => [
        ['public', spec.cases(PUBLIC_SEED)],
        ...rule.hiddenSeeds.map((s): [string, CheckCase[]] => [`seed ${s}`, spec.cases(s)]),
        ...(config.hiddenCases[spec.id] ? [['hidden edges', config.hiddenCases[spec.id](rule.hiddenSeeds[0] ?? 1)] as [string, CheckCase[]]] : []),
      ];
      const statuses = async (fn: (...a: any[]) => unknown, cases: CheckCase[]) => (await checkCases(spec, fn, { cases })).map((r) => `${r.status}: ${r.name}: ${r.message}`);

      it('cases are reproducible, and every hidden seed brings inputs the public cases do not have', async () => {
        const before = tf.memory().numTensors;
        const prep = await PreparedExercise.prepare(spec, rule, config.hiddenCases[spec.id]);
        const again = await PreparedExercise.prepare(spec, rule, config.hiddenCases[spec.id]);
        expect(prep.cases.map((c) => JSON.stringify(c.encodedArgs))).to.deep.equal(again.cases.map((c) => JSON.stringify(c.encodedArgs)));
        expect(prep.cases.some((c) => !c.hidden), 'public cases').to.equal(true);
        const publicArgs = new Set(prep.cases.filter((c) => !c.hidden).map((c) => JSON.stringify(c.encodedArgs)));
        expect(rule.hiddenSeeds.length, 'hidden seeds').to.be.greaterThan(0);
        for (const seed of rule.hiddenSeeds) {
          const cases = spec.cases(seed);
          const fresh = cases.filter((c) => !publicArgs.has(JSON.stringify(encodeValue(c.args))));
          disposeValue(cases.map((c) => c.args));
          expect(fresh.length, `cases(${seed}) repeats the public cases: hidden seeds would add nothing`).to.be.greaterThan(0);
        }
        expect(tf.memory().numTensors).to.equal(before);
      });

      it('every known-wrong answer fails in the public cases and again in every hidden seed\'s cases', async () => {
        const before = tf.memory().numTensors;
        for (const [set, cases] of caseSets()) {
          try {
            if (set === 'hidden edges') continue; // edges target particular mistakes
            for (const [name, wrong] of Object.entries(spec.wrong)) {
              const st = await statuses(wrong, cases);
              expect(st.some((x) => !x.startsWith('pass')), `known-wrong answer '${name}' passes every ${set} case`).to.equal(true);
            }
          } finally {
            disposeValue(cases.map((c) => c.args));
          }
        }
        expect(tf.memory().numTensors).to.equal(before);
      });

      it('correct answers computed in float32 (and async ones) pass every graded case', async () => {
        const alts = Object.entries(alternatives[spec.id] ?? {});
        expect(alts.length, 'no float32 alternative answer in test/exercises/alternatives.ts').to.be.greaterThan(0);
        const before = tf.memory().numTensors;
        for (const [set, cases] of caseSets()) {
          try {
            for (const [name, fn] of alts) {
              for (const x of await statuses(fn, cases)) expect(x, `${name} on ${set}`).to.match(/^pass/);
            }
          } finally {
            disposeValue(cases.map((c) => c.args));
          }
        }
        expect(tf.memory().numTensors).to.equal(before);
      });
    });
  }

  it('05-group-norm: ε outside the square root passes every case but the nearly constant group, which catches it', async () => {
    const spec = specs.find((s) => s.id === '05-group-norm')!;
    const cases = spec.cases(PUBLIC_SEED);
    try {
      const r = await checkCases(spec, spec.wrong.epsOutsideSqrt, { cases });
      expect(r.filter((x) => x.status !== 'pass').map((x) => x.name)).to.deep.equal(['a nearly constant group (variance ≪ ε)']);
    } finally {
      disposeValue(cases.map((c) => c.args));
    }
  });

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
        const audit = path.join(out, 'audit');
        fs.mkdirSync(audit);
        for (const [f, text] of Object.entries(AUDIT)) fs.writeFileSync(path.join(audit, f), text);
        const inputs = [...solutions.map((f) => `solutions/${f}`), ...learners.map((f) => `notebooks/${f}`)];
        // Through the CLI, as an instructor runs it (two inputs at a time would collide on names: grade each folder's files).
        await new Promise<void>((resolve, reject) =>
          execFile(
            process.execPath,
            // where bubblewrap cannot run (the attack tests say why), grade what can be graded: Node's permission model only
            ['-r', 'ts-node/register', 'scripts/grade.ts', 'solutions', 'notebooks', audit, '--out', path.join(out, 'grades'), '--jobs', '2', ...(sandboxAvailable() ? [] : ['--unsafe-no-sandbox'])],
            { cwd: REPO, env: { ...process.env, TS_NODE_TRANSPILE_ONLY: 'true' }, maxBuffer: 1 << 24 },
            (err, _stdout, stderr) => (err ? reject(new Error(`grade failed: ${stderr}`)) : resolve()),
          ),
        );
        expect(inputs.length).to.be.greaterThan(0);
        grades = JSON.parse(fs.readFileSync(path.join(out, 'grades', 'results.json'), 'utf8'));
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
      // The audit's false negatives get full marks; the wrong answer it found loses its points.
      const auditCase: [string, string, string][] = [
        ['alpha-bar-float32.ipynb', '01-alpha-bar', 'passed'],
        ['alpha-bar-helper-cell.ipynb', '01-alpha-bar', 'passed'],
        ['posterior-variance-float32.ipynb', '02-posterior-variance', 'passed'],
        ['group-norm-eps-outside-sqrt.ipynb', '05-group-norm', 'failed'],
      ];
      for (const [f, id, status] of auditCase) {
        it(`audit: ${f} → ${id} ${status}`, () => {
          const e = grades.find((x) => x.name === `audit/${f}`)!.exercises.find((x) => x.id === id)!;
          expect(e.status, e.reason).to.equal(status);
          if (status === 'failed') expect(e.reason).to.contain("known mistake 'epsOutsideSqrt'");
        });
      }

      it('writes the gradebook with one row per notebook', () => {
        const rows = fs.readFileSync(path.join(out, 'grades', 'gradebook.csv'), 'utf8').trim().split('\n');
        expect(rows[0].startsWith('submission,')).to.equal(true);
        expect(rows.length).to.be.greaterThan(solutions.length + learners.length);
      });
    });
  }
});
