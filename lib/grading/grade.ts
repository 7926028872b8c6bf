/**
 * Grade learners' notebooks: find each exercise cell, run it in a sandboxed child process on the public and hidden
 * cases, and compare what comes back with lib's reference computed here, in the grader's process.
 *
 * Scoring: an exercise earns its points when every graded check passes, otherwise 0 (the report lists each check).
 * A submission is graded on the exercises of the notebook(s) it belongs to: those whose ids appear in it, plus the
 * notebook named in its file name (so a submission whose exercise cells were deleted still gets its zeros).
 * Expected values, case inputs and known-wrong outputs are computed once per batch and shared by all submissions.
 */
import * as path from 'path';
import { CorruptFileError } from '../errors';
import { decodeValue, disposeValue, encodeValue, type Json } from '../exercises/codec';
import { compareValues } from '../exercises/compare';
import { PUBLIC_SEED, callIsolated, describeError, referenceValue } from '../exercises/selfcheck';
import type { ExerciseSpec, Value } from '../exercises/types';
import { compileCell } from './compile';
import { ruleFor, type ExerciseRule, type GradingConfig } from './config';
import { extractExercises, readSubmission, type ExerciseCell } from './extract';
import { DEFAULT_LIMITS, Sandbox, type SandboxLimits, type SandboxResult } from './sandbox';

export type ExerciseStatus = 'passed' | 'failed' | 'not-attempted' | 'missing' | 'error';
export type CheckStatus = 'pass' | 'fail' | 'error' | 'not-run';

export interface CheckReport {
  name: string;
  hidden: boolean;
  status: CheckStatus;
  message: string;
  /** The spec's known-wrong answer that the learner's output matches, e.g. 'offByOne'. */
  knownMistake?: string;
}

export interface ExerciseGrade {
  id: string;
  title: string;
  functionName: string;
  points: number;
  maxPoints: number;
  status: ExerciseStatus;
  /** One sentence: why it earned no points (or 'all N checks passed'). */
  reason: string;
  checks: CheckReport[];
  /** What the learner's code printed (truncated), for the report. */
  output: string;
  /** Modules the cell imports (lib modules show up here: an instructor can spot a cell that calls lib's own answer). */
  imports?: string[];
}

export interface SubmissionGrade {
  /** Name in the gradebook (path relative to the graded folder). */
  name: string;
  file: string;
  notebooks: string[];
  exercises: ExerciseGrade[];
  total: number;
  maxTotal: number;
  /** Why the file itself could not be graded (not a notebook …). */
  problem?: string;
  notes: string[];
}

export interface Submission {
  file: string;
  name: string;
}

export interface GradeOptions {
  specs: ExerciseSpec[];
  config: GradingConfig;
  /** Child processes at once (default 2). */
  jobs?: number;
  /** Grade every submission as this notebook (e.g. '01-forward-process'), whatever it contains. */
  notebook?: string;
  /** Override the per-exercise limits from the config (tests use short ones). */
  limits?: Partial<SandboxLimits>;
  repoRoot?: string;
  onProgress?: (line: string) => void;
}

interface PreparedCase {
  name: string;
  hidden: boolean;
  args: Value[];
  encodedArgs: Json;
  expected: Value;
}

/** One exercise's graded cases with their expected values, computed once per batch. */
export class PreparedExercise {
  readonly cases: PreparedCase[] = [];
  private wrongOutputs = new Map<string, (Value | undefined)[]>();

  constructor(readonly spec: ExerciseSpec, readonly rule: ExerciseRule, hidden?: (seed: number) => import('../exercises/types').CheckCase[]) {
    const seen = new Set<string>();
    const add = (list: { name: string; args: Value[] }[], isHidden: boolean) => {
      try {
        addAll(list, isHidden);
      } catch (e) {
        disposeValue(list.map((c) => c.args)); // those not kept yet (disposing twice is harmless)
        throw e;
      }
    };
    const addAll = (list: { name: string; args: Value[] }[], isHidden: boolean) => {
      for (const c of list) {
        const encodedArgs = encodeValue(c.args, {}, `${spec.id} case '${c.name}' args`);
        const key = JSON.stringify(encodedArgs);
        // Seed-independent cases come back identical for every hidden seed: grade each input once.
        if (isHidden && seen.has(key)) {
          disposeValue(c.args);
          continue;
        }
        seen.add(key);
        const name = isHidden ? `hidden ${this.cases.filter((x) => x.hidden).length + 1}: ${c.name}` : c.name;
        const expected = referenceValue(spec, c.args);
        this.cases.push({ name, hidden: isHidden, args: c.args, encodedArgs, expected });
      }
    };
    try {
      add(spec.cases(PUBLIC_SEED), false);
      for (const s of rule.hiddenSeeds) add(spec.cases(s), true);
      if (hidden) add(hidden(rule.hiddenSeeds[0] ?? 1), true);
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  /** Which known-wrong answer (if any) produces `got` on case i. */
  knownMistake(i: number, got: Value): string | undefined {
    for (const [name, fn] of Object.entries(this.spec.wrong)) {
      let outs = this.wrongOutputs.get(name);
      if (!outs) this.wrongOutputs.set(name, (outs = new Array(this.cases.length).fill(undefined)));
      if (outs[i] === undefined) {
        const r = callIsolated(fn, this.cases[i].args);
        outs[i] = r.ok ? (r.value as Value) : null;
      }
      if (outs[i] !== null && compareValues(got, outs[i] as Value, this.spec.tolerance).ok) return name;
    }
    return undefined;
  }

  dispose(): void {
    for (const c of this.cases) disposeValue([c.args, c.expected]);
    for (const outs of this.wrongOutputs.values()) disposeValue(outs);
    this.wrongOutputs.clear();
  }
}

function zero(spec: ExerciseSpec, rule: ExerciseRule, status: ExerciseStatus, reason: string, checks: CheckReport[] = [], output = ''): ExerciseGrade {
  return { id: spec.id, title: spec.title, functionName: spec.functionName, points: 0, maxPoints: rule.points, status, reason, checks, output };
}

/** Turn the sandbox's raw results into checks and points. */
export function scoreRun(prep: PreparedExercise, run: SandboxResult): ExerciseGrade {
  const { spec, rule } = prep;
  if (run.phase === 'not-implemented') return zero(spec, rule, 'not-attempted', 'not attempted yet (the exercise still throws its TODO)', [], run.output);
  const checks: CheckReport[] = prep.cases.map((c, i) => {
    const r = run.results[i];
    const base = { name: c.name, hidden: c.hidden };
    if (r === undefined) return { ...base, status: 'not-run', message: run.phase === 'done' ? 'not run' : `not run: ${run.reason}` };
    if (!r.ok) return { ...base, status: 'error', message: `threw ${r.error}` };
    let got: Value | undefined;
    try {
      got = decodeValue(r.value);
      const cmp = compareValues(got, c.expected, spec.tolerance);
      if (cmp.ok) return { ...base, status: 'pass', message: cmp.message };
      const knownMistake = prep.knownMistake(i, got);
      return { ...base, status: 'fail', message: cmp.message, ...(knownMistake ? { knownMistake } : {}) };
    } catch (e) {
      return { ...base, status: 'error', message: `the returned value could not be read: ${describeError(e)}` };
    } finally {
      disposeValue(got);
    }
  });
  if (run.phase !== 'done') return zero(spec, rule, 'error', run.reason, checks, run.output);
  const failed = checks.filter((c) => c.status !== 'pass');
  if (failed.length === 0) {
    return { ...zero(spec, rule, 'passed', `all ${checks.length} checks passed`, checks, run.output), points: rule.points };
  }
  const mistakes = [...new Set(failed.map((c) => c.knownMistake).filter((m): m is string => !!m))];
  const first = failed[0];
  const reason =
    `${failed.length} of ${checks.length} checks failed` +
    (mistakes.length > 0 ? ` (matches the known mistake ${mistakes.map((m) => `'${m}'`).join(', ')})` : '') +
    `; first: ${first.name}: ${first.message}`;
  return zero(spec, rule, 'failed', reason, checks, run.output);
}

/** Module specifiers a cell imports or requires, in order, without duplicates. */
export function importsOf(source: string): string[] {
  const found = [...source.matchAll(/(?:\bfrom\s*|\brequire\s*\(\s*|\bimport\s*\(\s*|^\s*import\s+)(['"])([^'"\n]+)\1/gm)].map((m) => m[2]);
  return [...new Set(found)];
}

async function gradeCell(prep: PreparedExercise, cell: ExerciseCell, sandbox: Sandbox, limits: SandboxLimits): Promise<ExerciseGrade> {
  const compiled = compileCell(cell.source, prep.spec.functionName, sandbox.libDir);
  if (!compiled.ok) return zero(prep.spec, prep.rule, 'error', `the exercise cell ${compiled.error}`);
  const run = await sandbox.run({ code: compiled.code, functionName: prep.spec.functionName, cases: prep.cases.map((c) => ({ name: c.name, args: c.encodedArgs })) }, limits);
  const imports = importsOf(cell.source);
  return { ...scoreRun(prep, run), ...(imports.length > 0 ? { imports } : {}) };
}

/** Run at most n tasks at a time, keeping the results in order. */
async function pool<T>(tasks: (() => Promise<T>)[], n: number): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      out[i] = await tasks[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, tasks.length)) }, worker));
  return out;
}

/** The notebooks a submission is graded on. */
function notebooksOf(name: string, found: Iterable<string>, specs: ExerciseSpec[], forced?: string): string[] {
  if (forced) return [forced];
  const set = new Set<string>();
  for (const id of found) {
    const s = specs.find((x) => x.id === id);
    if (s) set.add(s.notebook);
  }
  const base = path.basename(name);
  for (const nb of new Set(specs.map((s) => s.notebook))) if (base.includes(nb)) set.add(nb);
  return [...set].sort();
}

/** Grade a batch of submissions. Never modifies them; the same inputs give the same grades. */
export async function gradeSubmissions(submissions: Submission[], opts: GradeOptions): Promise<SubmissionGrade[]> {
  const { specs, config } = opts;
  const progress = opts.onProgress ?? (() => undefined);
  const parsed = submissions.map((sub) => {
    try {
      const ex = extractExercises(readSubmission(sub.file));
      return { sub, cells: ex.cells, notes: ex.notes, problem: undefined as string | undefined };
    } catch (e) {
      const msg = e instanceof CorruptFileError ? e.message.replace(`${sub.file}: `, '') : describeError(e);
      return { sub, cells: new Map<string, ExerciseCell>(), notes: [] as string[], problem: `not a valid notebook: ${msg}` };
    }
  });
  const plans = parsed.map((p) => {
    const notebooks = notebooksOf(p.sub.name, p.cells.keys(), specs, opts.notebook);
    const exercises = specs.filter((s) => notebooks.includes(s.notebook));
    const notes = [...p.notes];
    for (const id of p.cells.keys()) {
      if (!specs.some((s) => s.id === id)) notes.push(`cell for unknown exercise '${id}' ignored`);
    }
    return { ...p, notebooks, exercises, notes };
  });

  const prepared = new Map<string, PreparedExercise>();
  const sandbox = new Sandbox(opts.repoRoot);
  try {
    for (const plan of plans) {
      for (const s of plan.exercises) {
        if (!prepared.has(s.id)) prepared.set(s.id, new PreparedExercise(s, ruleFor(config, s.id), config.hiddenCases[s.id]));
      }
    }
    const tasks: (() => Promise<ExerciseGrade>)[] = [];
    const slots: { plan: number; exercise: number }[] = [];
    let done = 0;
    plans.forEach((plan, pi) =>
      plan.exercises.forEach((spec, ei) => {
        const prep = prepared.get(spec.id)!;
        const limits: SandboxLimits = {
          ...DEFAULT_LIMITS,
          timeLimitMs: prep.rule.timeLimitS * 1000,
          memoryMB: prep.rule.memoryMB,
          ...opts.limits,
        };
        slots.push({ plan: pi, exercise: ei });
        tasks.push(async () => {
          const started = Date.now();
          let g: ExerciseGrade;
          if (plan.problem) g = zero(spec, prep.rule, 'error', plan.problem);
          else {
            const cell = plan.cells.get(spec.id);
            g = cell
              ? await gradeCell(prep, cell, sandbox, limits)
              : zero(spec, prep.rule, 'missing', `no exercise cell for ${spec.id} (expected a code cell whose first line is '// EXERCISE ${spec.id}: …')`);
          }
          done++;
          progress(`[${done}/${tasks.length}] ${plan.sub.name} ${spec.id}: ${g.points}/${g.maxPoints} ${g.status} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
          return g;
        });
      }),
    );
    const grades = await pool(tasks, opts.jobs ?? 2);
    return plans.map((plan, pi) => {
      const exercises = grades.filter((_, k) => slots[k].plan === pi);
      const total = exercises.reduce((a, e) => a + e.points, 0);
      const maxTotal = exercises.reduce((a, e) => a + e.maxPoints, 0);
      const problem = plan.problem ?? (plan.notebooks.length === 0 ? 'no exercise cells found (cells start with // EXERCISE <id>:)' : undefined);
      return { name: plan.sub.name, file: plan.sub.file, notebooks: plan.notebooks, exercises, total, maxTotal, ...(problem ? { problem } : {}), notes: plan.notes };
    });
  } finally {
    sandbox.dispose();
    for (const p of prepared.values()) p.dispose();
  }
}
