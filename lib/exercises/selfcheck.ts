/**
 * The notebooks' self-check cells: check an exercise the way the grader will, on its public cases, and print one ✔/✘
 * line per case (or one line that says why nothing could be checked yet).
 *
 *   await selfCheck(qSampleSpec);        // in the cell after the exercise
 *
 * What is checked is the exercise CELL as it last ran in this kernel, evaluated alone (lib/exercises/cell.ts), exactly
 * as the grader runs it: only `tf` is defined, helpers from other cells are not, and lib modules other than the spec's
 * allowed helpers throw (policy.ts). So the self-check and the grader never disagree, and:
 * - a check run before its exercise cell says so (the cell refers to the exercise by spec, not by the function's name,
 *   so it compiles either way: no bare "Cannot find name");
 * - an exercise cell that did not compile is reported as such, with tslab's message — not as "not attempted", and
 *   never by testing lib's function of the same name that the notebook's first cell imported.
 * tslab runs cells in this process: importing this module (first cell) records each exercise cell's source and outcome
 * (installCellRecorder). `await selfCheck(spec, fn)` checks a given function instead (tests, scratch work).
 *
 * Values are read with `await t.data()` (readValue): the self-check works on every backend, webgpu included. The
 * learner's function may be async. Every tensor made here is disposed.
 * `checkCases` is the printing-free form (tests, the grader's reference side).
 */
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors';
import { compileCell, EXPORT_NAME, SANDBOX_LIB } from '../grading/compile';
import { callIsolated, describeError, isNotImplemented, type CallOutcome } from './call';
import { cellFileName, evaluateModule, libKeyOf } from './cell';
import { describeValue, disposeValue, readValue } from './codec';
import { compareValues } from './compare';
import { helpersFor, undefinedNameAdvice, withHelpers } from './helpers';
import { allowedLibModules, ExercisePolicyError, libUseMessage } from './policy';
import type { CheckCase, ExerciseSpec, Tolerance, Value } from './types';

export { callIsolated, describeError, isNotImplemented, type CallOutcome };

/**
 * Seed of the public cases (what learners see). The grader adds hidden seeds and cases.
 * Not 0: tfjs treats a seed of 0 as "no seed" (random), and specs often derive tensor seeds as seed·k + offset.
 */
export const PUBLIC_SEED = 1;

export type CaseStatus = 'pass' | 'fail' | 'error' | 'not-attempted';

export interface CaseResult {
  /** The case's name, e.g. 't = 0 (first step)'. */
  name: string;
  status: CaseStatus;
  /** Why it failed / what it threw / the size of the error when it passed. */
  message: string;
  maxAbsError?: number;
}

export interface CheckOptions {
  /** Seed of the generated cases (default PUBLIC_SEED). */
  seed?: number;
  /** Use these cases instead of spec.cases(seed) (they are not disposed: the caller owns them). */
  cases?: CheckCase[];
}

// ------------------------------------------------------------------------------------------------ tslab: cell runs

/** One run of an exercise cell in the tslab kernel. */
export interface CellRun {
  source: string;
  /** tslab compiled and ran it without error. */
  ok: boolean;
  /** What it printed to stderr (tslab's compiler messages or the error it threw). */
  stderr: string;
}

interface Recorder {
  /** The last run of each exercise cell, by exercise id. */
  runs: Map<string, CellRun>;
  /** Every cell run, oldest first (the helpers an exercise cell uses come from these). */
  history: CellRun[];
  /** true once tslab's handler is hooked; a string says why it could not be. */
  installed: true | string;
}

const RECORDER = Symbol.for('diffusion-course.exercise-cell-runs');
const EXERCISE_FIRST_LINE = /^\s*\/\/\s*EXERCISE\s+([A-Za-z0-9_-]+)\s*:/i;

function recorder(): Recorder {
  const g = globalThis as unknown as Record<symbol, Recorder | undefined>;
  return (g[RECORDER] ??= { runs: new Map(), history: [], installed: 'not in a tslab kernel' });
}

/** The exercise id of a cell's source (its first non-blank line `// EXERCISE <id>: …`), or undefined. */
export function exerciseIdOfSource(source: string): string | undefined {
  const first = source.split('\n').find((l) => l.trim() !== '');
  const m = first === undefined ? null : EXERCISE_FIRST_LINE.exec(first);
  return m ? m[1] : undefined;
}

const MAX_HISTORY = 2000;

/** Record a run of a cell (the tslab hook calls this; tests may too). */
export function recordCellRun(source: string, ok: boolean, stderr: string): void {
  const rec = recorder();
  const run = { source, ok, stderr };
  const id = exerciseIdOfSource(source);
  if (id !== undefined) rec.runs.set(id, run);
  rec.history.push(run);
  if (rec.history.length > MAX_HISTORY) rec.history.splice(0, rec.history.length - MAX_HISTORY);
}

/** Forget every recorded run (tests start from a clean kernel). */
export function clearCellRuns(): void {
  recorder().runs.clear();
  recorder().history.length = 0;
}

/** Sources of the cells that ran without error, oldest first, except exercise `id`'s own cell. */
export function otherCellSources(id: string): string[] {
  return recorder().history.filter((r) => r.ok && exerciseIdOfSource(r.source) !== id).map((r) => r.source);
}

/** The last recorded run of exercise `id`'s cell in this process. */
export function lastCellRun(id: string): CellRun | undefined {
  return recorder().runs.get(id);
}

/**
 * Hook tslab's execute handler (tslab 1.0.x, running this process) so that each exercise cell's source, outcome and
 * stderr are recorded. Idempotent; returns whether the hook is in place.
 */
export function installCellRecorder(): boolean {
  const rec = recorder();
  if (rec.installed === true) return true;
  if (!(globalThis as { __tslab__?: unknown }).__tslab__) return false;
  const key = Object.keys(require.cache).find((k) => /[\\/]tslab[\\/]dist[\\/]jupyter\.js$/.test(k));
  const proto = (key ? (require.cache[key]?.exports as { JupyterHandlerImpl?: { prototype: Record<string, unknown> } }).JupyterHandlerImpl?.prototype : undefined) as
    | { handleExecuteImpl?: (...a: unknown[]) => Promise<unknown>; createWriteToIopub?: (...a: unknown[]) => unknown }
    | undefined;
  if (!proto || typeof proto.handleExecuteImpl !== 'function' || typeof proto.createWriteToIopub !== 'function') {
    rec.installed = "tslab's execute handler was not found (a tslab version this course does not know)";
    return false;
  }
  const execute = proto.handleExecuteImpl;
  const makeWriter = proto.createWriteToIopub;
  let current: CellRun | undefined;
  proto.createWriteToIopub = function (this: unknown, ...a: unknown[]) {
    const write = makeWriter.apply(this, a) as (buffer: unknown, encoding?: unknown) => unknown;
    const name = a[0];
    return (buffer: unknown, encoding?: unknown) => {
      if (current && name === 'stderr' && current.stderr.length < 20_000) {
        current.stderr += typeof buffer === 'string' ? buffer : Buffer.from(buffer as Uint8Array).toString('utf8');
      }
      return write(buffer, encoding);
    };
  };
  proto.handleExecuteImpl = async function (this: unknown, ...a: unknown[]) {
    const code = String((a[0] as { code?: unknown })?.code ?? '');
    const run: CellRun = { source: code, ok: false, stderr: '' };
    current = run;
    try {
      const out = await execute.apply(this, a);
      run.ok = true;
      return out;
    } finally {
      current = undefined;
      recordCellRun(code, run.ok, run.stderr);
    }
  };
  rec.installed = true;
  return true;
}

installCellRecorder();

// ------------------------------------------------------------------------------------------------ evaluating the cell

/** The tslab kernel's cell-level names (functions and variables the notebook's cells defined), if any. */
function notebookNames(): Record<string, unknown> | undefined {
  return (globalThis as { __tslab__?: { exports?: Record<string, unknown> } }).__tslab__?.exports;
}

// Not a discriminated union (tslab compiles lib without strictNullChecks).
interface Resolved {
  fn?: (...args: any[]) => unknown;
  /** Why there is nothing to check (printed as one ✘ line). */
  problem?: string;
  notAttempted?: boolean;
}

const UNDEFINED_NAME = /^ReferenceError: (\S+) is not defined/;

/** The self-check's words for an error thrown by the exercise cell or its function. */
export function explainCellError(spec: ExerciseSpec, err: unknown): string {
  const text = describeError(err);
  if (err instanceof ExercisePolicyError || /^ExercisePolicyError: /.test(text)) return text.replace(/^ExercisePolicyError: /, '');
  const undef = UNDEFINED_NAME.exec(text);
  if (undef) {
    const names = notebookNames();
    return `${text}: ${undefinedNameAdvice(undef[1], !!names && Object.prototype.hasOwnProperty.call(names, undef[1]))}`;
  }
  return text;
}

/**
 * The learner's function as the grader will see it: `source` (the exercise cell) compiled and evaluated alone with the
 * helper functions it uses from `otherSources` (helpers.ts), with lib as the policy allows it. Never returns a function
 * that some other cell defined under the exercise's name.
 */
export function evaluateExerciseCell(spec: ExerciseSpec, source: string, otherSources: string[] = []): Resolved {
  const alone = compileCell(source, spec.functionName, SANDBOX_LIB);
  if (!alone.ok) return { problem: `your exercise cell ${alone.error}` };
  const helpers = otherSources.length > 0 ? helpersFor(source, otherSources) : [];
  const compiled = helpers.length > 0 ? compileCell(withHelpers(source, helpers), spec.functionName, SANDBOX_LIB) : alone;
  if (!compiled.ok) return { problem: `your exercise cell with its helpers ${compiled.error}` };
  const libDir = path.resolve(__dirname, '..');
  let allowed: Set<string> | undefined;
  const requireForCell = (specifier: string): unknown => {
    const key = libKeyOf(SANDBOX_LIB, specifier);
    if (key === undefined) return require(specifier);
    allowed ??= new Set(spec.libAllowed && spec.libAllowed.length > 0 ? allowedLibModules(libDir, spec).keys() : []);
    const k = allowed.has(key) ? key : allowed.has(`${key}/index`) ? `${key}/index` : undefined;
    if (k === undefined) throw new ExercisePolicyError(libUseMessage(spec, key));
    return require(`../${k}`); // relative: tslab serves lib's modules by path from this one's folder
  };
  let exports: Record<string, unknown>;
  try {
    exports = evaluateModule(compiled.code!, cellFileName(SANDBOX_LIB), requireForCell, tf);
  } catch (e) {
    if (isNotImplemented(e)) return { notAttempted: true };
    return { problem: `your exercise cell throws when run on its own: ${explainCellError(spec, e)}` };
  }
  const fn = exports[EXPORT_NAME];
  if (typeof fn !== 'function') {
    return { problem: `your exercise cell does not define a function ${spec.functionName} (found ${describeValue(fn)}); keep the name and signature it was given` };
  }
  return { fn: fn as (...args: any[]) => unknown };
}

/** tslab's messages for a cell that failed: compiler diagnostics ("3:10 - Cannot find name …") or the error thrown. */
function failedRunText(run: CellRun): { compile: boolean; text: string } {
  const lines = run.stderr.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '');
  const diagnostics = lines.filter((l) => /^(\S+ )?\d+:\d+ - /.test(l));
  if (diagnostics.length > 0) return { compile: true, text: diagnostics.slice(0, 5).join('\n   ') };
  return { compile: false, text: lines.slice(0, 3).join('\n   ') || '(no message)' };
}

function resolveTarget(spec: ExerciseSpec, fn: unknown, explicit: boolean): Resolved {
  if (explicit) {
    if (typeof fn !== 'function') return { problem: `${spec.functionName} is ${describeValue(fn)}, not a function` };
    return { fn: fn as (...args: any[]) => unknown };
  }
  const run = lastCellRun(spec.id);
  const marker = `// EXERCISE ${spec.id}: …`;
  if (run) {
    if (!run.ok) {
      const f = failedRunText(run);
      return f.compile
        ? { problem: `your exercise cell did not compile, so there is nothing to check yet. tslab said:\n   ${f.text}\n  Fix it, run the exercise cell again, then this cell.` }
        : { problem: `your exercise cell failed when it ran:\n   ${f.text}\n  Fix it, run the exercise cell again, then this cell.` };
    }
    return evaluateExerciseCell(spec, run.source, otherCellSources(spec.id));
  }
  const rec = recorder();
  if (rec.installed === true) {
    const seen = notebookNames()?.[spec.functionName];
    const other = typeof seen === 'function' ? ` (the ${spec.functionName} visible now comes from another cell — e.g. lib's own, imported by the first cell — and is not checked)` : '';
    return { problem: `the exercise cell has not run yet in this session${other}. Run the exercise cell above (its first line is ${marker}), then this cell.` };
  }
  // No record and no hook (not in tslab, or a tslab this course does not know): check the function of that name.
  const named = notebookNames()?.[spec.functionName];
  if (typeof named !== 'function') {
    return { problem: `${spec.functionName} is not defined: run the exercise cell above (its first line is ${marker}), then this cell` };
  }
  return { fn: named as (...args: any[]) => unknown };
}

// ------------------------------------------------------------------------------------------------ checking, async

/**
 * Run `fn` on the spec's cases, reading every value with `await t.data()` (any backend); `fn` may be async. Stops after
 * a "not implemented" throw (the rest would repeat it).
 */
export async function checkCases(spec: ExerciseSpec, fn: (...args: any[]) => unknown, opts: CheckOptions = {}): Promise<CaseResult[]> {
  const cases = opts.cases ?? spec.cases(opts.seed ?? PUBLIC_SEED);
  const results: CaseResult[] = [];
  try {
    for (const c of cases) {
      const args = (await readValue(c.args)) as unknown[];
      const ref = await callIsolated(spec.reference, args);
      if (!ref.ok) throw new InvalidArgumentError(`exercise ${spec.id}: the reference threw on case '${c.name}' (${describeError(ref.error)})`);
      const expected = await readValue(ref.value);
      disposeValue(ref.value);
      const out = await callIsolated(fn, args);
      if (!out.ok) {
        if (isNotImplemented(out.error)) {
          results.push({ name: c.name, status: 'not-attempted', message: 'not attempted yet' });
          break;
        }
        results.push({ name: c.name, status: 'error', message: `threw ${explainCellError(spec, out.error)}` });
        continue;
      }
      const got = await readValue(out.value);
      disposeValue(out.value);
      const cmp = compareValues(got, expected, spec.tolerance);
      results.push({ name: c.name, status: cmp.ok ? 'pass' : 'fail', message: cmp.message, maxAbsError: cmp.maxAbsError });
    }
  } finally {
    if (!opts.cases) disposeValue(cases.map((c) => c.args));
  }
  return results;
}

export interface SelfCheckOptions extends CheckOptions {
  /** Where the lines go (default console.log). */
  log?: (line: string) => void;
  /** Check this exercise-cell source instead of the cell's last run in the kernel (tests). */
  source?: string;
  /** With `source`: the notebook's other cells (for helper functions), oldest first. */
  otherSources?: string[];
}

/**
 * Print one line per case (✔ or ✘ with the reason), then the hint if anything failed; true when every case passed.
 * Without `fn`, checks the exercise cell's last run (see the top of this file).
 */
export async function selfCheckPassed(spec: ExerciseSpec, fn?: (...args: any[]) => unknown, opts: SelfCheckOptions = {}): Promise<boolean> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const label = `${spec.functionName} (exercise ${spec.id})`;
  const target = opts.source !== undefined ? evaluateExerciseCell(spec, opts.source, opts.otherSources) : resolveTarget(spec, fn, fn !== undefined);
  const notAttempted = () => log(`✘ ${label}: not attempted yet — replace the TODO in the exercise cell with your code, run it, then this cell.`);
  if (target.notAttempted) {
    notAttempted();
    return false;
  }
  if (!target.fn) {
    log(`✘ ${label}: ${target.problem}`);
    return false;
  }
  const results = await checkCases(spec, target.fn, opts);
  if (results.length > 0 && results[results.length - 1].status === 'not-attempted') {
    notAttempted();
    return false;
  }
  // The same throw on every case is one problem (a missing name, lib's answer …): say it once, without the formula hint.
  if (results.length > 1 && results.every((r) => r.status === 'error' && r.message === results[0].message)) {
    log(`✘ ${label}: every check ${results[0].message}`);
    return false;
  }
  for (const r of results) log(`${r.status === 'pass' ? '✔' : '✘'} ${r.name}: ${r.message}`);
  const failed = results.filter((r) => r.status !== 'pass').length;
  if (failed === 0) {
    log(`All ${results.length} checks of ${label} passed.`);
    return true;
  }
  log(`${failed} of ${results.length} checks of ${label} failed.`);
  log(`Hint: ${spec.hint}`);
  return false;
}

/** The self-check cell: `await selfCheck(spec)`. Prints selfCheckPassed's report and returns nothing (no stray value). */
export async function selfCheck(spec: ExerciseSpec, fn?: (...args: any[]) => unknown, opts: SelfCheckOptions = {}): Promise<void> {
  await selfCheckPassed(spec, fn, opts);
}
