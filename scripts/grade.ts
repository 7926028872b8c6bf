/**
 * npm run grade -- <submission.ipynb | folder> [more …] [--out dir] [--jobs N] [--notebook <name>] [--config dir]
 *                  [--time-limit seconds] [--unsafe-no-sandbox]
 * npm run grade -- --print-sandbox        what isolates the learners' code here, and one run's command line
 * npm run grade -- --bench-sandbox 40     start-up cost of a sandboxed run, with and without bubblewrap
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
import { showControls, writeOutputs } from '../lib/grading/report';
import { Sandbox } from '../lib/grading/sandbox';
import { compileCell, SANDBOX_LIB } from '../lib/grading/compile';
import { buildLibView } from '../lib/grading/libview';
import { encodeValue } from '../lib/exercises/codec';
import { spawnSync } from 'child_process';

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
  /** Time N sandboxed runs with bubblewrap and N without (alternating), then stop. */
  benchSandbox?: number;
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
    else if (flag === '--bench-sandbox') a.benchSandbox = Number(args.value(flag));
    else if (flag.startsWith('--')) throw new InvalidArgumentError(`unknown option ${flag}; see the usage in scripts/grade.ts`);
    else a.inputs.push(flag);
  }
  if (a.benchSandbox !== undefined && !(Number.isInteger(a.benchSandbox) && a.benchSandbox > 0)) throw new InvalidArgumentError('--bench-sandbox needs a positive number of runs');
  if (a.inputs.length === 0 && !a.printSandbox && a.benchSandbox === undefined) throw new InvalidArgumentError('usage: npm run grade -- <submission.ipynb | folder> [--out dir] [--jobs N]');
  if (!Number.isInteger(a.jobs) || a.jobs < 1) throw new InvalidArgumentError(`--jobs must be a positive integer, got ${a.jobs}`);
  if (a.timeLimitS !== undefined && !(a.timeLimitS > 0)) throw new InvalidArgumentError(`--time-limit must be > 0 seconds`);
  return a;
}

/**
 * The .ipynb files to grade: files as given, folders searched recursively (checkpoints skipped; in a folder only
 * regular files, anything else named *.ipynb is reported to onSkip). Names are relative to the folder given; with
 * several inputs they start with the input's own name, so that they stay distinct.
 */
export function collectSubmissions(inputs: string[], onSkip: (why: string) => void = (why) => console.warn(showControls(`[grade] ${why}`))): Submission[] {
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
        } else if (entry.name.endsWith('.ipynb')) {
          // a link could point at another learner's notebook or /dev/zero, a FIFO would block the read: never followed
          onSkip(`skipped ${full}: not a regular file (${entry.isSymbolicLink() ? 'a symbolic link' : 'a device, FIFO or socket'}); copy the notebook itself there to grade it`);
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

/**
 * The sandbox's start-up cost: the same small exercise (3 cases, tfjs loaded in the child) run n times with bubblewrap
 * and n times in unsafe mode, alternating, after 2 warm-ups each; then the bare commands (node -e 0) with and without
 * bwrap. Prints median and mean of each.
 */
async function benchSandbox(n: number): Promise<void> {
  const stats = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return `median ${s[Math.floor(s.length / 2)].toFixed(0)} ms, mean ${(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(0)} ms, min ${s[0].toFixed(0)}, max ${s[s.length - 1].toFixed(0)} (n = ${xs.length})`;
  };
  const abar = [0.99, 0.9, 0.5, 0.1];
  const modes = { bubblewrap: new Sandbox({ mode: 'bwrap' }), unsafe: new Sandbox({ mode: 'unsafe' }) };
  console.log(`sandbox: ${modes.bubblewrap.probe().summary}`);
  const job = {
    code: compileCell('function snr(a: number[], t: number): number { return a[t] / (1 - a[t]); }', 'snr', SANDBOX_LIB).code!,
    functionName: 'snr',
    cases: [0, 1, 3].map((t) => encodeValue([abar, t])),
    labels: ['t = 0', 't = 1', 't = 3'],
    lib: buildLibView(modes.bubblewrap.libDir, { id: 'bench' }),
  };
  const runs: Record<string, number[]> = { bubblewrap: [], unsafe: [] };
  for (let i = 0; i < n + 2; i++) {
    for (const [m, sb] of Object.entries(modes)) {
      const r = await sb.run(job);
      if (r.phase !== 'done') throw new Error(`${m}: ${r.reason}`);
      if (i >= 2) runs[m].push(r.wallMs);
    }
  }
  console.log('one sandboxed run (tfjs loaded, 3 cases), alternating:');
  for (const [m, xs] of Object.entries(runs)) console.log(`  ${m.padEnd(10)} ${stats(xs)}`);
  const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
  const bare: [string, string, { uid?: number; gid?: number }][] = [
    ['bwrap + prlimit + node -e 0', modes.bubblewrap.describeCommand().replace(/^\(as uid \d+\) /, ''), asNobody],
    ['prlimit + node -e 0', modes.unsafe.describeCommand(), {}],
  ];
  const times: number[][] = bare.map(() => []);
  for (let i = 0; i < n + 2; i++) {
    bare.forEach(([, line, who], k) => {
      const [file, ...rest] = line.split(' -e ')[0].split(' ');
      const t = process.hrtime.bigint();
      const r = spawnSync(file, [...rest, '-e', '0'], who);
      if (r.status !== 0) throw new Error(`${file}: ${String(r.stderr)}`);
      if (i >= 2) times[k].push(Number(process.hrtime.bigint() - t) / 1e6);
    });
  }
  console.log('bare start-up, same node flags:');
  bare.forEach(([name], k) => console.log(`  ${name.padEnd(28)} ${stats(times[k])}`));
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.benchSandbox !== undefined) return benchSandbox(args.benchSandbox);
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
    onProgress: (line) => console.log(showControls(line)), // learner file names: no terminal escapes
  });
  const out = writeOutputs(grades, args.out);
  for (const g of grades) console.log(showControls(`${g.name}: ${g.total} / ${g.maxTotal}${g.problem ? ` (${g.problem})` : ''}`));
  console.log(`gradebook: ${out.gradebook}\nreports:   ${path.dirname(out.reports[0] ?? path.join(args.out, 'reports', 'x'))}`);
  console.log(`graded in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const broken = grades.flatMap((g) => g.exercises.filter((e) => e.reason.startsWith('grader problem')).map((e) => `${g.name} ${e.id}`));
  if (broken.length > 0) {
    console.error(showControls(`WARNING: ${broken.length} exercise(s) could not be graded because of the grader, not the learner (see their reports): ${broken.slice(0, 5).join(', ')}${broken.length > 5 ? ' …' : ''}`));
    process.exitCode = 2;
  }
}

if (require.main === module) {
  main().catch((e) => {
    console.error(showControls(`${(e as Error).name}: ${(e as Error).message}`));
    process.exit(1);
  });
}
