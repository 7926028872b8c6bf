/**
 * The parts of the Jupyter notebook format (nbformat 4) that the course's tools read and write,
 * and one deterministic serializer so that generated notebooks can be compared byte for byte.
 */
import * as fs from 'fs';
import { CorruptFileError } from '../errors';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface NotebookCell {
  cell_type: 'code' | 'markdown' | 'raw';
  id?: string;
  metadata: { tags?: string[]; exercise?: { id: string }; [key: string]: Json | undefined };
  /** nbformat allows a string or a list of lines (each keeping its '\n'). */
  source: string | string[];
  outputs?: Json[];
  execution_count?: number | null;
}

export interface Notebook {
  cells: NotebookCell[];
  metadata: { [key: string]: Json };
  nbformat: number;
  nbformat_minor: number;
}

/** Notebook-level metadata key under which the generator records how a learner notebook was made. */
export const COURSE_METADATA_KEY = 'diffusion_course';

export function cellSource(cell: NotebookCell): string {
  return Array.isArray(cell.source) ? cell.source.join('') : cell.source;
}

/** nbformat's on-disk form of a source: lines that keep their '\n' (the last one without). */
export function splitSource(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n').map((line) => line + '\n');
  const last = lines.length - 1;
  lines[last] = lines[last].slice(0, -1);
  if (lines[last] === '') lines.pop();
  return lines;
}

export function cellTags(cell: NotebookCell): string[] {
  return Array.isArray(cell.metadata?.tags) ? cell.metadata.tags : [];
}

export function parseNotebook(text: string, file: string): Notebook {
  let nb: unknown;
  try {
    nb = JSON.parse(text);
  } catch (e) {
    throw new CorruptFileError(`${file}: not valid JSON (${(e as Error).message}); expected a Jupyter notebook`);
  }
  const o = nb as Partial<Notebook>;
  if (typeof o !== 'object' || o === null || !Array.isArray(o.cells) || o.nbformat !== 4) {
    throw new CorruptFileError(`${file}: not an nbformat-4 notebook (expected an object with "cells" and "nbformat": 4)`);
  }
  o.cells.forEach((cell, i) => {
    if (!cell || !['code', 'markdown', 'raw'].includes(cell.cell_type) ||
        !(typeof cell.source === 'string' || Array.isArray(cell.source))) {
      throw new CorruptFileError(`${file}: cell ${i + 1} has no valid cell_type/source`);
    }
    cell.metadata ??= {};
  });
  o.metadata ??= {};
  return o as Notebook;
}

export function readNotebook(file: string): Notebook {
  if (!fs.existsSync(file)) throw new CorruptFileError(`${file}: no such notebook`);
  return parseNotebook(fs.readFileSync(file, 'utf8'), file);
}

/**
 * Deterministic JSON: keys sorted, one-space indent, non-ASCII kept, trailing newline — the same layout
 * Jupyter itself writes, so saving a notebook from Jupyter gives a small diff.
 */
export function serializeNotebook(nb: Notebook): string {
  return stableStringify(nb as unknown as Json, '') + '\n';
}

function stableStringify(value: Json, indent: string): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const inner = indent + ' ';
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return '[\n' + value.map((v) => inner + stableStringify(v, inner)).join(',\n') + '\n' + indent + ']';
  }
  const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
  if (keys.length === 0) return '{}';
  return '{\n' + keys.map((k) => `${inner}${JSON.stringify(k)}: ${stableStringify(value[k], inner)}`).join(',\n') +
    '\n' + indent + '}';
}

/** A fresh notebook skeleton with the tslab kernel selected. */
export function emptyNotebook(): Notebook {
  return {
    cells: [],
    metadata: {
      kernelspec: { display_name: 'TypeScript', language: 'typescript', name: 'tslab' },
      language_info: {
        codemirror_mode: { mode: 'typescript', name: 'javascript', typescript: true },
        file_extension: '.ts',
        mimetype: 'text/typescript',
        name: 'typescript',
        version: '3.7.2',
      },
    },
    nbformat: 4,
    nbformat_minor: 5,
  };
}
