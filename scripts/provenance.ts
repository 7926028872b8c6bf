/**
 * What every training CLI records about the code that ran (provenance.json): HEAD's commit, and whether the code
 * differed from it — tracked changes under lib/, scripts/, configs/ or the package files (then the commit alone does
 * not reproduce the run). Checkpoints and results the runs themselves rewrite do not count. Read it at the start of a
 * run: the code that runs is the code of that moment.
 */
import { execSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../lib/atomic-file';
import { CorruptFileError } from '../lib/errors';

const CODE_PATHS = 'lib scripts configs package.json package-lock.json';

export function gitState(): { commit: string; dirty: boolean | 'unknown' } {
  const git = (args: string) =>
    execSync(`git ${args}`, { cwd: path.join(__dirname, '..'), stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  try {
    return { commit: git('rev-parse HEAD'), dirty: git(`status --porcelain --untracked-files=no -- ${CODE_PATHS}`) !== '' };
  } catch {
    return { commit: 'unknown', dirty: 'unknown' };
  }
}

/**
 * Rewrites provenance.json `file` (atomically) as update(its current fields); a missing file counts as {}. Fields the
 * update leaves alone stay (a training run keeps the evaluator's metrics, the evaluator the run's history). A file that
 * is not a JSON object is a CorruptFileError and stays as it was.
 */
export function updateProvenance(file: string, update: (previous: Record<string, unknown>) => Record<string, unknown>): void {
  let previous: Record<string, unknown> = {};
  if (fs.existsSync(file)) {
    try {
      previous = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new CorruptFileError(`${file} is not JSON (${(e as Error).message}); it was left as it is`);
    }
    if (!previous || typeof previous !== 'object' || Array.isArray(previous)) {
      throw new CorruptFileError(`${file} is not a JSON object; it was left as it is`);
    }
  }
  writeFileAtomic(file, `${JSON.stringify(update(previous), null, 2)}\n`);
}
