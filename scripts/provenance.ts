/**
 * What every training CLI records about the code that ran (provenance.json): HEAD's commit, and whether the code
 * differed from it — tracked changes under lib/, scripts/, configs/ or the package files (then the commit alone does
 * not reproduce the run). Checkpoints and results the runs themselves rewrite do not count. Read it at the start of a
 * run: the code that runs is the code of that moment.
 */
import { execSync } from 'node:child_process';
import * as path from 'node:path';

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
