/**
 * npm run grade -- <submission.ipynb | folder> [more …] [--out dir] [--jobs N] [--notebook <name>] [--config dir]
 *                  [--time-limit seconds] [--unsafe-no-sandbox]
 * npm run grade -- --print-sandbox        what isolates the learners' code here, and one run's command line
 *
 * Writes <out>/gradebook.csv, <out>/results.json and <out>/reports/<submission>.md (default out: ./grades).
 * Learner code runs in bubblewrap sandboxes (lib/grading/sandbox.ts); where bubblewrap cannot run, the grader refuses
 * unless --unsafe-no-sandbox is given. See docs/grading.md.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../lib/errors';
import { ArgList } from './cli-args';
import { allSpecs } from '../lib/exercises';
import { loadGradingConfig } from '../lib/grading/config';
import { gradeSubmissions, type Submission } from '../lib/grading/grade';
import { writeOutputs } from '../lib/grading/report';
import { Sandbox } from '../lib/grading/sandbox';

const ROOT = path.resolve(__dirname, '..');

export interface GradeArgs {
  inputs: string[];
  out: string;
  jobs: number;
  notebook?: string;
  config: string;
  timeLimitS?: number;
  unsafeNoSandbox: boolean;
  /** Print what isolates the learners' code and the command line of one sandboxed run, then stop. */
  printSandbox?: boolean;
}

export function parseArgs(argv: string[]): GradeArgs {
  const a: GradeArgs = { inputs: [], out: 'grades', jobs: 2, config: path.join(ROOT, 'solutions', 'grading'), unsafeNoSandbox: false };
  const args = new ArgList(argv);
  for (let flag = args.next(); flag !== undefined; flag = args.next()) {
    if (flag === '--out') a.out = args.value(flag);
    else if (flag === '--jobs') a.jobs = Number(args.value(flag));
    else if (flag === '--notebook') a.notebook = args.value(flag);
    else if (flag === '--config') a.config = args.value(flag);
    else if (flag === '--time-limit') a.timeLimitS = Number(args.value(flag));
    else if (flag === '--unsafe-no-sandbox') a.unsafeNoSandbox = true;
    else if (flag === '--print-sandbox') a.printSandbox = true;
    else if (flag.startsWith('--')) throw new InvalidArgumentError(`unknown option ${flag}; see the usage in scripts/grade.ts`);
    else a.inputs.push(flag);
  }
  if (a.inputs.length === 0 && !a.printSandbox) throw new InvalidArgumentError('usage: npm run grade -- <submission.ipynb | folder> [--out dir] [--jobs N]');
  if (!Number.isInteger(a.jobs) || a.jobs < 1) throw new InvalidArgumentError(`--jobs must be a positive integer, got ${a.jobs}`);
  if (a.timeLimitS !== undefined && !(a.timeLimitS > 0)) throw new InvalidArgumentError(`--time-limit must be > 0 seconds`);
  return a;
}

/**
 * The .ipynb files to grade: files as given, folders searched recursively (checkpoints skipped). Names are relative to
 * the folder given; with several inputs they start with the input's own name, so that they stay distinct.
 */
export function collectSubmissions(inputs: string[]): Submission[] {
  const subs: Submission[] = [];
  for (const input of inputs) {
    if (!fs.existsSync(input)) throw new InvalidArgumentError(`no such file or folder: ${input}`);
    const prefix = inputs.length > 1 ? `${path.basename(path.resolve(input))}/` : '';
    if (fs.statSync(input).isFile()) {
      subs.push({ file: path.resolve(input), name: path.basename(input) });
      continue;
    }
    const walk = (dir: string) => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((x, y) => x.name.localeCompare(y.name))) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) {
          if (entry.name !== '.ipynb_checkpoints' && entry.name !== 'node_modules' && !entry.name.startsWith('.')) walk(full);
        } else if (entry.isFile() && entry.name.endsWith('.ipynb')) {
          subs.push({ file: path.resolve(full), name: prefix + path.relative(input, full).split(path.sep).join('/') });
        }
      }
    };
    walk(input);
  }
  const seen = new Set<string>();
  for (const s of subs) {
    if (seen.has(s.name)) throw new InvalidArgumentError(`two submissions would both be named ${s.name}; pass their folder instead`);
    seen.add(s.name);
  }
  return subs;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.printSandbox) {
    const sb = new Sandbox({ mode: args.unsafeNoSandbox ? 'unsafe' : 'bwrap' });
    console.log(`sandbox: ${sb.probe().summary}\n\none run:\n${sb.describeCommand()}`);
    return;
  }
  // The reference runs here on the cpu backend, like the learners' code in the children (deterministic).
  const warn = console.warn;
  console.warn = () => undefined;
  await tf.setBackend('cpu');
  tf.tensor([0]).dispose();
  console.warn = warn;

  const submissions = collectSubmissions(args.inputs);
  const specs = allSpecs();
  const config = loadGradingConfig(args.config);
  for (const s of specs) if (!config.exercises[s.id]) console.warn(`note: ${s.id} has no entry in ${args.config}/points.json (default ${config.defaults.points} point)`);
  if (path.resolve(args.config) === path.join(ROOT, 'solutions', 'grading')) {
    console.warn(
      'note: grading with the course\'s own solutions/grading, which is public: learners can compute its hidden cases. ' +
        'Copy it to a private folder, change hiddenSeeds and hidden-cases.ts, and pass --config <folder>.',
    );
  }
  console.log(`grading ${submissions.length} submission(s) on ${specs.length} exercise(s) with ${args.jobs} job(s)`);
  const started = Date.now();
  const grades = await gradeSubmissions(submissions, {
    specs,
    config,
    jobs: args.jobs,
    notebook: args.notebook,
    limits: args.timeLimitS ? { timeLimitMs: args.timeLimitS * 1000 } : undefined,
    sandboxMode: args.unsafeNoSandbox ? 'unsafe' : 'bwrap',
    onSandbox: (summary) => console.log(`sandbox: ${summary}`),
    onProgress: (line) => console.log(line),
  });
  const out = writeOutputs(grades, args.out);
  for (const g of grades) console.log(`${g.name}: ${g.total} / ${g.maxTotal}${g.problem ? ` (${g.problem})` : ''}`);
  console.log(`gradebook: ${out.gradebook}\nreports:   ${path.dirname(out.reports[0] ?? path.join(args.out, 'reports', 'x'))}`);
  console.log(`graded in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const broken = grades.flatMap((g) => g.exercises.filter((e) => e.reason.startsWith('grader problem')).map((e) => `${g.name} ${e.id}`));
  if (broken.length > 0) {
    console.error(`WARNING: ${broken.length} exercise(s) could not be graded because of the grader, not the learner (see their reports): ${broken.slice(0, 5).join(', ')}${broken.length > 5 ? ' …' : ''}`);
    process.exitCode = 2;
  }
}

if (require.main === module) {
  main().catch((e) => {
    console.error(`${(e as Error).name}: ${(e as Error).message}`);
    process.exit(1);
  });
}
