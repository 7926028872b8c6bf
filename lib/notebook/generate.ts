/**
 * Solutions are the source; learner notebooks are generated from them.
 *
 * In an exercise cell (first line `// EXERCISE <id>: <title>`, tagged "exercise", metadata.exercise.id = <id>)
 * every region `// BEGIN SOLUTION … // END SOLUTION` is replaced by one stub line at the marker's indentation:
 *     throw new Error('Exercise <id> is not implemented yet (TODO)');
 * Everything outside the regions (the signature, the comments that explain the task) is kept. The next code
 * cell must be the exercise's self-check (tagged "selfcheck"). Outputs and execution counts are stripped
 * from both the learner notebook and the normalized solution.
 */
import { InvalidArgumentError } from '../errors';
import {
  COURSE_METADATA_KEY, Notebook, NotebookCell, cellSource, cellTags, splitSource,
} from './ipynb';

export const BEGIN_SOLUTION = '// BEGIN SOLUTION';
export const END_SOLUTION = '// END SOLUTION';
const EXERCISE_LINE = /^\/\/ EXERCISE (\S+): (.+)$/;
const EXERCISE_ID = /^(\d\d)-[a-z0-9]+(-[a-z0-9]+)*$/;
/** Text that the runner recognises as an unimplemented exercise (not a real failure) in learner notebooks. */
export const NOT_IMPLEMENTED = 'is not implemented yet (TODO)';

export function stubLine(id: string): string {
  return `throw new Error('Exercise ${id} ${NOT_IMPLEMENTED}');`;
}

/** A marked exercise found in a solution notebook. */
export interface ExerciseCellInfo {
  id: string;
  title: string;
  /** 0-based index of the exercise cell among all cells. */
  cellIndex: number;
  selfCheckIndex: number;
}

/** Where a problem is, for error messages: 'solutions/01-x.ipynb cell 7'. */
function at(file: string, index: number): string {
  return `${file} cell ${index + 1}`;
}

/** Replace each solution region of one exercise cell's source with the stub. */
export function stubSolutionRegions(source: string, id: string, where: string): string {
  const out: string[] = [];
  let inside = false;
  let regions = 0;
  source.split('\n').forEach((line, n) => {
    const trimmed = line.trim();
    if (trimmed === BEGIN_SOLUTION) {
      if (inside) throw new InvalidArgumentError(`${where}, line ${n + 1}: nested '${BEGIN_SOLUTION}' (the previous region is not closed by '${END_SOLUTION}')`);
      inside = true;
      regions++;
      out.push(line.slice(0, line.length - line.trimStart().length) + stubLine(id));
    } else if (trimmed === END_SOLUTION) {
      if (!inside) throw new InvalidArgumentError(`${where}, line ${n + 1}: '${END_SOLUTION}' without a preceding '${BEGIN_SOLUTION}'`);
      inside = false;
    } else if (/\/\/\s*(BEGIN|END)\s+SOLUTION/i.test(line)) {
      throw new InvalidArgumentError(`${where}, line ${n + 1}: malformed marker '${trimmed}'; write exactly '${BEGIN_SOLUTION}' or '${END_SOLUTION}' on a line of its own`);
    } else if (!inside) {
      out.push(line);
    }
  });
  if (inside) throw new InvalidArgumentError(`${where}: '${BEGIN_SOLUTION}' is never closed by '${END_SOLUTION}'`);
  if (regions === 0) throw new InvalidArgumentError(`${where}: exercise cell has no '${BEGIN_SOLUTION}' … '${END_SOLUTION}' region`);
  return out.join('\n');
}

/**
 * Checks the exercise markers of a solution notebook and lists its exercises.
 * `file` is used in messages; its 'nn-' prefix must match every exercise id's prefix.
 */
export function findExercises(nb: Notebook, file: string): ExerciseCellInfo[] {
  const prefix = /(\d\d)-[^/\\]*\.ipynb$/.exec(file)?.[1];
  const found: ExerciseCellInfo[] = [];
  const seen = new Set<string>();
  nb.cells.forEach((cell, i) => {
    const tagged = cellTags(cell).includes('exercise');
    if (cell.cell_type !== 'code' && !tagged) return; // prose may mention the markers
    const src = cellSource(cell);
    const firstLine = src.split('\n')[0].trim();
    const hasMarker = /^\/\/\s*EXERCISE\b/.test(firstLine);
    const hasRegion = /\/\/\s*(BEGIN|END)\s+SOLUTION/i.test(src);
    if (!hasMarker && !tagged) {
      if (hasRegion) throw new InvalidArgumentError(`${at(file, i)}: solution markers outside an exercise cell (its first line must be '// EXERCISE <id>: <title>')`);
      return;
    }
    if (cell.cell_type !== 'code') throw new InvalidArgumentError(`${at(file, i)}: an exercise must be a code cell`);
    const m = EXERCISE_LINE.exec(firstLine);
    if (!m) throw new InvalidArgumentError(`${at(file, i)}: first line '${firstLine}' should be '// EXERCISE <nn>-<name>: <title>'`);
    const [, id, title] = m;
    const idMatch = EXERCISE_ID.exec(id);
    if (!idMatch) throw new InvalidArgumentError(`${at(file, i)}: exercise id '${id}' should look like '01-q-sample' (two digits, dash, kebab-case)`);
    if (prefix !== undefined && idMatch[1] !== prefix) throw new InvalidArgumentError(`${at(file, i)}: exercise id '${id}' should start with this notebook's number '${prefix}-'`);
    if (seen.has(id)) throw new InvalidArgumentError(`${at(file, i)}: exercise id '${id}' is used twice`);
    seen.add(id);
    if (!tagged) throw new InvalidArgumentError(`${at(file, i)}: exercise cell '${id}' lacks the "exercise" tag in its metadata`);
    if (cell.metadata.exercise?.id !== id) throw new InvalidArgumentError(`${at(file, i)}: metadata.exercise.id should be '${id}', found ${JSON.stringify(cell.metadata.exercise?.id)}`);
    let next = i + 1;
    while (next < nb.cells.length && nb.cells[next].cell_type !== 'code') next++;
    const check = nb.cells[next];
    if (!check || !cellTags(check).includes('selfcheck') || !/\bselfCheck\s*\(/.test(cellSource(check))) {
      throw new InvalidArgumentError(`${at(file, i)}: exercise '${id}' must be followed by a code cell tagged "selfcheck" that calls selfCheck(...)`);
    }
    found.push({ id, title, cellIndex: i, selfCheckIndex: next });
  });
  return found;
}

function cleanCell(cell: NotebookCell, index: number, source: string): NotebookCell {
  const out: NotebookCell = {
    cell_type: cell.cell_type,
    // Stable ids: derived from position, so regenerating never churns them.
    id: cell.id ?? `cell-${String(index).padStart(3, '0')}`,
    metadata: { ...cell.metadata },
    source: splitSource(source),
  };
  // Jupyter adds these while a notebook runs; they are state, not source.
  for (const key of ['execution', 'collapsed', 'scrolled', 'jupyter', 'ExecuteTime']) delete out.metadata[key];
  if (cell.cell_type === 'code') {
    out.outputs = [];
    out.execution_count = null;
  }
  return out;
}

/** The solution notebook as it should be committed: outputs stripped, ids stable. */
export function normalizeSolution(nb: Notebook, file: string): Notebook {
  findExercises(nb, file);
  const metadata = { ...nb.metadata };
  delete metadata[COURSE_METADATA_KEY];
  return { ...nb, metadata, cells: nb.cells.map((c, i) => cleanCell(c, i, cellSource(c))) };
}

/** The learner notebook generated from a solution notebook (`file` = its path, used in messages and metadata). */
export function toLearner(nb: Notebook, file: string): Notebook {
  const exercises = findExercises(nb, file);
  const byIndex = new Map(exercises.map((e) => [e.cellIndex, e]));
  const cells = nb.cells.map((c, i) => {
    const ex = byIndex.get(i);
    const src = ex ? stubSolutionRegions(cellSource(c), ex.id, at(file, i)) : cellSource(c);
    return cleanCell(c, i, src);
  });
  const metadata = {
    ...nb.metadata,
    [COURSE_METADATA_KEY]: {
      learner: true,
      generated_from: file,
      note: 'Generated by `npm run generate-notebooks`; edit the solution notebook instead.',
    },
  };
  return { ...nb, metadata, cells };
}

/** True when the generator marked this notebook as a learner version. */
export function isLearnerNotebook(nb: Notebook): boolean {
  const meta = nb.metadata[COURSE_METADATA_KEY];
  return typeof meta === 'object' && meta !== null && !Array.isArray(meta) && meta.learner === true;
}
