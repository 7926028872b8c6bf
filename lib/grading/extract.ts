/**
 * Find the exercise cells in a submitted notebook. Learners' files are untrusted and may be hand-edited, so this is
 * lenient where the generator is strict: a cell belongs to exercise <id> when its metadata says so
 * ({ "exercise": { "id": "<id>" } }) or its first non-blank line is the marker `// EXERCISE <id>: <title>`
 * (whitespace and case of the word EXERCISE tolerated). The first cell for an id wins; later copies are reported.
 */
import * as fs from 'fs';
import { CorruptFileError } from '../errors';
import { cellSource, parseNotebook, type Notebook } from '../notebook/ipynb';

export const EXERCISE_MARKER = /^\s*\/\/\s*EXERCISE\s+([A-Za-z0-9_-]+)\s*:/i;

export interface ExerciseCell {
  id: string;
  /** 0-based index among all cells. */
  cellIndex: number;
  source: string;
}

export interface Extraction {
  cells: Map<string, ExerciseCell>;
  /** Every code cell's source, in file order (index: among all cells), for the helpers an exercise cell uses. */
  codeCells: { cellIndex: number; source: string }[];
  /** Human notes: duplicated exercise cells etc. */
  notes: string[];
}

/** The exercise id of a code cell, or undefined. */
export function exerciseIdOf(cell: { cell_type: string; metadata?: { exercise?: unknown }; source: string | string[] }): string | undefined {
  if (cell.cell_type !== 'code') return undefined;
  const meta = cell.metadata?.exercise as { id?: unknown } | undefined;
  if (meta && typeof meta.id === 'string' && meta.id !== '') return meta.id;
  const src = Array.isArray(cell.source) ? cell.source.join('') : String(cell.source);
  const first = src.split('\n').find((l) => l.trim() !== '');
  const m = first === undefined ? null : EXERCISE_MARKER.exec(first);
  return m ? m[1] : undefined;
}

export function extractExercises(nb: Notebook): Extraction {
  const cells = new Map<string, ExerciseCell>();
  const notes: string[] = [];
  const codeCells: { cellIndex: number; source: string }[] = [];
  nb.cells.forEach((cell, i) => {
    if (cell.cell_type === 'code') codeCells.push({ cellIndex: i, source: cellSource(cell) });
    const id = exerciseIdOf(cell);
    if (id === undefined) return;
    if (cells.has(id)) {
      notes.push(`exercise ${id} appears again in cell ${i + 1}; the first one (cell ${cells.get(id)!.cellIndex + 1}) is graded`);
      return;
    }
    cells.set(id, { id, cellIndex: i, source: cellSource(cell) });
  });
  return { cells, codeCells, notes };
}

/**
 * A submission larger than this is refused unread. The course's notebooks are under 50 kB without outputs and a few MB
 * with them (digit grids, charts); a learner's file is hostile input, and one 360 MB file of empty JSON arrays took the
 * grader 7.4 minutes and 9 GB of memory to parse — with --jobs 3 enough to have the whole batch killed.
 */
export const MAX_SUBMISSION_BYTES = 32 * 1024 * 1024;
/**
 * More JSON arrays and objects than this ('[' and '{' anywhere, strings included: an upper bound, counted before
 * parsing) and the file is refused: each costs the parser an object, so 32 MB of "[]," would still take ~1 GB. Real
 * notebooks have thousands (a chart's data points are the most).
 */
export const MAX_SUBMISSION_CONTAINERS = 1_000_000;

/**
 * More TypeScript than this in a notebook's code cells and it is not graded. The grader parses and transpiles the cells
 * in its own process (which cells define the helpers an exercise uses) before any sandbox: one 27 MB cell of plain
 * `const` lines made a 3-exercise notebook take 69 s and 2.8 GB to grade instead of 1 s (seen). The course's notebooks
 * hold under 0.1 MB of code.
 */
export const MAX_CODE_BYTES = 2 * 1024 * 1024;

/** Why a submission's code is too large to grade (over MAX_CODE_BYTES), or undefined. */
export function codeSizeProblem(ex: Extraction): string | undefined {
  const bytes = ex.codeCells.reduce((a, c) => a + Buffer.byteLength(c.source, 'utf8'), 0);
  if (bytes <= MAX_CODE_BYTES) return undefined;
  return `its code cells hold ${(bytes / 2 ** 20).toFixed(1)} MB of source, more than the ${MAX_CODE_BYTES / 2 ** 20} MB the grader `
    + 'reads (the course\'s notebooks have under 0.1 MB); not graded';
}

/** Read and parse a submission without modifying it; CorruptFileError says why it is not a notebook. */
export function readSubmission(file: string): Notebook {
  let buf: Buffer;
  try {
    const size = fs.statSync(file).size;
    if (size > MAX_SUBMISSION_BYTES) {
      throw new CorruptFileError(`${file}: ${(size / 2 ** 20).toFixed(1)} MB, more than the ${MAX_SUBMISSION_BYTES / 2 ** 20} MB a `
        + 'submission may have (clear its outputs and save it again); not read');
    }
    buf = fs.readFileSync(file);
  } catch (e) {
    if (e instanceof CorruptFileError) throw e;
    throw new CorruptFileError(`${file}: cannot be read (${(e as Error).message})`);
  }
  let containers = 0;
  for (let i = 0; i < buf.length; i++) if (buf[i] === 0x5b || buf[i] === 0x7b) containers++;
  if (containers > MAX_SUBMISSION_CONTAINERS) {
    throw new CorruptFileError(`${file}: ${containers} JSON arrays and objects, more than the ${MAX_SUBMISSION_CONTAINERS} `
      + 'a notebook may have; not parsed');
  }
  return parseNotebook(buf.toString('utf8'), file);
}
