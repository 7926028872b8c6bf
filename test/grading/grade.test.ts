// End-to-end grading of the fixture submissions (test/grading/fixtures): correct, untouched, wrong and hostile notebooks.
import { expect } from 'chai';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { loadGradingConfig } from '../../lib/grading/config';
import { gradeSubmissions, type SubmissionGrade } from '../../lib/grading/grade';
import { gradebookCsv, submissionReport, writeOutputs } from '../../lib/grading/report';
import { CAN_WATCH_RSS } from '../../lib/grading/sandbox';
import { sandboxAvailable, withOwnTmpdir } from './helpers';
import { collectSubmissions } from '../../scripts/grade';
import { fixtureSpecs } from './fixtures/specs';

const FIXTURES = path.join(__dirname, 'fixtures');
const SUBMISSIONS = path.join(FIXTURES, 'submissions');
const REPO = path.resolve(__dirname, '..', '..');
const config = loadGradingConfig(path.join(FIXTURES, 'grading'));
// 8 s: far above what a correct fixture answer needs (< 1 s even on a busy machine), short enough for the loop test.
// Without bubblewrap (not Linux …) the end-to-end tests run in unsafe mode, which the attack tests skip.
const mode = sandboxAvailable() ? 'bwrap' : 'unsafe';
const opts = { specs: fixtureSpecs, config, jobs: 3, limits: { timeLimitMs: 8000, maxDiskBytes: 20e6 }, sandboxMode: mode } as const;

const hash = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

describe('grading: fixture submissions end to end', function () {
  this.timeout(300000);
  const byName = new Map<string, SubmissionGrade>();
  const hashesBefore = new Map<string, string>();
  let tensorsBefore = 0;
  const points = (name: string) => Object.fromEntries(byName.get(name)!.exercises.map((e) => [e.id, e.points]));
  const exercise = (name: string, id: string) => byName.get(name)!.exercises.find((e) => e.id === id)!;

  let tmpLeft: string[] = [];
  before(async () => {
    const subs = collectSubmissions([SUBMISSIONS]);
    for (const s of subs) hashesBefore.set(s.file, hash(s.file));
    tensorsBefore = tf.memory().numTensors;
    // The grader gets a temp folder of the test's own (TMPDIR), which must stay empty: it writes nothing to disk.
    tmpLeft = await withOwnTmpdir(async () => {
      for (const g of await gradeSubmissions(subs, opts)) byName.set(g.name, g);
    });
  });

  it('the solution scores full marks on every check, public and hidden', () => {
    const g = byName.get('solution.ipynb')!;
    expect(g.total).to.equal(4);
    expect(g.maxTotal).to.equal(4);
    for (const e of g.exercises) {
      expect(e.status, e.id).to.equal('passed');
      expect(e.checks.some((c) => c.hidden), e.id).to.equal(true);
    }
    expect(exercise('solution.ipynb', 'test-cfg').checks.map((c) => c.name)).to.include('hidden 7: negative w');
  });

  it('the untouched learner notebook scores zero: "not attempted yet"', () => {
    const g = byName.get('learner.ipynb')!;
    expect(g.total).to.equal(0);
    for (const e of g.exercises) expect(e.status).to.equal('not-attempted');
  });

  const wrong: [string, string, string, string | undefined][] = [
    ['wrong-off-by-one.ipynb', 'test-q-sample', 'outside tolerance', 'offByOne'],
    ['wrong-missing-sqrt.ipynb', 'test-q-sample', 'outside tolerance', 'missingSqrt'],
    ['wrong-shape.ipynb', 'test-q-sample', 'shape: expected [3,4,4,1], got [3,16]', 'wrongShape'],
    ['wrong-nan.ipynb', 'test-q-sample', 'got NaN', 'nanOutput'],
    ['wrong-cfg-sign.ipynb', 'test-cfg', 'outside tolerance', 'wrongSign'],
  ];
  for (const [file, id, why, mistake] of wrong) {
    it(`${file} loses exactly the points of ${id}, and the report says why`, () => {
      const expected = { 'test-q-sample': 2, 'test-cfg': 1, 'test-snr': 1, [id]: 0 };
      expect(points(file)).to.deep.equal(expected);
      const e = exercise(file, id);
      expect(e.status).to.equal('failed');
      expect(e.reason).to.contain(why);
      if (mistake) expect(e.reason).to.contain(`known mistake '${mistake}'`);
      const report = submissionReport(byName.get(file)!);
      expect(report).to.contain(why);
      expect(report).to.match(/expected .* got |got .*, expected /);
    });
  }

  it('a wrong sign passes only the checks that cannot tell (w = 0)', () => {
    const checks = exercise('wrong-cfg-sign.ipynb', 'test-cfg').checks;
    expect(checks.filter((c) => c.status === 'pass').map((c) => c.name)).to.deep.equal(['w = 0', 'hidden 1: w = 0', 'hidden 4: w = 0']);
  });

  const broken: [string, string, string][] = [
    ['missing-cell.ipynb', 'test-cfg', 'no exercise cell for test-cfg'],
    ['syntax-error.ipynb', 'test-snr', 'does not compile: line 3'],
    ['not-a-function.ipynb', 'test-snr', 'does not define a function snr'],
    ['throw-at-import.ipynb', 'test-cfg', 'threw while loading: Error: boom at import'],
  ];
  for (const [file, id, why] of broken) {
    it(`${file}: zero for ${id} with a clear reason, the other exercises graded`, () => {
      expect(exercise(file, id).points).to.equal(0);
      expect(exercise(file, id).reason).to.contain(why);
      expect(byName.get(file)!.total).to.equal(4 - config.exercises[id]!.points!);
    });
  }

  it('an invalid notebook is reported, not fatal', () => {
    const g = byName.get('invalid.ipynb')!;
    expect(g.total).to.equal(0);
    expect(g.problem).to.contain('not a valid notebook');
  });

  const hostile: [string, string, string][] = [
    ['hostile-loop.ipynb', 'test-q-sample', 'exceeded the time limit of 8 s during case'],
    ['hostile-exit.ipynb', 'test-cfg', 'exited with code 0 during case'],
    ['hostile-alloc.ipynb', 'test-snr', 'used more than 512 MB of memory'],
    ['hostile-print.ipynb', 'test-snr', 'printed more than 1000 kB of output'],
    ['hostile-disk.ipynb', 'test-snr', 'wrote more than 20 MB of files'],
    ['hostile-write.ipynb', 'test-cfg', 'threw Error: Access to this API has been restricted'],
  ];
  if (mode === 'unsafe') hostile.splice(hostile.findIndex((h) => h[0] === 'hostile-disk.ipynb'), 1); // no private /tmp to fill
  for (const [file, id, why] of hostile) {
    it(`${file} is stopped safely: ${why}`, function () {
      if (file === 'hostile-alloc.ipynb' && !CAN_WATCH_RSS) this.skip(); // typed arrays live outside the V8 heap limit
      const e = exercise(file, id);
      expect(e.points).to.equal(0);
      expect(e.reason).to.contain(why);
    });
  }

  it('a cell cannot read the instructor files, other submissions or anything outside lib and node_modules', () => {
    const e = exercise('hostile-read.ipynb', 'test-cfg');
    const lines = e.output.split('\n').filter((l) => l.includes(': '));
    expect(lines.length).to.be.greaterThan(4);
    for (const l of lines) expect(l, l).to.match(/: DENIED$/);
    expect(e.points).to.equal(1); // it still answered correctly
  });

  it('a cell cannot write into lib or the host\'s /tmp', () => {
    expect(fs.existsSync(path.join(REPO, 'lib', 'pwned-by-fixture.txt'))).to.equal(false);
    expect(fs.existsSync('/tmp/pwned-by-grading-fixture.txt')).to.equal(false);
  });

  it('leaves the submissions unchanged, nothing in its temp folder and no tensors behind', () => {
    for (const [f, h] of hashesBefore) expect(hash(f), f).to.equal(h);
    expect(tmpLeft).to.deep.equal([]);
    expect(tf.memory().numTensors).to.equal(tensorsBefore);
  });

  it('grading again gives identical results, gradebook and reports', async () => {
    const names = ['solution.ipynb', 'wrong-nan.ipynb', 'learner.ipynb', 'hostile-exit.ipynb', 'hostile-read.ipynb'];
    const again = await gradeSubmissions(names.map((n) => ({ file: path.join(SUBMISSIONS, n), name: n })), opts);
    const first = names.map((n) => byName.get(n)!);
    expect(gradebookCsv(again)).to.equal(gradebookCsv(first));
    again.forEach((g, i) => expect(submissionReport(g)).to.equal(submissionReport(first[i])));
  });

  it('writes gradebook.csv (one row per submission, one column per exercise), results.json and one report each', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'grading-test-out-'));
    try {
      const grades = [...byName.values()];
      const w = writeOutputs(grades, out);
      const rows = fs.readFileSync(w.gradebook, 'utf8').trim().split('\n');
      expect(rows[0]).to.equal('submission,test-cfg,test-q-sample,test-snr,total,max,problem');
      expect(rows).to.have.length(grades.length + 1);
      expect(rows).to.include('solution.ipynb,1,2,1,4,4,');
      expect(w.reports).to.have.length(grades.length);
      expect(fs.readFileSync(path.join(out, 'reports', 'wrong-nan.md'), 'utf8')).to.contain('# Grading report: wrong-nan.ipynb');
      expect(JSON.parse(fs.readFileSync(w.results, 'utf8'))).to.have.length(grades.length);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});
