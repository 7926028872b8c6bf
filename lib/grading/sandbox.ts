/**
 * Run one learner exercise in a sandboxed child process. Two walls, and a third line of limits:
 *
 * 1. The operating system (bubblewrap, Linux): the child runs in its own user, PID, network, mount, IPC and UTS
 *    namespaces as uid/gid 65534 with no capabilities and no further user namespaces; it sees only itself as processes
 *    (it can signal nothing else: not the grader, not the other sandboxes), has no network at all (only its own empty
 *    loopback; host Unix sockets are neither mounted nor reachable, abstract ones live in the host's network
 *    namespace), and a filesystem made of /usr (read-only), the packages tfjs needs (read-only, under
 *    /course/node_modules), a private size-limited tmpfs at /tmp, and its own /proc and /dev. The grader's repository,
 *    lib's sources, solutions/, other submissions and the host's /tmp are not there. When the grader runs as root,
 *    bwrap itself is started as uid 65534 so that the process limit applies (root is exempt from RLIMIT_NPROC).
 *    It dies with the grader (--die-with-parent) and has its own session (--new-session).
 * 2. Node's permission model inside (a second wall if the first has a hole): read only /course and /tmp, write only
 *    /tmp; no child processes, workers, native addons, inspector or WASI.
 * 3. Limits: wall time (SIGKILL), and with prlimit inside: data segment (memory: V8 heap and tensors), CPU seconds,
 *    processes/threads, file size, open files, no core dumps; bytes printed; bytes of results; the tmpfs size.
 *
 * Nothing is written to the host's disk: the runner program and its helpers go in as `node -e` code, the exercise's
 * lib view (lib/grading/libview.ts), the compiled cell and the cases' inputs through stdin, the raw outputs come back
 * over fd 3 (see child-runner.ts). A killed grader leaves nothing behind; its sandboxes die with it.
 *
 * Without bubblewrap (not Linux, no user namespaces, not installed) the grader refuses to run unless the instructor
 * asks for `unsafe` mode: Node's permission model alone (no network, process or signal isolation), in a detached
 * process group.
 */
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { Readable, Writable } from 'stream';
import { StringDecoder } from 'string_decoder';
import { DiffusionError, InvalidArgumentError } from '../errors';
import type { Json } from '../exercises/codec';
import { transpile, SANDBOX_LIB } from './compile';

/** The sandbox cannot be used here (and unsafe mode was not asked for). */
export class SandboxUnavailableError extends DiffusionError {}

export interface SandboxLimits {
  /** Wall-clock limit for loading the cell and running every case. */
  timeLimitMs: number;
  /** Memory limit of the child (MB): V8 heap and, with prlimit, its whole data segment (tensors included). */
  memoryMB: number;
  /** The child is stopped once it has printed more than this. */
  maxOutputBytes: number;
  /** Largest JSON text of one case's result. */
  maxResultChars: number;
  /** Size of the child's private /tmp and largest file it may write. */
  maxDiskBytes: number;
}

export const DEFAULT_LIMITS: SandboxLimits = {
  timeLimitMs: 30_000,
  memoryMB: 1024,
  maxOutputBytes: 1_000_000,
  maxResultChars: 5_000_000,
  maxDiskBytes: 64_000_000,
};

/** How much of the learner's printed output is kept for the report. */
export const KEPT_OUTPUT_CHARS = 4000;

/** Processes and threads one sandbox may have (Node with tfjs uses about 10). */
const MAX_PROCESSES = 48;
const MAX_OPEN_FILES = 128;
/** The uid/gid the learner's code runs as, inside (and outside, when the grader is root). */
const NOBODY = 65534;

// Not a discriminated union: tslab compiles lib without strictNullChecks (see call.ts).
export interface SandboxCaseResult {
  ok: boolean;
  value?: Json;
  error?: string;
  notImplemented?: boolean;
}

export type SandboxPhase =
  | 'done' // every case ran (each may still have thrown)
  | 'not-implemented' // the stub threw (at import or on the first case)
  | 'import-error' // the cell threw while loading
  | 'no-function' // the cell does not define the function
  | 'timeout'
  | 'memory'
  | 'output'
  | 'crashed' // the process ended early (process.exit, a fatal error, a tampered result channel …)
  | 'sandbox-error'; // the grader's side failed (the sandbox could not start …): not the learner's doing

export interface SandboxResult {
  phase: SandboxPhase;
  /** A sentence for the report when phase is not 'done'. */
  reason: string;
  /** One entry per case, in the job's order; undefined where the case was not reached. */
  results: (SandboxCaseResult | undefined)[];
  /** The learner's stdout and stderr (truncated). */
  output: string;
  wallMs: number;
}

export interface SandboxJob {
  /** The compiled cell (compileCell with SANDBOX_LIB). */
  code: string;
  functionName: string;
  /** Codec-encoded arguments of each case, in the order the child runs them (the grader shuffles them). */
  cases: Json[];
  /** Grader-side names of the cases, for reasons such as "during case 't = 0'"; never sent to the child. */
  labels: string[];
  /** The exercise's lib view: module key -> code (libview.ts). */
  lib: Record<string, string>;
}

export type SandboxMode = 'bwrap' | 'unsafe';

export interface SandboxOptions {
  repoRoot?: string;
  /** 'bwrap' (default): refuse if bubblewrap cannot run; 'unsafe': Node's permission model only. */
  mode?: SandboxMode;
  /** bwrap executable (default: found on PATH). */
  bwrap?: string;
  /**
   * false: leave Node's permission model out, to show what the operating-system wall stops on its own (tests and
   * docs/grading.md). Never for real grading.
   */
  nodePermission?: boolean;
}

/** Node 20–22 spell it --experimental-permission; from Node 23.5 the permission model is stable as --permission. */
export const PERMISSION_FLAG = (() => {
  const [major, minor] = process.versions.node.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 5) ? '--permission' : '--experimental-permission';
})();

/** Whether the resident-memory watchdog can work here (Linux /proc); elsewhere only the limits inside apply. */
export const CAN_WATCH_RSS = fs.existsSync('/proc/self/status');

function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(path.delimiter)) {
    const f = path.join(dir, cmd);
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return f;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/**
 * Packages that `roots` need (dependencies, peer and optional ones), as real paths by name; type-only packages
 * (@types/…) are left out. Each is one bind mount (about 0.4 ms each, measured: 68 of them cost ~30 ms per run).
 */
export function packageClosure(nodeModules: string, roots: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const queue = [...roots];
  while (queue.length > 0) {
    const name = queue.shift()!;
    if (out.has(name) || name.startsWith('@types/')) continue;
    const dir = path.join(nodeModules, name);
    let pkg: { dependencies?: object; peerDependencies?: object; optionalDependencies?: object };
    try {
      pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    } catch {
      continue; // an optional dependency that is not installed
    }
    out.set(name, fs.realpathSync(dir));
    queue.push(...Object.keys({ ...pkg.dependencies, ...pkg.peerDependencies, ...pkg.optionalDependencies }));
  }
  return out;
}

/** The runner's helpers, in the order the bootstrap needs none of: it loads them by path on demand. */
const RUNNER_MODULES = ['errors', 'exercises/codec', 'exercises/call', 'exercises/cell', 'exercises/policy', 'grading/child-runner'];

/** The `node -e` program: a tiny loader for the runner's modules (held as strings), then the runner. */
function bootstrapCode(libDir: string): string {
  const modules: Record<string, string> = {};
  for (const m of RUNNER_MODULES) modules[`/runner/${m}.js`] = transpile(fs.readFileSync(path.join(libDir, `${m}.ts`), 'utf8'), `${m}.ts`);
  return `'use strict';
const M = ${JSON.stringify(modules)};
const C = {};
const P = require('path').posix;
function load(p) {
  if (C[p]) return C[p].exports;
  const m = { exports: {} };
  C[p] = m;
  const dir = P.dirname(p);
  const req = (s) => {
    if (s.startsWith('.')) { const r = P.join(dir, s) + '.js'; if (M[r] !== undefined) return load(r); }
    return require(s);
  };
  require('vm').compileFunction(M[p], ['exports', 'require', 'module', '__filename', '__dirname'], { filename: p })(m.exports, req, m, p, dir);
  return m.exports;
}
load('/runner/grading/child-runner.js').start();
`;
}

export interface SandboxProbe {
  mode: SandboxMode;
  /** One line for the instructor: what isolates the learners' code here. */
  summary: string;
}

/** Where the children find their runner and what they may read; make one per grading run. */
export class Sandbox {
  readonly repoRoot: string;
  readonly mode: SandboxMode;
  readonly libDir: string;
  readonly nodeModules: string;
  readonly packages: Map<string, string>;
  private readonly bootstrap: string;
  private readonly bwrap?: string;
  private readonly prlimit?: string;
  private readonly nodePermission: boolean;
  /** Spawn bwrap as uid/gid 65534 (the grader is root); undefined: as the grader's own user. */
  private asNobody = false;
  private probed?: SandboxProbe;
  /** Options of bubblewrap ≥ 0.8 / 0.6 that older versions lack (then left out, and the summary says so). */
  private bwrapHas = { disableUserns: true, size: true };

  constructor(opts: SandboxOptions = {}) {
    this.repoRoot = opts.repoRoot ?? path.resolve(__dirname, '..', '..');
    this.mode = opts.mode ?? 'bwrap';
    this.libDir = fs.realpathSync(path.join(this.repoRoot, 'lib'));
    this.nodeModules = fs.realpathSync(path.join(this.repoRoot, 'node_modules'));
    this.packages = packageClosure(this.nodeModules, ['@tensorflow/tfjs']);
    this.bootstrap = bootstrapCode(this.libDir);
    this.prlimit = ['/usr/bin/prlimit', '/bin/prlimit'].find((f) => fs.existsSync(f));
    this.nodePermission = opts.nodePermission ?? true;
    if (this.mode === 'bwrap') this.bwrap = opts.bwrap ?? which('bwrap');
  }

  /** Nothing to clean up on disk; kept so that callers can treat a sandbox as a resource. */
  dispose(): void {
    /* the children die with their sandbox; no files were written */
  }

  /**
   * Check once that the sandbox works here (starting a child that reports its pid and uid). Throws
   * SandboxUnavailableError with the reason in bwrap mode; unsafe mode always works.
   */
  probe(): SandboxProbe {
    if (this.probed) return this.probed;
    if (this.mode === 'unsafe') {
      this.probed = {
        mode: 'unsafe',
        summary: "UNSAFE: no operating-system sandbox; Node's permission model only (a cell can reach the network and signal other processes)",
      };
      return this.probed;
    }
    const fail = (why: string): never => {
      throw new SandboxUnavailableError(
        `cannot grade safely: ${why}. The grader runs learners' code in bubblewrap (Linux: apt-get install bubblewrap; user namespaces must be allowed). ` +
          `To grade anyway with Node's permission model alone (no network, process or signal isolation), pass --unsafe-no-sandbox.`,
      );
    };
    if (process.platform !== 'linux') fail(`bubblewrap needs Linux (this is ${process.platform})`);
    if (!this.bwrap) fail('bwrap is not installed (not found on PATH)');
    const help = spawnSync(this.bwrap!, ['--help'], { encoding: 'utf8' });
    this.bwrapHas = { disableUserns: /--disable-userns/.test(help.stdout ?? ''), size: /--size/.test(help.stdout ?? '') };
    const tryAs = (nobody: boolean) => {
      this.asNobody = nobody;
      const args = [...this.bwrapArgs(DEFAULT_LIMITS), ...this.nodeArgs(DEFAULT_LIMITS, ['-e', 'process.stdout.write(JSON.stringify([process.pid, process.getuid()]))'])];
      const r = spawnSync(this.bwrap!, args, { encoding: 'utf8', timeout: 30_000, ...(nobody ? { uid: NOBODY, gid: NOBODY } : {}) });
      let got: unknown;
      try {
        got = JSON.parse(r.stdout);
      } catch {
        got = undefined;
      }
      const ok = Array.isArray(got) && got[0] <= 3 && got[1] === NOBODY;
      return { ok, why: (r.error?.message ?? r.stderr ?? '').trim().split('\n').slice(-1)[0] || `unexpected output ${JSON.stringify(r.stdout)}` };
    };
    const root = process.getuid?.() === 0;
    let r = tryAs(root);
    let note = '';
    if (!r.ok && root) {
      const asRoot = tryAs(false);
      if (asRoot.ok) {
        r = asRoot;
        note = ` (bwrap started as root: uid ${NOBODY} could not create the namespaces (${r.why}), so the process limit is not enforced)`;
      }
    }
    if (!r.ok) fail(`bubblewrap failed to start a sandbox: ${r.why}`);
    const limits = this.prlimit ? 'memory, CPU, process, file-size and open-file limits (prlimit)' : 'no prlimit: only the wall-time, heap, output and tmpfs limits';
    const inside = this.nodePermission ? "Node's permission model inside" : "WITHOUT Node's permission model (test setting)";
    const old = [
      ...(this.bwrapHas.disableUserns ? [] : ['nested user namespaces are not disabled (bwrap < 0.8)']),
      ...(this.bwrapHas.size ? [] : ['/tmp is not size-limited (bwrap < 0.6; the file-size limit still applies)']),
    ];
    if (old.length > 0) note += `; ${old.join('; ')}`;
    this.probed = {
      mode: 'bwrap',
      summary: `bubblewrap ${this.bwrapVersion()}: own user/PID/network/mount namespaces, uid ${NOBODY}, read-only /usr and tfjs, private /tmp; ${limits}; ${inside}${note}`,
    };
    return this.probed;
  }

  private bwrapVersion(): string {
    const r = spawnSync(this.bwrap!, ['--version'], { encoding: 'utf8' });
    return (r.stdout ?? '').trim().replace(/^bubblewrap\s*/, '') || '?';
  }

  /** The bwrap options (namespaces, mounts, identity, environment) before the command. */
  private bwrapArgs(limits: SandboxLimits): string[] {
    const a = ['--unshare-all', '--unshare-user', ...(this.bwrapHas.disableUserns ? ['--disable-userns'] : []), '--die-with-parent', '--new-session', '--cap-drop', 'ALL'];
    a.push('--ro-bind', '/usr', '/usr');
    for (const d of ['/bin', '/lib', '/lib64', '/lib32', '/libx32', '/sbin']) {
      let st: fs.Stats;
      try {
        st = fs.lstatSync(d);
      } catch {
        continue;
      }
      if (st.isSymbolicLink()) a.push('--symlink', fs.readlinkSync(d), d);
      else if (st.isDirectory()) a.push('--ro-bind', d, d);
    }
    const nodeReal = fs.realpathSync(process.execPath);
    if (!nodeReal.startsWith('/usr/')) {
      const prefix = path.dirname(path.dirname(nodeReal)); // <prefix>/bin/node (nvm, /opt, /usr/local outside /usr …)
      a.push('--ro-bind', prefix, prefix);
    }
    for (const [name, real] of this.packages) a.push('--ro-bind', real, `/course/node_modules/${name}`);
    a.push('--proc', '/proc', '--dev', '/dev', ...(this.bwrapHas.size ? ['--size', String(limits.maxDiskBytes)] : []), '--tmpfs', '/tmp');
    a.push('--uid', String(NOBODY), '--gid', String(NOBODY), '--hostname', 'sandbox', '--chdir', '/tmp', '--clearenv');
    for (const [k, v] of Object.entries(this.childEnv('/tmp', '/course/node_modules'))) a.push('--setenv', k, v);
    a.push('--');
    return a;
  }

  private childEnv(home: string, nodePath: string): Record<string, string> {
    const env: Record<string, string> = { PATH: '/usr/bin:/bin', HOME: home, TMPDIR: home, NODE_PATH: nodePath, LANG: 'C.UTF-8' };
    if (process.env.DIFFUSION_FAST !== undefined) env.DIFFUSION_FAST = process.env.DIFFUSION_FAST;
    return env;
  }

  /** prlimit (if present) and node with the permission model, for the command line inside the sandbox. */
  private nodeArgs(limits: SandboxLimits, program: string[]): string[] {
    const a: string[] = [];
    if (this.prlimit) {
      const mb = limits.memoryMB * 1024 * 1024;
      const cpu = Math.ceil(limits.timeLimitMs / 1000) + 2;
      a.push(this.prlimit, `--data=${mb}`, `--cpu=${cpu}`, `--nproc=${MAX_PROCESSES}`, `--fsize=${limits.maxDiskBytes}`, `--nofile=${MAX_OPEN_FILES}`, '--core=0', '--');
    }
    a.push(process.execPath, '--no-warnings');
    if (this.nodePermission) {
      a.push(PERMISSION_FLAG);
      if (this.mode === 'bwrap') a.push('--allow-fs-read=/course', '--allow-fs-read=/tmp', '--allow-fs-write=/tmp');
      else a.push(`--allow-fs-read=${this.nodeModules}`);
    }
    a.push(`--max-old-space-size=${limits.memoryMB}`, ...program);
    return a;
  }

  /** The command that runs one job: [file, args, spawn options]. */
  private command(limits: SandboxLimits): { file: string; args: string[]; uid?: number; gid?: number; env: NodeJS.ProcessEnv; cwd: string; detached: boolean } {
    const program = ['-e', this.bootstrap];
    if (this.mode === 'bwrap') {
      this.probe();
      return {
        file: this.bwrap!,
        args: [...this.bwrapArgs(limits), ...this.nodeArgs(limits, program)],
        ...(this.asNobody ? { uid: NOBODY, gid: NOBODY } : {}),
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
        cwd: '/',
        detached: false,
      };
    }
    const [file, ...args] = this.nodeArgs(limits, program);
    // Its own process group and session: signals to "the group" stay there (process.kill of a pid still works).
    return { file, args, env: this.childEnv('/', this.nodeModules), cwd: '/', detached: true };
  }

  /** The command line of one job, as a shell would show it (the `node -e` program elided), for the instructor. */
  describeCommand(limits: SandboxLimits = DEFAULT_LIMITS): string {
    const c = this.command(limits);
    const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
    const args = c.args.map((a) => (a === this.bootstrap ? '<runner program>' : quote(a)));
    const who = c.uid !== undefined ? `(as uid ${c.uid}) ` : '';
    return `${who}${quote(c.file)} ${args.join(' ')}`;
  }

  run(job: SandboxJob, limits: SandboxLimits = DEFAULT_LIMITS): Promise<SandboxResult> {
    return runJob(this, job, limits, this.command(limits));
  }

  /** Kill a job's whole sandbox. */
  static kill(child: ChildProcess, mode: SandboxMode): void {
    try {
      // bwrap: its death takes the sandbox with it (--die-with-parent); unsafe: the child's own process group.
      if (mode === 'unsafe' && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      else child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

function readRss(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Resident memory of a process and its descendants (bwrap → its init → node). */
function treeRss(pid: number): number {
  let total = readRss(pid);
  try {
    for (const c of fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)) {
      if (c !== '') total += treeRss(Number(c));
    }
  } catch {
    /* gone, or no children file */
  }
  return total;
}

interface Event {
  e?: unknown;
  i?: unknown;
  ok?: unknown;
  value?: Json;
  error?: unknown;
  ni?: unknown;
  got?: unknown;
}

const MEMORY_TEXT = /heap out of memory|allocation failed|out of memory|Cannot allocate memory/i;
const DISK_TEXT = /ENOSPC|EFBIG|no space left|file too large/i;

async function runJob(sb: Sandbox, job: SandboxJob, limits: SandboxLimits, cmd: ReturnType<Sandbox['command']>): Promise<SandboxResult> {
  if (!/^[A-Za-z_$][\w$]*$/.test(job.functionName)) throw new InvalidArgumentError(`invalid function name ${job.functionName}`);
  if (job.labels.length !== job.cases.length) throw new InvalidArgumentError(`sandbox job: ${job.cases.length} cases but ${job.labels.length} labels`);
  const started = Date.now();
  const input = JSON.stringify({
    functionName: job.functionName,
    exportName: '__exercise_function__',
    code: job.code,
    libRoot: SANDBOX_LIB,
    lib: job.lib,
    cases: job.cases,
    maxResultChars: limits.maxResultChars,
    maxOutputBytes: limits.maxOutputBytes,
  });
  // The most the result channel may carry: every case at its largest, plus the small events.
  const maxChannelBytes = job.cases.length * (limits.maxResultChars + 1000) + 100_000;

  let output = '';
  let printed = 0;
  const outputText = new StringDecoder('utf8'); // a character split across chunks stays whole
  const channel: Buffer[] = [];
  let channelBytes = 0;
  let killedFor: { phase: SandboxPhase; reason: string } | undefined;
  const child = spawn(cmd.file, cmd.args, {
    cwd: cmd.cwd,
    env: cmd.env,
    detached: cmd.detached,
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    ...(cmd.uid !== undefined ? { uid: cmd.uid, gid: cmd.gid } : {}),
  });
  const stop = (phase: SandboxPhase, reason: string) => {
    if (killedFor) return;
    killedFor = { phase, reason };
    Sandbox.kill(child, sb.mode);
  };
  const onData = (chunk: Buffer) => {
    printed += chunk.length;
    if (output.length < KEPT_OUTPUT_CHARS) output += outputText.write(chunk).slice(0, KEPT_OUTPUT_CHARS - output.length);
    if (printed > limits.maxOutputBytes) stop('output', `printed more than ${Math.round(limits.maxOutputBytes / 1000)} kB of output`);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const results = child.stdio[3] as Readable;
  results.on('data', (chunk: Buffer) => {
    channelBytes += chunk.length;
    if (channelBytes > maxChannelBytes) stop('output', 'sent back more result data than its cases can produce');
    else channel.push(chunk);
  });
  results.on('error', () => undefined);
  const stdin = child.stdin as Writable;
  stdin.on('error', () => undefined); // the child may die before reading it all
  stdin.end(input);

  const timer = setTimeout(() => stop('timeout', `exceeded the time limit of ${limits.timeLimitMs / 1000} s`), limits.timeLimitMs);
  const watch = CAN_WATCH_RSS
    ? setInterval(() => {
        if (child.pid !== undefined && treeRss(child.pid) > limits.memoryMB * 1024 * 1024 * 1.25) {
          stop('memory', `used more than ${limits.memoryMB} MB of memory`);
        }
      }, 100)
    : undefined;
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }));
    child.on('error', (e) => resolve({ code: null, signal: null, error: e.message }));
  });
  clearTimeout(timer);
  if (watch) clearInterval(watch);

  const resultsOut: (SandboxCaseResult | undefined)[] = new Array(job.cases.length).fill(undefined);
  let lastStarted = -1;
  let phase: SandboxPhase | undefined;
  let reason = '';
  let ready = false;
  let tampered: string | undefined;
  const lines = Buffer.concat(channel).toString('utf8').split('\n');
  if (lines[lines.length - 1] !== '') lines.pop(); // an unfinished last line (killed while writing)
  for (const line of lines) {
    if (line === '') continue;
    let ev: Event;
    try {
      ev = JSON.parse(line) as Event;
    } catch {
      tampered ??= 'a line that is not JSON';
      continue;
    }
    if (typeof ev !== 'object' || ev === null) {
      tampered ??= 'a value that is not an event';
      continue;
    }
    // The runner sends every text field as a string. Anything else was forged, and must not be turned into text here:
    // String() of a 20,000-deep array overflows the grader's stack, which once ended the whole class's run (seen).
    const textFields = (['e', 'error', 'got'] as const).filter((k) => ev[k] !== undefined && typeof ev[k] !== 'string');
    if (textFields.length > 0) {
      tampered ??= `an event whose ${textFields.join(', ')} is not text`;
      continue;
    }
    const slot = typeof ev.i === 'number' && Number.isInteger(ev.i) && ev.i >= 0 && ev.i < job.cases.length ? ev.i : undefined;
    if (ev.e === 'ready') ready = true;
    else if (ev.e === 'loaded') continue;
    else if (ev.e === 'start' && slot !== undefined) lastStarted = slot;
    else if (ev.e === 'result' && slot !== undefined) {
      if (resultsOut[slot] !== undefined) {
        tampered ??= `two results for one case`;
        continue;
      }
      resultsOut[slot] = ev.ok === true
        ? { ok: true, value: ev.value ?? null }
        : { ok: false, error: String(ev.error), notImplemented: ev.ni === true };
    } else if (ev.e === 'import-error') {
      phase = ev.ni === true ? 'not-implemented' : 'import-error';
      reason = ev.ni === true ? 'not attempted yet' : `the cell threw while loading: ${String(ev.error)}`;
    } else if (ev.e === 'no-function') {
      phase = 'no-function';
      reason = `the cell does not define a function ${job.functionName} (found ${String(ev.got)})`;
    } else if (ev.e === 'output-limit') {
      killedFor ??= { phase: 'output', reason: `printed more than ${Math.round(limits.maxOutputBytes / 1000)} kB of output` };
    } else if (ev.e === 'runner-error') {
      phase = 'crashed';
      reason = `the grader's runner failed: ${String(ev.error).split('\n')[0]}`;
    } else if (ev.e === 'done') phase = phase ?? 'done';
    else tampered ??= `an unknown event ${JSON.stringify(String(ev.e ?? '')).slice(0, 40)}`;
  }
  const during = lastStarted >= 0 && resultsOut[lastStarted] === undefined ? ` during case '${job.labels[lastStarted]}'` : ready && phase === undefined ? ' while loading the cell' : '';
  const stderrText = output;
  if (killedFor) {
    phase = killedFor.phase;
    reason = killedFor.reason + during;
  } else if (tampered) {
    phase = 'crashed';
    reason = `its result channel carried ${tampered}: the cell wrote to the grader's channel (only the function's return values count)`;
  } else if (!ready && (exit.error || /^bwrap:/m.test(stderrText))) {
    phase = 'sandbox-error';
    reason = `grader problem, not the learner's: the sandbox could not start (${(exit.error ?? stderrText.match(/^bwrap:.*$/m)?.[0] ?? '').trim()})`;
  } else if (exit.signal === 'SIGXFSZ') {
    phase = 'output';
    reason = `wrote a file larger than ${Math.round(limits.maxDiskBytes / 1e6)} MB${during}`;
  } else if (exit.signal === 'SIGXCPU') {
    phase = 'timeout';
    reason = `used more than its CPU time${during}`;
  } else if (phase === undefined) {
    if (MEMORY_TEXT.test(stderrText)) {
      phase = 'memory';
      reason = `used more than ${limits.memoryMB} MB of memory${during}`;
    } else {
      phase = 'crashed';
      const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
      reason = `the process ${how}${during} before finishing (process.exit() or a fatal error?)`;
    }
  }
  // A case that failed to allocate explains a timeout or crash that followed it (the learner's code may catch the
  // RangeError and go on allocating); ENOSPC/EFBIG explain the disk.
  const errs = resultsOut.map((r, i) => ({ r, i })).filter(({ r }) => r && !r.ok);
  const mem = errs.find(({ r }) => MEMORY_TEXT.test(r!.error ?? ''));
  const disk = errs.find(({ r }) => DISK_TEXT.test(r!.error ?? ''));
  if (phase === 'done' && errs.some(({ r }) => r!.notImplemented)) {
    phase = 'not-implemented';
    reason = 'not attempted yet';
  } else if (mem && (phase === 'done' || phase === 'timeout' || phase === 'crashed')) {
    phase = 'memory';
    reason = `used more than ${limits.memoryMB} MB of memory during case '${job.labels[mem.i]}' (${mem.r!.error})`;
  } else if (disk && (phase === 'done' || phase === 'timeout' || phase === 'crashed')) {
    phase = 'output';
    reason = `wrote more than ${Math.round(limits.maxDiskBytes / 1e6)} MB of files during case '${job.labels[disk.i]}' (${disk.r!.error})`;
  }
  return { phase, reason, results: resultsOut, output, wallMs: Date.now() - started };
}
