/**
 * The instructor-side grading configuration (kept in solutions/grading/, never in learner notebooks):
 *
 *   points.json        { "defaults": { "points": 1, "hiddenSeeds": [..], "timeLimitS": 60, "memoryMB": 1024 },
 *                        "exercises": { "<id>": { "points": 2, "hiddenSeeds": [..] }, ... } }
 *   hidden-cases.ts    export const hiddenCases: Record<id, (seed: number) => CheckCase[]>   (optional extra edge cases)
 *
 * Graded cases of an exercise = its public cases (PUBLIC_SEED, what the self-check shows) + spec.cases(s) for every
 * hidden seed + hiddenCases[id](first hidden seed, or 1 when there is none).
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { CorruptFileError } from '../errors';
import type { CheckCase } from '../exercises/types';

export interface ExerciseRule {
  points: number;
  hiddenSeeds: number[];
  timeLimitS: number;
  memoryMB: number;
}

export type HiddenCases = Record<string, (seed: number) => CheckCase[]>;

export interface GradingConfig {
  defaults: ExerciseRule;
  exercises: Record<string, Partial<ExerciseRule>>;
  hiddenCases: HiddenCases;
  /**
   * A digest of the config files: the key of the secret case order (grade.ts caseOrder). As secret as the config is;
   * the same config gives the same order, so grading twice gives identical reports.
   */
  orderKey: string;
}

export const DEFAULT_RULE: ExerciseRule = { points: 1, hiddenSeeds: [7001, 7002], timeLimitS: 60, memoryMB: 1024 };

export const POINTS_FILE = 'points.json';
export const HIDDEN_CASES_FILE = 'hidden-cases.ts';

function checkRule(r: Partial<ExerciseRule>, where: string): Partial<ExerciseRule> {
  const bad = (what: string) => new CorruptFileError(`${where}: ${what}`);
  if (r.points !== undefined && !(typeof r.points === 'number' && Number.isFinite(r.points) && r.points >= 0)) {
    throw bad(`points must be a number >= 0, got ${JSON.stringify(r.points)}`);
  }
  if (r.hiddenSeeds !== undefined && !(Array.isArray(r.hiddenSeeds) && r.hiddenSeeds.every(Number.isInteger))) {
    throw bad(`hiddenSeeds must be an array of integers, got ${JSON.stringify(r.hiddenSeeds)}`);
  }
  for (const k of ['timeLimitS', 'memoryMB'] as const) {
    if (r[k] !== undefined && !(typeof r[k] === 'number' && (r[k] as number) > 0)) {
      throw bad(`${k} must be a positive number, got ${JSON.stringify(r[k])}`);
    }
  }
  const known = ['points', 'hiddenSeeds', 'timeLimitS', 'memoryMB'];
  const unknown = Object.keys(r).filter((k) => !known.includes(k));
  if (unknown.length > 0) throw bad(`unknown keys ${unknown.join(', ')} (allowed: ${known.join(', ')})`);
  return r;
}

/** Load points.json (+ hidden-cases.ts when present) from an instructor folder; a missing folder gives the defaults. */
export function loadGradingConfig(dir: string): GradingConfig {
  const config: GradingConfig = { defaults: { ...DEFAULT_RULE }, exercises: {}, hiddenCases: {}, orderKey: '' };
  const digest = crypto.createHash('sha256').update('diffusion-course grading order v1\0');
  for (const f of [POINTS_FILE, HIDDEN_CASES_FILE]) {
    const file = path.join(dir, f);
    digest.update(fs.existsSync(file) ? fs.readFileSync(file) : Buffer.alloc(0)).update('\0');
  }
  config.orderKey = digest.digest('hex');
  const pointsFile = path.join(dir, POINTS_FILE);
  if (fs.existsSync(pointsFile)) {
    let raw: { defaults?: Partial<ExerciseRule>; exercises?: Record<string, Partial<ExerciseRule>> };
    try {
      raw = JSON.parse(fs.readFileSync(pointsFile, 'utf8'));
    } catch (e) {
      throw new CorruptFileError(`${pointsFile}: not valid JSON (${(e as Error).message})`);
    }
    config.defaults = { ...DEFAULT_RULE, ...checkRule(raw.defaults ?? {}, `${pointsFile} defaults`) };
    for (const [id, r] of Object.entries(raw.exercises ?? {})) config.exercises[id] = checkRule(r, `${pointsFile} exercises.${id}`);
  }
  const hiddenFile = path.join(dir, HIDDEN_CASES_FILE);
  if (fs.existsSync(hiddenFile)) {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const mod = require(path.resolve(hiddenFile)) as { hiddenCases?: HiddenCases };
    if (typeof mod.hiddenCases !== 'object' || mod.hiddenCases === null) {
      throw new CorruptFileError(`${hiddenFile}: must export const hiddenCases: Record<exercise id, (seed) => CheckCase[]>`);
    }
    config.hiddenCases = mod.hiddenCases;
  }
  return config;
}

export function ruleFor(config: GradingConfig, id: string): ExerciseRule {
  return { ...config.defaults, ...config.exercises[id] };
}
