/**
 * Grade learners' notebooks: find each exercise cell, run it in a sandboxed child process on the public and hidden
 * cases, and compare what comes back with lib's reference computed here, in the grader's process.
 *
 * Scoring: an exercise earns its points when every graded check passes, otherwise 0 (the report lists each check).
 * A submission is graded on the exercises of the notebook(s) it belongs to: those whose ids appear in it, plus the
 * notebook named in its file name (so a submission whose exercise cells were deleted still gets its zeros).
 * Expected values, case inputs and known-wrong outputs are computed once per batch and shared by all submissions.
 */
import * as crypto from 'crypto';
import * as path from 'path';
import { CorruptFileError } from '../errors';
import { callIsolated, describeError } from '../exercises/call';
import { decodeValue, disposeValue, encodeValue, readValue, type Json } from '../exercises/codec';
import { compareValues } from '../exercises/compare';
import { PUBLIC_SEED } from '../exercises/selfcheck';
import type { CheckCase, ExerciseSpec } from '../exercises/types';
import { compileCell, isStackOverflow, NESTING_ADVICE, SANDBOX_LIB } from './compile';
import { ruleFor, type ExerciseRule, type GradingConfig } from './config';
import { codeSizeProblem, extractExercises, readSubmission, type ExerciseCell } from './extract';
import { helpersFor, topLevelNames, undefinedNameAdvice, withHelpers } from '../exercises/helpers';
import { buildLibView } from './libview';
import { DEFAULT_LIMITS, Sandbox, type SandboxLimits, type SandboxMode, type SandboxResult } from './sandbox';

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
  /** Modules the cell imports (shown in the report). */
  imports?: string[];
  /** Helper functions from other cells graded with the exercise cell, e.g. 'alphaBars (cell 7)'. */
  helpers?: string[];
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
  /** 'bwrap' (default; SandboxUnavailableError if it cannot run here) or 'unsafe' (--unsafe-no-sandbox). */
  sandboxMode?: SandboxMode;
  /** bwrap executable (tests: a missing one). */
  bwrap?: string;
  /** false: no Node permission model inside the sandbox (tests of the operating-system wall alone). */
  nodePermission?: boolean;
  /**
   * Key of the secret case order (default: config.orderKey, a digest of the instructor's files). Cases reach a child
   * shuffled with a seed derived from it, the submission and the exercise; the child never sees it, so position does
   * not reveal which cases are hidden.
   */
  orderKey?: string;
  onProgress?: (line: string) => void;
  /** Called once with the sandbox's one-line description (what isolates the learners' code). */
  onSandbox?: (summary: string) => void;
}

export interface PreparedCase {
  name: string;
  hidden: boolean;
  /** The arguments with tensors read out (HostTensors): the grader keeps no tensor between calls. */
  args: unknown[];
  encodedArgs: Json;
  /** lib's reference output, read out. */
  expected: unknown;
}

/** One exercise's graded cases with their expected values, computed once per batch. */
export class PreparedExercise {
  readonly cases: PreparedCase[] = [];
  private wrongOutputs = new Map<string, Promise<unknown>[]>();

  private constructor(readonly spec: ExerciseSpec, readonly rule: ExerciseRule) {}

  /**
   * Public cases (PUBLIC_SEED), spec.cases(s) for every hidden seed, and the instructor's extra hidden cases; inputs
   * that repeat an earlier case are graded once. Expected values come from lib's reference, here in the grader.
   */
  static async prepare(spec: ExerciseSpec, rule: ExerciseRule, hidden?: (seed: number) => CheckCase[]): Promise<PreparedExercise> {
    const prep = new PreparedExercise(spec, rule);
    const seen = new Set<string>();
    const add = async (list: CheckCase[], isHidden: boolean) => {
      try {
        for (const c of list) {
          const args = (await readValue(c.args)) as unknown[];
          const encodedArgs = encodeValue(args, {}, `${spec.id} case '${c.name}' args`);
          const key = JSON.stringify(encodedArgs);
          if (seen.has(key)) continue;
          seen.add(key);
          const ref = await callIsolated(spec.reference, args);
          if (!ref.ok) throw new CorruptFileError(`exercise ${spec.id}: the reference threw on case '${c.name}' (${describeError(ref.error)})`);
          const expected = await readValue(ref.value);
          disposeValue(ref.value);
          const name = isHidden ? `hidden ${prep.cases.filter((x) => x.hidden).length + 1}: ${c.name}` : c.name;
          prep.cases.push({ name, hidden: isHidden, args, encodedArgs, expected });
        }
      } finally {
        disposeValue(list.map((c) => c.args));
      }
    };
    await add(spec.cases(PUBLIC_SEED), false);
    for (const s of rule.hiddenSeeds) await add(spec.cases(s), true);
    if (hidden) await add(hidden(rule.hiddenSeeds[0] ?? 1), true);
    return prep;
  }

  /** Which known-wrong answer (if any) produces `got` (read out) on case i. */
  async knownMistake(i: number, got: unknown): Promise<string | undefined> {
    for (const [name, fn] of Object.entries(this.spec.wrong)) {
      let outs = this.wrongOutputs.get(name);
      if (!outs) this.wrongOutputs.set(name, (outs = new Array(this.cases.length).fill(undefined)));
      outs[i] ??= callIsolated(fn, this.cases[i].args).then(async (r) => {
        if (!r.ok) return null;
        const v = await readValue(r.value);
        disposeValue(r.value);
        return v;
      });
      const wrong = await outs[i];
      if (wrong !== null && compareValues(got, wrong, this.spec.tolerance).ok) return name;
    }
    return undefined;
  }

  /** Nothing to free: the prepared cases hold no tensors. */
  dispose(): void {
    this.wrongOutputs.clear();
  }
}

/**
 * The order in which one child runs an exercise's cases: a permutation from HMAC(key, submission, exercise), so the
 * child cannot tell public from hidden cases by position, and a submission always gets the same order in one batch.
 */
export function caseOrder(n: number, key: string, submission: string, exercise: string): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  let block = Buffer.alloc(0);
  let counter = 0;
  let pos = 0;
  const next32 = () => {
    if (pos + 4 > block.length) {
      block = crypto.createHmac('sha256', key).update(`${submission}\0${exercise}\0${counter++}`).digest();
      pos = 0;
    }
    const v = block.readUInt32BE(pos);
    pos += 4;
    return v;
  };
  for (let i = n - 1; i > 0; i--) {
    const j = next32() % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

function zero(spec: ExerciseSpec, rule: ExerciseRule, status: ExerciseStatus, reason: string, checks: CheckReport[] = [], output = ''): ExerciseGrade {
  return { id: spec.id, title: spec.title, functionName: spec.functionName, points: 0, maxPoints: rule.points, status, reason, checks, output };
}

const POLICY = /^ExercisePolicyError: /;
const UNDEFINED_NAME = /^ReferenceError: (\S+) is not defined/;

/** Why an error message fails the exercise, in the words a learner needs (e.g. a name defined in another cell). */
function explainError(message: string, otherNames: ReadonlySet<string>): string {
  const undef = UNDEFINED_NAME.exec(message);
  return undef ? `${message} — ${undefinedNameAdvice(undef[1], otherNames.has(undef[1]))}` : message;
}

/** Turn the sandbox's raw results (in the cases' own order) into checks and points. */
export async function scoreRun(prep: PreparedExercise, run: SandboxResult, otherNames: ReadonlySet<string> = new Set()): Promise<ExerciseGrade> {
  const { spec, rule } = prep;
  if (run.phase === 'not-implemented') return zero(spec, rule, 'not-attempted', 'not attempted yet (the exercise still throws its TODO)', [], run.output);
  if (run.phase === 'sandbox-error') return zero(spec, rule, 'error', run.reason, [], run.output);
  if (run.phase === 'import-error') {
    const policy = POLICY.test(run.reason.replace(/^the cell threw while loading: /, ''));
    const why = policy ? `uses lib's own code, which this exercise does not allow: ${run.reason.replace(/^the cell threw while loading: ExercisePolicyError: /, '')}` : explainError(run.reason, otherNames);
    return zero(spec, rule, policy ? 'failed' : 'error', why, [], run.output);
  }
  const checks: CheckReport[] = [];
  for (let i = 0; i < prep.cases.length; i++) {
    const c = prep.cases[i];
    const r = run.results[i];
    const base = { name: c.name, hidden: c.hidden };
    if (r === undefined) {
      checks.push({ ...base, status: 'not-run', message: run.phase === 'done' ? 'not run' : `not run: ${run.reason}` });
      continue;
    }
    if (!r.ok) {
      checks.push({ ...base, status: 'error', message: `threw ${explainError(String(r.error), otherNames)}` });
      continue;
    }
    try {
      const got = decodeValue(r.value ?? null, { host: true });
      const cmp = compareValues(got, c.expected, spec.tolerance);
      if (cmp.ok) checks.push({ ...base, status: 'pass', message: cmp.message });
      else {
        const knownMistake = await prep.knownMistake(i, got);
        checks.push({ ...base, status: 'fail', message: cmp.message, ...(knownMistake ? { knownMistake } : {}) });
      }
    } catch (e) {
      checks.push({ ...base, status: 'error', message: `the returned value could not be read: ${describeError(e)}` });
    }
  }
  if (run.phase !== 'done') return zero(spec, rule, 'error', run.reason, checks, run.output);
  const failed = checks.filter((c) => c.status !== 'pass');
  if (failed.length === 0) {
    return { ...zero(spec, rule, 'passed', `all ${checks.length} checks passed`, checks, run.output), points: rule.points };
  }
  const policy = failed.find((c) => c.status === 'error' && POLICY.test(c.message.replace(/^threw /, '')));
  if (policy) {
    return zero(spec, rule, 'failed', `uses lib's own code, which this exercise does not allow: ${policy.message.replace(/^threw ExercisePolicyError: /, '')}`, checks, run.output);
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

/** Every top-level name the given cells declare (cells TypeScript cannot parse are skipped). */
function namesIn(sources: string[]): Set<string> {
  const out = new Set<string>();
  for (const s of sources) {
    try {
      for (const n of topLevelNames(s)) out.add(n);
    } catch {
      /* not parseable: declares nothing we can name */
    }
  }
  return out;
}

/**
 * The grader's own work on a cell (compiling it, finding its helpers) failed on it. One learner's cell must
 * cost that learner the exercise, never the class its batch: 3,000 nested parentheses once aborted the whole run (seen).
 * Only the parsing before the sandbox is caught: a failure of the sandbox itself still stops the batch (it is the
 * instructor's to fix, and must not turn into zeros for everyone).
 */
function hostFailure(spec: ExerciseSpec, rule: ExerciseRule, e: unknown): ExerciseGrade {
  const why = isStackOverflow(e) ? `it is nested too deeply (${NESTING_ADVICE})` : describeError(e);
  return zero(spec, rule, 'error', `the grader could not process this cell: ${why}`);
}

interface GradeContext {
  sandbox: Sandbox;
  orderKey: string;
  views: Map<string, Record<string, string>>;
}

async function gradeCell(
  prep: PreparedExercise,
  cell: ExerciseCell,
  codeCells: { cellIndex: number; source: string }[],
  submission: string,
  ctx: GradeContext,
  limits: SandboxLimits,
): Promise<ExerciseGrade> {
  const { spec } = prep;
  const others = codeCells.filter((c) => c.cellIndex !== cell.cellIndex);
  let code: string;
  let helperNames: string[];
  let otherNames: Set<string>;
  try {
    const alone = compileCell(cell.source, spec.functionName, SANDBOX_LIB); // syntax errors with the cell's own line numbers
    if (!alone.ok) return zero(spec, prep.rule, 'error', `the exercise cell ${alone.error}`);
    const helpers = helpersFor(cell.source, others.map((c) => c.source));
    const compiled = helpers.length > 0 ? compileCell(withHelpers(cell.source, helpers), spec.functionName, SANDBOX_LIB) : alone;
    if (!compiled.ok) return zero(spec, prep.rule, 'error', `the exercise cell with its helpers ${compiled.error}`);
    code = compiled.code!;
    helperNames = helpers.map((h) => `${h.name} (cell ${others[h.from].cellIndex + 1})`);
    otherNames = namesIn(others.map((c) => c.source));
  } catch (e) {
    return hostFailure(spec, prep.rule, e);
  }
  let lib = ctx.views.get(spec.id);
  if (!lib) ctx.views.set(spec.id, (lib = buildLibView(ctx.sandbox.libDir, spec)));
  const order = caseOrder(prep.cases.length, ctx.orderKey, submission, spec.id);
  const run = await ctx.sandbox.run(
    {
      code,
      functionName: spec.functionName,
      cases: order.map((i) => prep.cases[i].encodedArgs),
      labels: order.map((i) => prep.cases[i].name),
      lib,
    },
    limits,
  );
  // Back to the cases' own order.
  const results = new Array(prep.cases.length).fill(undefined);
  order.forEach((i, slot) => (results[i] = run.results[slot]));
  const imports = importsOf(cell.source);
  return {
    ...(await scoreRun(prep, { ...run, results }, otherNames)),
    ...(imports.length > 0 ? { imports } : {}),
    ...(helperNames.length > 0 ? { helpers: helperNames } : {}),
  };
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
      return { sub, cells: ex.cells, codeCells: ex.codeCells, notes: ex.notes, problem: codeSizeProblem(ex) };
    } catch (e) {
      const msg = e instanceof CorruptFileError ? e.message.replace(`${sub.file}: `, '') : describeError(e);
      return { sub, cells: new Map<string, ExerciseCell>(), codeCells: [] as { cellIndex: number; source: string }[], notes: [] as string[], problem: `not a valid notebook: ${msg}` };
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
  const sandbox = new Sandbox({ repoRoot: opts.repoRoot, mode: opts.sandboxMode ?? 'bwrap', bwrap: opts.bwrap, nodePermission: opts.nodePermission });
  const probe = sandbox.probe(); // throws SandboxUnavailableError before anything runs
  opts.onSandbox?.(probe.summary);
  const ctx: GradeContext = { sandbox, orderKey: opts.orderKey ?? (config.orderKey || crypto.randomBytes(32).toString('hex')), views: new Map() };
  try {
    for (const plan of plans) {
      for (const s of plan.exercises) {
        if (!prepared.has(s.id)) prepared.set(s.id, await PreparedExercise.prepare(s, ruleFor(config, s.id), config.hiddenCases[s.id]));
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
              ? await gradeCell(prep, cell, plan.codeCells, plan.sub.name, ctx, limits)
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
