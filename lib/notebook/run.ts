/**
 * Execute a notebook top to bottom on a tslab kernel (headless) and judge the result.
 *
 * The kernel is driven by kernel_driver.py (jupyter_client), started in the notebook's own folder so that
 * `import … from './lib/…'` resolves through the folder's `lib` symlink. The executed copy goes to `outFile`;
 * sources are never written. Policy: in a solution notebook every cell must succeed; in a learner notebook
 * (generated, see generate.ts) a cell tagged "exercise" or "selfcheck" may fail, but only with the
 * "not implemented" stub's error — any other failure is real.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { BackendUnavailableError, CorruptFileError, InvalidArgumentError } from '../errors';
import { cellSource, cellTags, readNotebook } from './ipynb';
import { NOT_IMPLEMENTED, isLearnerNotebook } from './generate';

export type CellStatus = 'ok' | 'error' | 'abort' | 'timeout' | 'dead';

export interface CellResult {
  /** 0-based index among all cells of the notebook. */
  index: number;
  status: CellStatus;
  seconds: number;
  /** Everything the cell wrote to stderr: for tslab this is where the TypeScript diagnostic or the exception is. */
  stderr: string;
  /** A failure that the policy tolerates (an unimplemented exercise in a learner notebook). */
  tolerated: boolean;
}

export interface NotebookFailure {
  /** 1-based cell number as Jupyter shows the notebook (markdown cells count). */
  cellNumber: number;
  /** 1-based number among code cells. */
  codeCellNumber: number;
  firstLine: string;
  status: CellStatus;
  message: string;
}

export interface NotebookRunResult {
  file: string;
  outFile: string;
  learner: boolean;
  fast: boolean;
  seconds: number;
  kernelStartSeconds: number;
  cells: CellResult[];
  /** Code cells that never ran because an earlier one failed. */
  notRun: number;
  failures: NotebookFailure[];
  ok: boolean;
}

export interface RunOptions {
  /** Where the executed copy is written (its folder is created). */
  outFile: string;
  /** Sets DIFFUSION_FAST=1 for the kernel (lib/env.ts). */
  fast?: boolean;
  /** Seconds one cell may run before the run is stopped. */
  cellTimeoutSeconds?: number;
  /** Called for each cell as it finishes (for live progress). */
  onCell?: (cell: CellResult, codeCellNumber: number, codeCellCount: number) => void;
  /** Extra environment for the kernel. */
  env?: NodeJS.ProcessEnv;
}

const DRIVER = path.join(__dirname, 'kernel_driver.py');
/** Loaded into the kernel: serialises tslab's zeromq sends, whose collisions otherwise kill the kernel under load. */
export const PRELOAD = path.join(__dirname, 'serial-zmq-sends.js');

/** The project's own tslab (its bin script), so a run never depends on which checkout is registered with Jupyter. */
export function tslabBinary(): string {
  const bin = path.resolve(__dirname, '..', '..', 'node_modules', 'tslab', 'bin', 'tslab');
  if (!fs.existsSync(bin)) throw new BackendUnavailableError(`tslab is not installed (${bin} is missing); run 'npm ci'`);
  return bin;
}

/** Python with jupyter_client: DIFFUSION_PYTHON, else Debian's /usr/bin/python3 (a pyenv python3 on PATH usually lacks Jupyter). */
export function pythonBinary(): string {
  if (process.env.DIFFUSION_PYTHON) return process.env.DIFFUSION_PYTHON;
  return fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

/** Drop the kernel-internal stack frames from tslab's stderr so the real error is what one reads. */
export function cleanErrorText(stderr: string): string {
  const lines = stderr.split('\n').filter((line) =>
    !/^\s+at .*(node_modules[\\/]tslab|node:vm|node:internal|sigintHandlersWrap|ZmqServer|JupyterHandlerImpl)/.test(line));
  return lines.join('\n').trim() || '(the cell failed without writing an error message)';
}

export async function runNotebook(file: string, opts: RunOptions): Promise<NotebookRunResult> {
  const nb = readNotebook(file);
  const absFile = path.resolve(file);
  const outFile = path.resolve(opts.outFile);
  if (outFile === absFile) throw new InvalidArgumentError(`runNotebook: outFile must differ from the source notebook (${file}); sources are never overwritten`);
  const learner = isLearnerNotebook(nb);
  const fast = opts.fast ?? false;
  const tolerant = new Set<number>();
  const codeNumber = new Map<number, number>();
  nb.cells.forEach((cell, i) => {
    if (cell.cell_type !== 'code') return;
    codeNumber.set(i, codeNumber.size + 1);
    const tags = cellTags(cell);
    if (learner && (tags.includes('exercise') || tags.includes('selfcheck'))) tolerant.add(i);
  });
  const runnable = nb.cells.filter((c) => c.cell_type === 'code' && cellSource(c).trim() !== '').length;
  fs.mkdirSync(path.dirname(outFile), { recursive: true });

  const args = [
    DRIVER, absFile, outFile,
    '--tslab', tslabBinary(),
    '--node', process.execPath,
    '--preload', PRELOAD,
    '--cwd', path.dirname(absFile),
    '--cell-timeout', String(opts.cellTimeoutSeconds ?? (fast ? 600 : 3600)),
    '--continue-in', [...tolerant].join(','),
  ];
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  if (fast) env.DIFFUSION_FAST = '1';
  else delete env.DIFFUSION_FAST;

  const cells: CellResult[] = [];
  let kernelStartSeconds = 0;
  let seconds = 0;
  const started = Date.now();
  const driverErr: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const child = spawn(pythonBinary(), args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let buffered = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.trim() === '') continue;
        const ev = JSON.parse(line) as { event: string; index: number; status: CellStatus; seconds: number; stderr: string };
        if (ev.event === 'start') kernelStartSeconds = ev.seconds;
        else if (ev.event === 'done') seconds = ev.seconds;
        else if (ev.event === 'cell') {
          const tolerated = ev.status === 'error' && tolerant.has(ev.index) && ev.stderr.includes(NOT_IMPLEMENTED);
          const result: CellResult = { index: ev.index, status: ev.status, seconds: ev.seconds, stderr: ev.stderr, tolerated };
          cells.push(result);
          opts.onCell?.(result, codeNumber.get(ev.index) ?? 0, codeNumber.size);
        }
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => driverErr.push(chunk));
    child.on('error', (e) => reject(new BackendUnavailableError(`cannot start ${pythonBinary()} to drive the tslab kernel: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0) return resolve();
      const text = driverErr.join('');
      if (/No module named/.test(text)) {
        reject(new BackendUnavailableError(`${pythonBinary()} lacks jupyter_client (install Debian's python3-jupyter-client, or set DIFFUSION_PYTHON): ${text.trim().split('\n').pop()}`));
      } else {
        reject(new CorruptFileError(`the kernel driver failed on ${file} (exit ${code}):\n${text.trim()}`));
      }
    });
  });
  if (seconds === 0) seconds = (Date.now() - started) / 1000;

  const failures: NotebookFailure[] = [];
  for (const c of cells) {
    if (c.status === 'ok' || c.tolerated) continue;
    const src = cellSource(nb.cells[c.index]);
    let message = quoteDiagnosticLines(cleanErrorText(c.stderr), src);
    if (c.status === 'timeout') message = `timed out after ${opts.cellTimeoutSeconds ?? (fast ? 600 : 3600)} s\n${message}`;
    // The kernel's own stderr (e.g. the crash that killed it) reaches the driver's stderr, not the cell's.
    if (c.status === 'dead') message = `${message}\n${driverErr.join('').trim().slice(-3000)}`;
    if (c.status === 'error' && tolerant.has(c.index)) message = `only the "${NOT_IMPLEMENTED}" stub may fail in an exercise/selfcheck cell of a learner notebook; this failed otherwise:\n${message}`;
    failures.push({
      cellNumber: c.index + 1,
      codeCellNumber: codeNumber.get(c.index) ?? 0,
      firstLine: src.split('\n')[0].slice(0, 80),
      status: c.status,
      message,
    });
  }
  const notRun = runnable - cells.length;
  return { file, outFile, learner, fast, seconds, kernelStartSeconds, cells, notRun, failures, ok: failures.length === 0 && notRun === 0 };
}

/**
 * tslab prints diagnostics of the cell as 'line:col - message' (no file name); put the offending source line under
 * each so the failure can be read without opening the notebook. Diagnostics of imported files print their file name.
 */
export function quoteDiagnosticLines(message: string, source: string): string {
  const lines = source.split('\n');
  const seen = new Set<number>();
  let elsewhere = false;
  const out = message.split('\n').flatMap((line) => {
    const m = /^(\d+):(\d+) - /.exec(line);
    if (!m) return [line];
    const n = Number(m[1]);
    const col = Number(m[2]);
    // A position outside the cell belongs to an imported file (tslab then often omits the file's name).
    if (n < 1 || n > lines.length || col > lines[n - 1].length + 1) {
      elsewhere = true;
      return [line];
    }
    if (seen.has(n)) return [line];
    seen.add(n);
    return [line, `    > ${lines[n - 1].trim()}`];
  });
  if (elsewhere) out.push('(a line:col that does not fit this cell points into a file the cell imports, e.g. under lib/)');
  return out.join('\n');
}

/** One readable paragraph per failure: file, cell number, first line of the cell, then the error text. */
export function formatFailures(r: NotebookRunResult): string {
  const parts = r.failures.map((f) =>
    `${r.file}: cell ${f.cellNumber} (code cell ${f.codeCellNumber}, "${f.firstLine}") ${f.status === 'timeout' ? 'timed out' : f.status === 'dead' ? 'killed the kernel' : 'failed'}:\n` +
    f.message.split('\n').map((l) => '    ' + l).join('\n'));
  if (r.notRun > 0) parts.push(`${r.file}: ${r.notRun} later code cell(s) did not run.`);
  return parts.join('\n');
}
