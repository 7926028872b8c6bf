// Shared by the grading tests: whether bubblewrap works here, and a temp folder of the test's own.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Sandbox, SandboxUnavailableError } from '../../lib/grading/sandbox';

let available: { ok: boolean; why: string } | undefined;

/** Whether the bwrap sandbox starts here (probed once); `sandboxUnavailableReason()` says why not. */
export function sandboxAvailable(): boolean {
  if (!available) {
    try {
      new Sandbox().probe();
      available = { ok: true, why: '' };
    } catch (e) {
      if (!(e instanceof SandboxUnavailableError)) throw e;
      available = { ok: false, why: e.message };
    }
  }
  return available.ok;
}

export function sandboxUnavailableReason(): string {
  sandboxAvailable();
  return available!.why;
}

/** Every path under dir, relative, sorted. */
export function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const f = path.join(d, e.name);
      out.push(path.relative(dir, f));
      if (e.isDirectory()) walk(f);
    }
  };
  walk(dir);
  return out.sort();
}

/**
 * Run fn with TMPDIR pointing at a new empty folder of this test (os.tmpdir() follows it), then return what is left in
 * it (relative paths) and remove it. The machine's /tmp is never listed.
 */
export async function withOwnTmpdir(fn: () => Promise<void>): Promise<string[]> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'grading-test-tmp-'));
  const tmp = path.join(root, 'tmp');
  fs.mkdirSync(tmp);
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = tmp;
  try {
    await fn();
    return listTree(tmp);
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
    fs.rmSync(root, { recursive: true, force: true });
  }
}
