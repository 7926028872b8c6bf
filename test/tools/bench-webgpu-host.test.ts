/**
 * scripts/bench-webgpu-host.ts (the GPU check's host-time part) runs end to end on this machine's webgpu adapter
 * (forced: Mesa llvmpipe in CI) at the smallest sizes, writes one row per setting and part plus the per-batch GPU time
 * and host profile, and refuses a bad setting by name before any work. Its figures here are CPU figures: only their
 * shape is checked.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expect } from 'chai';

const ROOT = path.join(__dirname, '..', '..');
const run = (args: string[]) => spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', 'scripts/bench-webgpu-host.ts', ...args], {
  cwd: ROOT, encoding: 'utf8', timeout: 240_000,
});

describe('tools: scripts/bench-webgpu-host.ts', function () {
  this.timeout(300_000);
  let dir = '';
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-webgpu-host-')); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a bad setting is a named error before the backend starts', () => {
    const r = run(['--settings', 'submit-0']);
    expect(r.status).to.equal(1);
    expect(r.stderr).to.include("InvalidArgumentError: unknown setting 'submit-0'; expected submit-N (N > 0 dispatches per queue.submit)");
    expect(r.stderr).not.to.include('[diffusion] backend');
  });

  it('two settings × three parts, GPU time and host profile per batch, in the JSON', function () {
    const out = path.join(dir, 'host.json');
    const r = run(['--batches', '1', '--rounds', '1', '--steps', '1', '--models', 'unet-cond-mnist-small', '--settings', 'submit-15,submit-64', '--json', out]);
    if (r.status !== 0 && /webgpu|Vulkan|EGL|adapter/i.test(r.stderr) && !fs.existsSync(out)) {
      console.log(`      SKIPPED: webgpu cannot run here: ${r.stderr.split('\n').find((l) => l.trim()) ?? ''}`);
      this.skip();
    }
    expect(r.status, r.stderr.slice(-2000)).to.equal(0);
    const j = JSON.parse(fs.readFileSync(out, 'utf8')) as { results: Array<Record<string, unknown>> };
    const rows = j.results.filter((x) => 'part' in x);
    expect(rows.map((x) => `${x.setting}|${x.part}`)).to.deep.equal([
      'submit-15|queued', 'submit-15|read-each', 'submit-15|forward', 'submit-64|queued', 'submit-64|read-each', 'submit-64|forward',
    ]);
    for (const x of rows) {
      expect(x.msPerCall as number).to.be.greaterThan(0);
      expect(x.dispatchesPerStep as number).to.be.within(300, 2000); // the course model's step: ~600 dispatches
    }
    expect(rows.filter((x) => x.setting === 'submit-64').every((x) => x.submitBatch === 64)).to.equal(true);
    const summary = j.results.find((x) => 'hostProfile' in x) as { batch: number; hostProfile: { totalMs: number; top: Array<{ fn: string; ms: number }> } };
    expect(summary.batch).to.equal(1);
    expect(summary.hostProfile.totalMs).to.be.greaterThan(0);
    expect(summary.hostProfile.top.length).to.be.within(1, 20);
    // Dawn's native calls are named by the script function that called them (the point of the profile)
    expect(summary.hostProfile.top.some((t) => t.fn.includes(' ← '))).to.equal(true);
  });
});
