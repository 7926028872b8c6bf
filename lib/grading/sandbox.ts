/**
 * Run one learner exercise in a separate, restricted Node process.
 *
 * - Node's permission model (`--experimental-permission`): the child may read only the repository's lib/ and
 *   node_modules/, the runner file and its own fresh temp folder, and write only that folder; it cannot spawn processes,
 *   start workers or load native addons. So solutions/, the hidden checks and other submissions are out of reach.
 * - Limits: wall time (SIGKILL), memory (V8 heap via --max-old-space-size, plus the whole process's RSS polled from
 *   /proc on Linux: tensors live outside the V8 heap), bytes printed, and bytes written to its temp folder.
 * - A minimal environment (PATH, NODE_PATH, HOME = the temp folder, DIFFUSION_FAST if set); cwd = the temp folder,
 *   which is deleted afterwards.
 * Only the encoded arguments go in and the encoded results come out (results.jsonl); comparison happens in the grader.
 * Known gap: Node 20's permission model does not restrict the network.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ts from 'typescript';
import { InvalidArgumentError } from '../errors';
import type { Json } from '../exercises/codec';
import { COMPILER_OPTIONS, EXPORT_NAME } from './compile';

export interface SandboxLimits {
  /** Wall-clock limit for loading the cell and running every case. */
  timeLimitMs: number;
  /** Memory limit of the whole child process (MB). */
  memoryMB: number;
  /** The child is stopped once it has printed more than this. */
  maxOutputBytes: number;
  /** Largest JSON text of one case's result. */
  maxResultChars: number;
  /** Largest total size of the files the child writes in its temp folder (results included). */
  maxDiskBytes: number;
}

export const DEFAULT_LIMITS: SandboxLimits = {
  timeLimitMs: 30_000,
  memoryMB: 1024,
  maxOutputBytes: 1_000_000,
  maxResultChars: 5_000_000,
  maxDiskBytes: 256_000_000,
};

/** How much of the learner's printed output is kept for the report. */
export const KEPT_OUTPUT_CHARS = 4000;

export type SandboxCaseResult = { ok: true; value: Json } | { ok: false; error: string; notImplemented: boolean };

export type SandboxPhase =
  | 'done' // every case ran (each may still have thrown)
  | 'not-implemented' // the stub threw (at import or on the first case)
  | 'import-error' // the cell threw while loading
  | 'no-function' // the cell does not define the function
  | 'timeout'
  | 'memory'
  | 'output'
  | 'crashed'; // the process ended early (process.exit, a fatal error …)

export interface SandboxResult {
  phase: SandboxPhase;
  /** A sentence for the report when phase is not 'done'. */
  reason: string;
  /** One entry per case; undefined where the case was not reached. */
  results: (SandboxCaseResult | undefined)[];
  /** The learner's stdout and stderr (truncated). */
  output: string;
  wallMs: number;
}

export interface SandboxJob {
  /** The compiled cell (compileCell). */
  code: string;
  functionName: string;
  /** Cases with codec-encoded arguments. */
  cases: { name: string; args: Json }[];
}

/** Node 20–22 spell it --experimental-permission; from Node 23.5 the permission model is stable as --permission. */
export const PERMISSION_FLAG = (() => {
  const [major, minor] = process.versions.node.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 5) ? '--permission' : '--experimental-permission';
})();

/** Whether the resident-memory watchdog can work here (Linux /proc); elsewhere only the V8 heap limit applies. */
export const CAN_WATCH_RSS = fs.existsSync('/proc/self/status');

/** lib modules the runner uses (and their imports). */
const RUNNER_HELPERS = ['errors', 'exercises/codec', 'exercises/compare', 'exercises/selfcheck', 'exercises/types'];

/** Where the children find their runner and what they may read; make one per grading run, dispose it at the end. */
export class Sandbox {
  readonly dir: string;
  readonly runnerFile: string;

  constructor(readonly repoRoot: string = path.resolve(__dirname, '..', '..')) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'diffusion-grade-runner-'));
    this.runnerFile = path.join(this.dir, 'runner.js');
    const transpile = (from: string, to: string) => {
      fs.mkdirSync(path.dirname(to), { recursive: true });
      fs.writeFileSync(to, ts.transpileModule(fs.readFileSync(from, 'utf8'), { compilerOptions: COMPILER_OPTIONS }).outputText);
    };
    transpile(path.join(__dirname, 'child-runner.ts'), this.runnerFile);
    // The runner's helpers, precompiled so that a child needs no TypeScript unless the cell imports lib.
    const lib = path.join(__dirname, '..');
    for (const f of RUNNER_HELPERS) transpile(path.join(lib, `${f}.ts`), path.join(this.dir, 'lib', `${f}.js`));
  }

  get libDir(): string {
    return fs.realpathSync(path.join(this.repoRoot, 'lib'));
  }

  get nodeModules(): string {
    return fs.realpathSync(path.join(this.repoRoot, 'node_modules'));
  }

  dispose(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  run(job: SandboxJob, limits: SandboxLimits = DEFAULT_LIMITS): Promise<SandboxResult> {
    return runJob(this, job, limits);
  }
}

/** Bytes of the files under dir; Infinity past 10,000 entries (a child creating files by the thousand is over limit). */
function dirBytes(dir: string): number {
  let total = 0;
  let entries = 0;
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (++entries > 10_000) throw new RangeError('too many files');
      const f = path.join(d, e.name);
      if (e.isDirectory()) walk(f);
      else total += fs.lstatSync(f).size;
    }
  };
  try {
    walk(dir);
  } catch (e) {
    if (e instanceof RangeError) return Infinity;
  }
  return total;
}

function readRss(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

interface Event {
  event: string;
  case?: number;
  ok?: boolean;
  value?: Json;
  error?: string;
  notImplemented?: boolean;
  got?: string;
}

function readEvents(file: string, maxBytes: number): Event[] {
  if (!fs.existsSync(file)) return [];
  if (fs.statSync(file).size > maxBytes) return [{ event: 'garbled', error: 'the result file is larger than allowed' }];
  const events: Event[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      events.push(JSON.parse(line) as Event);
    } catch {
      events.push({ event: 'garbled', error: 'the result file was corrupted (did the exercise write to results.jsonl?)' });
    }
  }
  return events;
}

async function runJob(sb: Sandbox, job: SandboxJob, limits: SandboxLimits): Promise<SandboxResult> {
  if (!/^[A-Za-z_$][\w$]*$/.test(job.functionName)) throw new InvalidArgumentError(`invalid function name ${job.functionName}`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'diffusion-grade-job-'));
  const started = Date.now();
  try {
    fs.writeFileSync(path.join(work, 'cell.js'), job.code);
    const input = {
      functionName: job.functionName,
      exportName: EXPORT_NAME,
      cases: job.cases,
      maxResultChars: limits.maxResultChars,
      maxOutputBytes: limits.maxOutputBytes,
    };
    fs.writeFileSync(path.join(work, 'input.json'), JSON.stringify(input));
    const args = [
      '--no-warnings',
      PERMISSION_FLAG,
      `--allow-fs-read=${sb.libDir}`,
      `--allow-fs-read=${sb.nodeModules}`,
      `--allow-fs-read=${sb.dir}`,
      `--allow-fs-read=${work}`,
      `--allow-fs-write=${work}`,
      `--max-old-space-size=${limits.memoryMB}`,
      sb.runnerFile,
      sb.libDir,
      work,
    ];
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_PATH: sb.nodeModules, HOME: work, TMPDIR: work };
    if (process.env.DIFFUSION_FAST !== undefined) env.DIFFUSION_FAST = process.env.DIFFUSION_FAST;

    let output = '';
    let printed = 0;
    let killedFor: { phase: SandboxPhase; reason: string } | undefined;
    const child = spawn(process.execPath, args, { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const stop = (phase: SandboxPhase, reason: string) => {
      if (killedFor) return;
      killedFor = { phase, reason };
      child.kill('SIGKILL');
    };
    const onData = (chunk: Buffer) => {
      printed += chunk.length;
      if (output.length < KEPT_OUTPUT_CHARS) output += chunk.toString('utf8').slice(0, KEPT_OUTPUT_CHARS - output.length);
      if (printed > limits.maxOutputBytes) stop('output', `printed more than ${Math.round(limits.maxOutputBytes / 1000)} kB of output`);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => stop('timeout', `exceeded the time limit of ${limits.timeLimitMs / 1000} s`), limits.timeLimitMs);
    let ticks = 0;
    const watch = setInterval(() => {
      const rss = child.pid === undefined ? undefined : readRss(child.pid);
      if (rss !== undefined && rss > limits.memoryMB * 1024 * 1024) stop('memory', `used more than ${limits.memoryMB} MB of memory`);
      if (++ticks % 5 === 0 && dirBytes(work) > limits.maxDiskBytes) {
        stop('output', `wrote more than ${Math.round(limits.maxDiskBytes / 1e6)} MB of files`);
      }
    }, 50);
    const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.on('close', (code, signal) => resolve({ code, signal }));
      child.on('error', () => resolve({ code: null, signal: null }));
    });
    clearTimeout(timer);
    clearInterval(watch);

    const diskFull = dirBytes(work) > limits.maxDiskBytes;
    if (diskFull) stop('output', `wrote more than ${Math.round(limits.maxDiskBytes / 1e6)} MB of files`);
    const events = diskFull ? [] : readEvents(path.join(work, 'results.jsonl'), limits.maxDiskBytes);
    const results: (SandboxCaseResult | undefined)[] = new Array(job.cases.length).fill(undefined);
    let lastStarted = -1;
    let phase: SandboxPhase | undefined;
    let reason = '';
    let ready = false;
    for (const e of events) {
      if (e.event === 'ready') ready = true;
      else if (e.event === 'start' && typeof e.case === 'number') lastStarted = e.case;
      else if (e.event === 'result' && typeof e.case === 'number' && e.case >= 0 && e.case < results.length) {
        results[e.case] = e.ok
          ? { ok: true, value: e.value ?? null }
          : { ok: false, error: String(e.error), notImplemented: Boolean(e.notImplemented) };
      } else if (e.event === 'import-error') {
        phase = e.notImplemented ? 'not-implemented' : 'import-error';
        reason = e.notImplemented ? 'not attempted yet' : `the cell threw while loading: ${e.error}`;
      } else if (e.event === 'no-function') {
        phase = 'no-function';
        reason = `the cell does not define a function ${job.functionName} (found ${e.got})`;
      } else if (e.event === 'output-limit') {
        killedFor ??= { phase: 'output', reason: `printed more than ${Math.round(limits.maxOutputBytes / 1000)} kB of output` };
      } else if (e.event === 'runner-error') {
        phase = 'crashed';
        reason = `the grader's runner failed: ${String(e.error).split('\n')[0]}`;
      } else if (e.event === 'garbled') {
        phase = 'crashed';
        reason = String(e.error);
      } else if (e.event === 'done' && phase === undefined) phase = 'done';
    }
    const during =
      lastStarted >= 0 && results[lastStarted] === undefined ? ` during case '${job.cases[lastStarted].name}'` : ready && phase === undefined ? ' while loading the cell' : '';
    if (killedFor) {
      phase = killedFor.phase;
      reason = killedFor.reason + during;
    } else if (phase === undefined) {
      if (/heap out of memory|allocation failed/i.test(output)) {
        phase = 'memory';
        reason = `ran out of memory${during}`;
      } else {
        phase = 'crashed';
        const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
        reason = `the process ${how}${during} before finishing (process.exit() or a fatal error?)`;
      }
    }
    if (phase === 'done' && results.some((r) => r && !r.ok && r.notImplemented)) {
      phase = 'not-implemented';
      reason = 'not attempted yet';
    }
    // Temp folder names are random: keep them out of what is reported, so that grading twice gives the same report.
    const clean = (text: string) => text.split(work).join('<tmp>').split(sb.dir).join('<runner>');
    for (const r of results) if (r && !r.ok) r.error = clean(r.error);
    return { phase, reason: clean(reason), results, output: clean(output), wallMs: Date.now() - started };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
