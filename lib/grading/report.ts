/**
 * What the instructor gets: a gradebook (CSV, one row per submission, one column per exercise, total, max) and one
 * Markdown report per submission. Both are deterministic (no timings, sorted), so grading twice gives identical files.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import type { SubmissionGrade } from './grade';

/**
 * Learner text made safe for a terminal and a text viewer, shown rather than dropped: C0 control characters (but line
 * feed and tab) become their Unicode control pictures (ESC → ␛, BEL → ␇, CR → ␍), DEL → ␡, C1 controls (8-bit CSI,
 * OSC) and the bidirectional overrides and isolates (which reorder what a line shows, "Trojan source") → ⟨U+XXXX⟩. A
 * file named with ESC]52;… would otherwise write the instructor's clipboard when `npm run grade` prints its name, and
 * ESC[1A ESC[2K erase the line above it (both seen, test/grading/attacks.test.ts).
 */
export function showControls(s: string): string {
  return s.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    if (code < 0x20) return String.fromCharCode(0x2400 + code);
    if (code === 0x7f) return '\u2421';
    return `⟨U+${code.toString(16).toUpperCase().padStart(4, '0')}⟩`;
  });
}

/**
 * One CSV field. Text that a spreadsheet would evaluate as a formula (a leading =, +, -, @, tab or CR: learners name
 * their own submission files) gets a leading ' so that it stays text (CSV injection; OWASP's advice). Numbers as is.
 */
function csvField(v: string | number): string {
  const s = typeof v === 'string' && /^[=+\-@\t\r]/.test(v) ? `'${showControls(v)}` : showControls(String(v));
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Exercise ids that appear in any submission, sorted. */
export function gradebookColumns(grades: SubmissionGrade[]): string[] {
  return [...new Set(grades.flatMap((g) => g.exercises.map((e) => e.id)))].sort();
}

/** CSV: submission, one column per exercise (empty where the submission is not graded on it), total, max, problem. */
export function gradebookCsv(grades: SubmissionGrade[]): string {
  const cols = gradebookColumns(grades);
  const rows = [['submission', ...cols, 'total', 'max', 'problem'].map(csvField).join(',')];
  for (const g of [...grades].sort((a, b) => a.name.localeCompare(b.name))) {
    const cells = cols.map((id) => {
      const e = g.exercises.find((x) => x.id === id);
      return e ? String(e.points) : '';
    });
    rows.push([g.name, ...cells, String(g.total), String(g.maxTotal), g.problem ?? ''].map(csvField).join(','));
  }
  return rows.join('\n') + '\n';
}

const STATUS_WORD: Record<string, string> = { pass: '✔ pass', fail: '✘ fail', error: '✘ error', 'not-run': '– not run' };

/*
 * Every text a learner controls (the file's name, what the cell throws, imports or prints) reaches the report through
 * one of these three, so it stays text: it cannot start a heading, a list or a fence, close the output's fence, fake a
 * total or a verdict, hide the rest of the report (<!--) or make the instructor's viewer fetch a URL (<img>, ![](…)).
 * Each shows control characters with showControls (a report read with `cat` in a terminal).
 */

/**
 * Inline text: one line (⏎ marks the line breaks it had), so it never starts a line (no heading, list, quote or HTML
 * block); backslash-escaped where Markdown would act inline — emphasis (* _ ~), code (`), table cells (|), raw HTML and
 * autolinks (<), and the "](" of a link or image. Brackets alone stay as they are: "[3,4,4,1]" is common in messages,
 * and without "](" (and with no reference definitions in a report) they make no link.
 */
function mdText(s: string): string {
  return showControls(s.replace(/\r\n?|\n/g, ' ⏎ ')).replace(/[\\`*_~|<]/g, '\\$&').replace(/\]\(/g, ']\\(');
}

/** A code span that shows `s` verbatim: delimited by one backtick more than its longest run (CommonMark's rule). */
function mdCode(s: string): string {
  const line = showControls(s.replace(/\r\n?|\n/g, ' ⏎ '));
  const ticks = '`'.repeat(longestRun(line, '`') + 1);
  const pad = line.startsWith('`') || line.endsWith('`') ? ' ' : '';
  return `${ticks}${pad}${line}${pad}${ticks}`;
}

/** A fenced block showing `s` verbatim: its fence is longer than any backtick run inside, so no line of `s` closes it. */
function mdFenced(text: string): string[] {
  const s = showControls(text.replace(/\r\n/g, '\n'));
  const fence = '`'.repeat(Math.max(3, longestRun(s, '`') + 1));
  return [fence, s, fence];
}

function longestRun(s: string, ch: string): number {
  let best = 0;
  let run = 0;
  for (const c of s) {
    run = c === ch ? run + 1 : 0;
    best = Math.max(best, run);
  }
  return best;
}

/** The per-submission Markdown report. */
export function submissionReport(g: SubmissionGrade): string {
  const out: string[] = [];
  out.push(`# Grading report: ${mdText(g.name)}`, '');
  out.push(`**Total: ${g.total} / ${g.maxTotal}**` + (g.notebooks.length ? ` — notebook ${g.notebooks.map(mdText).join(', ')}` : ''), '');
  if (g.problem) out.push(`**Problem:** ${mdText(g.problem)}`, '');
  for (const n of g.notes) out.push(`- Note: ${mdText(n)}`);
  if (g.notes.length) out.push('');
  if (g.exercises.length) {
    out.push('| exercise | points | status |', '|---|---|---|');
    for (const e of g.exercises) out.push(`| ${e.id} | ${e.points} / ${e.maxPoints} | ${e.status} |`);
    out.push('');
  }
  for (const e of g.exercises) {
    out.push(`## ${e.id}: ${e.title} — ${e.points} / ${e.maxPoints}`, '');
    out.push(`Function ${mdCode(e.functionName)}: **${e.status}** — ${mdText(e.reason)}`, '');
    if (e.imports?.length) out.push(`Imports: ${e.imports.map(mdCode).join(', ')}`, '');
    if (e.helpers?.length) out.push(`Helpers from other cells, graded with it: ${e.helpers.map(mdCode).join(', ')}`, '');
    if (e.checks.length) {
      out.push('| check | result | details |', '|---|---|---|');
      for (const c of e.checks) {
        const mistake = c.knownMistake ? ` — matches the known mistake '${c.knownMistake}'` : '';
        out.push(`| ${mdText(c.name)} | ${STATUS_WORD[c.status]} | ${mdText(c.message + mistake)} |`);
      }
      out.push('');
    }
    if (e.output.trim() !== '') {
      out.push('Output of the learner\'s code (stdout and stderr, truncated):', '', ...mdFenced(e.output.trimEnd()), '');
    }
  }
  return out.join('\n');
}

/** Longest flattened name kept whole: with "-<8 hex>", "-<k>" and ".md" a report's name stays far below 255 bytes. */
const MAX_REPORT_BASE = 200;

/**
 * File name of a submission's report: its gradebook name with separators flattened (ASCII only, so bytes = characters).
 * A longer name (a folder plus a file name near the file system's 255-byte limit) is cut, and a hash of the whole name
 * keeps it apart from others cut alike: writing it would otherwise fail (ENAMETOOLONG) and stop every later report.
 */
export function reportFileName(name: string): string {
  const flat = name.replace(/\.ipynb$/i, '').replace(/[\\/]/g, '__').replace(/[^\w.@+-]/g, '_');
  if (flat.length <= MAX_REPORT_BASE) return `${flat}.md`;
  return `${flat.slice(0, MAX_REPORT_BASE)}-${createHash('sha256').update(name).digest('hex').slice(0, 8)}.md`;
}

export interface WrittenOutputs {
  gradebook: string;
  reports: string[];
  results: string;
}

/** Write gradebook.csv, results.json and reports/<name>.md under `outDir` (one report file per submission). */
export function writeOutputs(grades: SubmissionGrade[], outDir: string): WrittenOutputs {
  fs.mkdirSync(path.join(outDir, 'reports'), { recursive: true });
  const gradebook = path.join(outDir, 'gradebook.csv');
  fs.writeFileSync(gradebook, gradebookCsv(grades));
  const results = path.join(outDir, 'results.json');
  const portable = grades.map(({ file: _file, ...rest }) => rest); // absolute paths differ between machines
  fs.writeFileSync(results, JSON.stringify(portable, null, 1) + '\n');
  // names that flatten alike ("class/alice", "class__alice", "class alice") or differ only in case would share one file:
  // a learner could name a submission to replace another's report. The later ones get -2, -3, …
  const taken = new Set<string>();
  const reports = grades.map((g) => {
    const base = reportFileName(g.name).replace(/\.md$/, '');
    let name = `${base}.md`;
    for (let k = 2; taken.has(name.toLowerCase()); k++) name = `${base}-${k}.md`;
    taken.add(name.toLowerCase());
    const f = path.join(outDir, 'reports', name);
    fs.writeFileSync(f, submissionReport(g));
    return f;
  });
  return { gradebook, reports, results };
}
