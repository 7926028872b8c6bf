/**
 * Result tables in notebooks: one helper for every table a notebook shows. In a tslab cell the table is one output
 * with an HTML table (cells aligned by inline style: the classic Notebook's CSS right-aligns and centres tables, JupyterLab
 * right-aligns) and an aligned plain-text twin for front ends that cannot show HTML; outside a notebook (scripts, tests)
 * the plain text is printed.
 *
 *   showTable([['DDIM', 10, '97.0 %']], { columns: ['sampler', 'model calls', 'accuracy'], caption: '50 samples per row' });
 */
import { InvalidArgumentError, ShapeMismatchError } from '../errors';
import { showBundle } from './display';

export type TableCell = string | number;
export type Align = 'left' | 'right';

export interface TableOptions {
  /** Column headers (their number fixes the number of cells per row). */
  columns: string[];
  /** One line above the table (plain text). */
  caption?: string;
  /** Per column; default: right for columns whose cells are all numbers (or number-like strings such as '97.5 %'), else left. */
  align?: Align[];
}

/** A number, optionally signed, with decimals/exponent and a unit such as %, s, ms or ×: right-aligned by default. */
const NUMBER_LIKE = /^[-−+]?(\d[\d,]*(\.\d+)?|\.\d+)(e[-+]?\d+)?( ?(%|s|ms|×))?$/i;

const cellText = (c: TableCell) => (typeof c === 'number' ? String(c) : c);

function checkTable(rows: TableCell[][], opts: TableOptions): void {
  if (!Array.isArray(opts.columns) || opts.columns.length === 0) throw new InvalidArgumentError('table: columns must name at least one column');
  rows.forEach((r, i) => {
    if (!Array.isArray(r) || r.length !== opts.columns.length) {
      throw new ShapeMismatchError(`table: row ${i} has ${Array.isArray(r) ? r.length : 'no'} cells, expected ${opts.columns.length} (one per column: ${opts.columns.join(', ')})`);
    }
    r.forEach((c, j) => {
      if (typeof c !== 'string' && typeof c !== 'number') throw new InvalidArgumentError(`table: cell [${i}, ${j}] is ${typeof c}, expected a string or a number`);
    });
  });
  if (opts.align && opts.align.length !== opts.columns.length) {
    throw new ShapeMismatchError(`table: ${opts.align.length} alignments for ${opts.columns.length} columns`);
  }
  opts.align?.forEach((a, j) => {
    if (a !== 'left' && a !== 'right') throw new InvalidArgumentError(`table: align[${j}] must be 'left' or 'right', got ${JSON.stringify(a)}`);
  });
}

/** The alignment of each column: opts.align, else right for number-like columns (with at least one row), left otherwise. */
export function columnAlignment(rows: TableCell[][], opts: TableOptions): Align[] {
  checkTable(rows, opts);
  return opts.columns.map((_, j) =>
    opts.align ? opts.align[j] : rows.length > 0 && rows.every((r) => typeof r[j] === 'number' || NUMBER_LIKE.test(r[j] as string)) ? 'right' : 'left',
  );
}

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The HTML of the table (inline styles only, so it survives a notebook's own CSS). */
export function tableHtml(rows: TableCell[][], opts: TableOptions): string {
  const align = columnAlignment(rows, opts);
  const cell = (tag: 'th' | 'td', text: string, j: number) =>
    `<${tag} style="text-align:${align[j]};padding:2px 10px;white-space:nowrap">${escapeHtml(text)}</${tag}>`;
  const head = `<tr>${opts.columns.map((c, j) => cell('th', c, j)).join('')}</tr>`;
  const body = rows.map((r) => `<tr>${r.map((c, j) => cell('td', cellText(c), j)).join('')}</tr>`).join('\n');
  const caption = opts.caption ? `<div style="margin:0 0 4px 0">${escapeHtml(opts.caption)}</div>\n` : '';
  return `${caption}<table style="margin-left:0;margin-right:auto;border-collapse:collapse">\n<thead>${head}</thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

/** The table as aligned plain text (monospace), a rule under the header. */
export function tableText(rows: TableCell[][], opts: TableOptions): string {
  const align = columnAlignment(rows, opts);
  const texts = [opts.columns, ...rows.map((r) => r.map(cellText))];
  const width = opts.columns.map((_, j) => Math.max(...texts.map((r) => [...r[j]].length)));
  const pad = (s: string, j: number) => {
    const fill = ' '.repeat(width[j] - [...s].length);
    return align[j] === 'right' ? fill + s : s + fill;
  };
  const line = (r: string[]) => r.map(pad).join('  ').trimEnd();
  const lines = [line(texts[0]), width.map((w) => '─'.repeat(w)).join('  '), ...texts.slice(1).map(line)];
  return (opts.caption ? `${opts.caption}\n` : '') + lines.join('\n');
}

/** Show the table in the notebook cell (HTML with a plain-text twin); outside a notebook, print the plain text. */
export function showTable(rows: TableCell[][], opts: TableOptions): void {
  const text = tableText(rows, opts);
  if (!showBundle({ 'text/html': tableHtml(rows, opts), 'text/plain': text })) console.log(text);
}
