/**
 * Which files the generator writes: for each solutions/NN-x.ipynb, the normalized solution itself and
 * notebooks/NN-x.ipynb (the learner version). Compares with what is on disk so `--check` and the tests agree.
 */
import * as fs from 'fs';
import * as path from 'path';
import { normalizeSolution, toLearner } from './generate';
import { readNotebook, serializeNotebook } from './ipynb';

/** The repository root (this file is lib/notebook/plan.ts). */
export const ROOT = path.resolve(__dirname, '..', '..');

export interface PlannedFile { file: string; expected: string; actual: string | null; }

/** What the generator would write for the given solution notebooks (all of solutions/ by default). */
export function planGeneration(solutionFiles?: string[]): PlannedFile[] {
  const dir = path.join(ROOT, 'solutions');
  const files = solutionFiles ?? (fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.ipynb')).sort().map((f) => path.join(dir, f)) : []);
  const plan: PlannedFile[] = [];
  for (const file of files) {
    // Relative, '/'-separated names keep the output identical on every machine.
    const rel = path.relative(ROOT, path.resolve(file)).split(path.sep).join('/');
    const nb = readNotebook(file);
    const learnerFile = path.join(ROOT, 'notebooks', path.basename(file));
    const read = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : null);
    plan.push({ file: path.resolve(file), expected: serializeNotebook(normalizeSolution(nb, rel)), actual: read(path.resolve(file)) });
    plan.push({ file: learnerFile, expected: serializeNotebook(toLearner(nb, rel)), actual: read(learnerFile) });
  }
  return plan;
}

/** Learner notebooks with no solution behind them (a renamed or deleted solution). */
export function orphanLearnerNotebooks(): string[] {
  const nbDir = path.join(ROOT, 'notebooks');
  if (!fs.existsSync(nbDir)) return [];
  return fs.readdirSync(nbDir).filter((f) => f.endsWith('.ipynb'))
    .filter((f) => !fs.existsSync(path.join(ROOT, 'solutions', f))).map((f) => path.join(nbDir, f));
}
