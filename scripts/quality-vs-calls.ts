/**
 * Sample quality against model calls (and the guidance sweep) for one class-conditional checkpoint:
 *
 *   npm run quality-table -- --checkpoint checkpoints/<model> [--n 2000] [--guidance 1] [--rows ddpm:1000,ddim:10,…]
 *        [--seed 0] [--batch 64] [--weights ema|params] [--out DIR] [--classifier DIR] [--record KEY]
 *   npm run quality-table -- --checkpoint checkpoints/<model> --w-sweep [--ws 0,0.5,1,1.5,2,3]
 *        [--sampler dpm++2m] [--steps N | --calls 25] [--eta η] [--sigma-max σ] [--rho ρ] [--n 2000] …
 *
 * Table mode runs DDPM with every step of the schedule (1000) and DDIM, DPM-Solver++(2M) and Heun at 10 / 25 / 50 model
 * calls (Heun: the most steps within the calls, 2N − 1 ≤ calls); --rows picks others (sampler:calls, comma-separated).
 * Sweep mode runs one sampler at guidance w ∈ --ws. Each row: conditional accuracy, feature-FID against the real test
 * images (the whole test split from 2,000 samples on), the real-vs-real floor (computed once: every row has the same
 * class counts, seed and reference), FID/floor, model calls and the sampling wall time per 64 images; for Fashion-MNIST
 * also fastai's published FID/floor ratio where it ran the same sampler and calls (their classifier differs from ours,
 * so only the ratios compare).
 *
 * Long (DDPM-1000 at n = 2000 is 32 batches × 1000 guided calls) and therefore incremental: <out>/rows/<row>.partial.bin
 * holds the batches done so far (lib/eval/raw-samples format, written atomically after every batch), a finished row goes
 * to <out>/table.json (and its samples to <out>/rows/<row>.bin) at once, and <out>/table.md is rewritten. Running the
 * same command again skips finished rows and continues a row from its next batch (each batch has its own seed, so a
 * resumed row is the same as an uninterrupted one; its wall time adds up the sessions'). A different checkpoint step,
 * n, guidance, seed, batch or weights in the same --out is refused.
 *
 * --record KEY writes the finished table, compact, into the checkpoint's own provenance.json as metrics.KEY (command,
 * settings, floor, judge, one entry per row), keeping every other field: the shipped model carries its measurements, and
 * re-exporting it then re-running the recorded commands (each finds its table done and only records again) restores them.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import * as tf from '@tensorflow/tfjs';
import { writeFileAtomic } from '../lib/atomic-file';
import { initBackend } from '../lib/backend';
import { DATASETS, loadDataset } from '../lib/data/datasets';
import type { DatasetName } from '../lib/data/sources';
import { fastOr, isFastMode } from '../lib/env';
import { DiffusionError, InvalidArgumentError } from '../lib/errors';
import { classifierDir, loadClassifier } from '../lib/eval/classifier-io';
import { evaluateSamples, realReference, referenceSplit, sampleBatch, type SamplingOptions } from '../lib/eval/evaluate';
import { realFloor } from '../lib/eval/metrics';
import { readRawSamples, writeRawSamples } from '../lib/eval/raw-samples';
import { checkSamplerName, checkSamplerSpec, modelCallsFor, samplerLabel, stepsForCalls, type SamplerSpec } from '../lib/samplers/named';
import { checkpointDataset, checkpointPath, loadModel, type LoadedModel } from '../lib/train/state';
import { updateProvenance } from './provenance';
import { SAMPLER_FLAGS, samplerSpecFromArgs } from './sampler-args';

/** The table's rows: DDPM with every step, and the few-step samplers at 10 / 25 / 50 model calls. */
export const DEFAULT_ROWS = 'ddpm:T,ddim:10,ddim:25,ddim:50,dpm++2m:10,dpm++2m:25,dpm++2m:50,heun:10,heun:25,heun:50';
export const DEFAULT_WS = [0, 0.5, 1, 1.5, 2, 3];

/**
 * fastai course22p2's Fashion-MNIST figures (classifier-feature FID of 2,048 samples with their own classifier; real
 * images 1.91): DDPM 1000 steps 3.73, DDIM 100 / 50 / 25 steps 8.44 / 11.15 / 16.77 (as collected in the course's
 * reference notes). As ratios to their real-vs-real figure, keyed by sampler:calls.
 */
export const FASTAI_FASHION = {
  real: 1.91,
  fid: { 'ddpm:1000': 3.73, 'ddim:100': 8.44, 'ddim:50': 11.15, 'ddim:25': 16.77 } as Record<string, number>,
};

export interface RowPlan {
  id: string;
  spec: SamplerSpec;
  calls: number;
  guidance: number;
}

export interface RowResult extends RowPlan {
  label: string;
  accuracy: number;
  perClass: number[];
  fid: number;
  fidOverFloor: number;
  sampleSeconds: number;
  secondsPer64Images: number;
  sessions: number;
  fastaiFidOverFloor?: number;
  date: string;
}

export interface QualityTable {
  mode: 'calls' | 'w-sweep';
  settings: { checkpoint: string; step: number; dataset: DatasetName; n: number; nPerClass: number; guidance?: number; seed: number; batchSize: number; weights: 'ema' | 'params' };
  reference: { images: number; wholeTestSplit: boolean; classifierAccuracy: number };
  floor: number;
  rows: RowResult[];
  backend: string;
  updated: string;
}

/** 'sampler:calls' items → plans ('T' = the schedule's T steps; DDPM only makes sense with it, but any count is allowed). */
export function parseRows(list: string, T: number, guidance: number): RowPlan[] {
  const rows = list.split(',').map((item) => item.trim()).filter(Boolean).map((item) => {
    const m = /^([a-z+0-9]+):(\d+|T)$/.exec(item);
    if (!m) throw new InvalidArgumentError(`--rows item ${JSON.stringify(item)} must be sampler:calls (e.g. ddim:25, ddpm:T)`);
    const sampler = checkSamplerName(m[1]);
    const calls = m[2] === 'T' ? T : Number(m[2]);
    if (calls < 1) throw new InvalidArgumentError(`--rows item ${item}: calls must be ≥ 1`);
    const spec: SamplerSpec = { sampler, steps: stepsForCalls(sampler, calls) };
    checkSamplerSpec(spec, T);
    return { id: `${sampler}-${modelCallsFor(sampler, spec.steps)}calls-w${guidance}`, spec, calls: modelCallsFor(sampler, spec.steps), guidance };
  });
  if (rows.length === 0) throw new InvalidArgumentError('--rows names no row');
  return rows;
}

function list(raw: string, flag: string): number[] {
  const v = raw.split(',').map((s) => Number(s.trim()));
  if (v.length === 0 || v.some((x) => !Number.isFinite(x)) || raw.trim() === '') throw new InvalidArgumentError(`${flag} must be comma-separated numbers, got ${JSON.stringify(raw)}`);
  return v;
}

const OPTIONS = {
  checkpoint: { type: 'string' }, n: { type: 'string' }, guidance: { type: 'string' }, rows: { type: 'string' },
  'w-sweep': { type: 'boolean' }, ws: { type: 'string' }, seed: { type: 'string' }, batch: { type: 'string' },
  weights: { type: 'string' }, out: { type: 'string' }, classifier: { type: 'string' }, record: { type: 'string' }, ...SAMPLER_FLAGS,
} as const;

export type QualityValues = Partial<Record<Exclude<keyof typeof OPTIONS, 'w-sweep'>, string>> & { 'w-sweep'?: boolean };

/** The command line → values checked as far as possible before loading anything. */
export function parseQualityArgs(argv: string[]): QualityValues {
  let values: QualityValues;
  try {
    values = parseArgs({ args: argv, options: OPTIONS, strict: true }).values as QualityValues;
  } catch (e) {
    throw new InvalidArgumentError(`${(e as Error).message}. usage: npm run quality-table -- --checkpoint DIR [--n 2000] [--guidance 1] [--rows …] | --w-sweep [--ws …] [--sampler … --calls …]`);
  }
  if (!values.checkpoint) throw new InvalidArgumentError('--checkpoint is required');
  const samplerGiven = (Object.keys(SAMPLER_FLAGS) as (keyof typeof SAMPLER_FLAGS)[]).filter((k) => values[k] !== undefined);
  if (values['w-sweep']) {
    if (values.rows !== undefined) throw new InvalidArgumentError('--rows is for the calls table; --w-sweep takes --sampler and --steps/--calls');
    if (values.guidance !== undefined) throw new InvalidArgumentError('--w-sweep runs every --ws weight; drop --guidance');
    samplerSpecFromArgs(values, { T: Number.MAX_SAFE_INTEGER, sampler: 'dpm++2m', calls: 25 });
    if (values.ws !== undefined) list(values.ws, '--ws');
  } else {
    if (samplerGiven.length > 0) throw new InvalidArgumentError(`--${samplerGiven[0]} is for --w-sweep; the calls table takes --rows sampler:calls,…`);
    if (values.ws !== undefined) throw new InvalidArgumentError('--ws is for --w-sweep');
  }
  if (values.record !== undefined && !/^[A-Za-z][\w-]*$/.test(values.record)) {
    throw new InvalidArgumentError(`--record must be a key such as guidanceSweep (letters, digits, - and _), got ${JSON.stringify(values.record)}`);
  }
  if (values.weights !== undefined && values.weights !== 'ema' && values.weights !== 'params') {
    throw new InvalidArgumentError(`--weights must be ema or params, got ${JSON.stringify(values.weights)}`);
  }
  return values;
}

function intOf(raw: string | undefined, flag: string, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(v) || v < min) throw new InvalidArgumentError(`${flag} must be an integer ≥ ${min}, got ${JSON.stringify(raw)}`);
  return v;
}

const pct = (v: number) => `${(100 * v).toFixed(1)} %`;

/** The table as Markdown (one header line of settings, the rows, the fastai note for Fashion-MNIST). */
export function formatTable(t: QualityTable): string {
  const s = t.settings;
  const fashion = s.dataset === 'fashion-mnist';
  const head = `${s.checkpoint} (${s.dataset}, step ${s.step}, ${s.weights} weights): ${s.n} samples (${s.nPerClass} per class), ` +
    `seed ${s.seed}, batch ${s.batchSize}${t.mode === 'calls' ? `, guidance w = ${s.guidance}` : ''}; reference ${t.reference.images} real test images ` +
    `(classifier accuracy on them ${pct(t.reference.classifierAccuracy)}); real-vs-real floor ${t.floor.toFixed(2)}; ${t.backend}`;
  const cols = [t.mode === 'w-sweep' ? 'w' : '', 'sampler', 'steps', 'model calls', 'accuracy', 'FID', 'floor', 'FID/floor', 's per 64 images']
    .filter(Boolean).concat(fashion && t.mode === 'calls' ? ['fastai FID/floor'] : []);
  const lines = [head, '', `| ${cols.join(' | ')} |`, `|${cols.map(() => '---').join('|')}|`];
  const title: Record<string, string> = { ddpm: 'DDPM', ddim: 'DDIM', 'dpm++2m': 'DPM-Solver++ 2M', euler: 'Euler', heun: 'Heun' };
  for (const r of t.rows) {
    const cells = [
      ...(t.mode === 'w-sweep' ? [String(r.guidance)] : []),
      title[r.spec.sampler] + (r.spec.eta ? ` η ${r.spec.eta}` : ''), String(r.spec.steps), String(r.calls), pct(r.accuracy),
      r.fid.toFixed(2), t.floor.toFixed(2), r.fidOverFloor.toFixed(2), r.secondsPer64Images.toFixed(1),
      ...(fashion && t.mode === 'calls' ? [r.fastaiFidOverFloor !== undefined ? r.fastaiFidOverFloor.toFixed(2) : '—'] : []),
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  if (fashion && t.mode === 'calls') {
    lines.push('', `fastai (course22p2, Fashion-MNIST, 2,048 samples, their classifier): real ${FASTAI_FASHION.real}, ` +
      Object.entries(FASTAI_FASHION.fid).map(([k, v]) => `${k.replace(':', ' ')} ${v} (${(v / FASTAI_FASHION.real).toFixed(2)}× real)`).join(', ') +
      '; compare ratios to each floor only (the classifiers differ).');
  }
  return lines.join('\n');
}

/** One row as recorded in provenance.json (what a reader of the shipped model needs; the full row stays in table.json). */
export interface RecordedRow {
  row: string;
  sampler: string;
  steps: number;
  calls: number;
  w: number;
  accuracy: number;
  perClass: number[];
  fid: number;
  fidOverFloor: number;
  secondsPer64Images: number;
  fastaiFidOverFloor?: number;
}

/**
 * Writes `table` into <checkpoint>/provenance.json as metrics[key] (atomically, other fields kept), with only the rows
 * of `ids` — the rows `command` makes (an --out folder can hold rows of earlier runs with other weights). Returns the file.
 */
export function recordMetrics(checkpoint: string, key: string, table: QualityTable, ids: string[], command: string, judgeDir: string): string {
  const file = path.join(path.dirname(checkpointPath(checkpoint)), 'provenance.json');
  const r4 = (v: number) => Number(v.toFixed(4));
  const rows: RecordedRow[] = table.rows.filter((r) => ids.includes(r.id)).map((r) => ({
    row: r.label, sampler: r.spec.sampler, steps: r.spec.steps, calls: r.calls, w: r.guidance,
    accuracy: r4(r.accuracy), perClass: r.perClass.map(r4), fid: r4(r.fid), fidOverFloor: r4(r.fidOverFloor),
    secondsPer64Images: Number(r.secondsPer64Images.toFixed(2)),
    ...(r.fastaiFidOverFloor !== undefined ? { fastaiFidOverFloor: r4(r.fastaiFidOverFloor) } : {}),
  }));
  const entry = {
    command, mode: table.mode, step: table.settings.step, weights: table.settings.weights, n: table.settings.n,
    seed: table.settings.seed, floor: r4(table.floor),
    judge: { classifier: path.relative(process.cwd(), judgeDir) || '.', accuracyOnReference: r4(table.reference.classifierAccuracy), referenceImages: table.reference.images },
    backend: table.backend, date: table.updated, rows,
  };
  updateProvenance(file, (prov) => {
    const metrics = prov.metrics && typeof prov.metrics === 'object' ? prov.metrics : {};
    return { ...prov, metrics: { ...metrics, [key]: entry } };
  });
  return file;
}

interface PartialRow {
  pixels: Float32Array;
  labels: Int32Array;
  batchesDone: number;
  seconds: number;
  sessions: number;
}

function readPartial(file: string, row: RowPlan, settings: QualityTable['settings']): PartialRow | undefined {
  if (!fs.existsSync(file)) return undefined;
  const raw = readRawSamples(file);
  const meta = raw.meta as { row?: unknown; settings?: unknown; batchesDone?: number; seconds?: number; sessions?: number };
  if (JSON.stringify(meta.row) !== JSON.stringify(row) || JSON.stringify(meta.settings) !== JSON.stringify(settings)) {
    throw new InvalidArgumentError(`${file} was written for other settings (${JSON.stringify(meta.settings)}, ${JSON.stringify(meta.row)}): delete it or use another --out`);
  }
  return { pixels: raw.pixels, labels: raw.labels, batchesDone: meta.batchesDone ?? 0, seconds: meta.seconds ?? 0, sessions: meta.sessions ?? 1 };
}

/** The CLI as a function (tests call it in-process); argv excludes node and the script. Returns the table. */
export async function runQualityTable(argv: string[], log: (line: string) => void = console.log): Promise<QualityTable> {
  const a = parseQualityArgs(argv);
  const backend = await initBackend();
  const weights = (a.weights ?? 'ema') as 'ema' | 'params';
  const loaded: LoadedModel = loadModel(a.checkpoint!, weights);
  try {
    const numClasses = loaded.model.numClasses;
    if (numClasses < 1) throw new InvalidArgumentError(`${a.checkpoint} holds an unconditional model: the table needs class-conditional samples`);
    const dataset = checkpointDataset(loaded.header);
    const n = intOf(a.n, '--n', fastOr(20, 2000), numClasses);
    if (n % numClasses !== 0) throw new InvalidArgumentError(`--n must be a multiple of the ${numClasses} classes, got ${n}`);
    const nPerClass = n / numClasses;
    const seed = intOf(a.seed, '--seed', 0, 0);
    const batchSize = intOf(a.batch, '--batch', 64, 1);
    const sweep = a['w-sweep'] === true;
    let guidance: number | undefined;
    let plans: RowPlan[];
    if (sweep) {
      const spec = samplerSpecFromArgs(a, { T: loaded.schedule.T, sampler: 'dpm++2m', calls: 25 });
      const { calls, ...samplerSpec } = spec;
      const ws = a.ws !== undefined ? list(a.ws, '--ws') : fastOr([0, 1, 2], DEFAULT_WS);
      plans = ws.map((w) => ({ id: `${spec.sampler}-${calls}calls-w${w}`, spec: samplerSpec, calls, guidance: w }));
    } else {
      guidance = a.guidance === undefined ? 1 : Number(a.guidance);
      if (a.guidance !== undefined && (a.guidance.trim() === '' || !Number.isFinite(guidance))) throw new InvalidArgumentError(`--guidance must be a number, got ${JSON.stringify(a.guidance)}`);
      plans = parseRows(a.rows ?? (isFastMode() ? 'ddpm:3,ddim:2,dpm++2m:2,heun:3' : DEFAULT_ROWS), loaded.schedule.T, guidance);
    }
    const name = path.basename(path.resolve(a.checkpoint!));
    const outDir = a.out ?? path.join('out', sweep ? `wsweep-${name}-${plans[0].spec.sampler}-${plans[0].calls}calls` : `quality-${name}-w${guidance}`);
    const rowsDir = path.join(outDir, 'rows');
    fs.mkdirSync(rowsDir, { recursive: true });
    const settings: QualityTable['settings'] = {
      checkpoint: a.checkpoint!, step: loaded.header.step, dataset, n, nPerClass, ...(guidance !== undefined ? { guidance } : {}), seed, batchSize, weights,
    };
    const tableFile = path.join(outDir, 'table.json');
    let previous: QualityTable | undefined;
    if (fs.existsSync(tableFile)) {
      previous = JSON.parse(fs.readFileSync(tableFile, 'utf8')) as QualityTable;
      if (JSON.stringify(previous.settings) !== JSON.stringify(settings) || previous.mode !== (sweep ? 'w-sweep' : 'calls')) {
        throw new InvalidArgumentError(`${tableFile} holds a ${previous.mode} table for ${JSON.stringify(previous.settings)}; ` +
          `this run is ${JSON.stringify(settings)}: use another --out (or delete it to start again)`);
      }
    }

    // the real reference and its floor, once: every row has the same labels, seed and reference
    const labels = Int32Array.from({ length: n }, (_, i) => Math.floor(i / nPerClass));
    const classifier = loadClassifier(a.classifier ?? classifierDir(dataset), { dataset });
    try {
      const test = loadDataset(dataset, 'test');
      const real = referenceSplit(test, n);
      const t0 = Date.now();
      const ref = await realReference(classifier, real);
      const floor = realFloor(ref.features, ref.labels, ref.featureDim, labels, { seed, numClasses });
      log(`reference: ${real.size} real ${dataset} test images classified in ${((Date.now() - t0) / 1000).toFixed(1)} s ` +
        `(accuracy ${pct(ref.accuracy)}); real-vs-real floor at ${n} samples: ${floor.toFixed(2)}`);
      const table: QualityTable = {
        mode: sweep ? 'w-sweep' : 'calls',
        settings,
        reference: { images: real.size, wholeTestSplit: real.size === test.size, classifierAccuracy: ref.accuracy },
        floor,
        rows: previous?.rows ?? [],
        backend: backend.line,
        updated: new Date().toISOString(),
      };
      const save = () => {
        table.updated = new Date().toISOString();
        const order = plans.map((p) => p.id);
        table.rows.sort((x, y) => order.indexOf(x.id) - order.indexOf(y.id));
        writeFileAtomic(tableFile, `${JSON.stringify(table, null, 2)}\n`);
        writeFileAtomic(path.join(outDir, 'table.md'), `${formatTable(table)}\n`);
      };

      const nBatches = Math.ceil(n / batchSize);
      for (const plan of plans) {
        if (table.rows.some((r) => r.id === plan.id)) {
          log(`${plan.id}: done before (in ${tableFile})`);
          continue;
        }
        const partialFile = path.join(rowsDir, `${plan.id}.partial.bin`);
        const got = readPartial(partialFile, plan, settings);
        const done: PartialRow = got ?? { pixels: new Float32Array(0), labels: new Int32Array(0), batchesDone: 0, seconds: 0, sessions: 0 };
        done.sessions += 1;
        const o: SamplingOptions = { ...plan.spec, guidance: plan.guidance, seed, batchSize };
        log(`${plan.id}: ${samplerLabel(plan.spec)}, w = ${plan.guidance}, ${nBatches} batches${got ? `, resuming after batch ${got.batchesDone}` : ''}`);
        for (let b = done.batchesDone; b < nBatches; b++) {
          const classes = Array.from(labels.subarray(b * batchSize, (b + 1) * batchSize));
          const t = Date.now();
          const { images } = await sampleBatch(loaded, classes, b, o);
          let px: Float32Array;
          try {
            px = (await images.data()) as Float32Array; // the read that completes the batch: inside its timing
          } finally {
            images.dispose();
          }
          done.seconds += (Date.now() - t) / 1000;
          const pixels = new Float32Array(done.pixels.length + px.length);
          pixels.set(done.pixels);
          pixels.set(px, done.pixels.length);
          done.pixels = pixels;
          done.labels = Int32Array.from([...done.labels, ...classes]);
          done.batchesDone = b + 1;
          writeRawSamples(partialFile, {
            count: done.labels.length, height: 28, width: 28, channels: 1, pixels: done.pixels, labels: done.labels,
            meta: { row: plan, settings, batchesDone: done.batchesDone, seconds: done.seconds, sessions: done.sessions },
          });
          log(`  batch ${b + 1}/${nBatches}: ${((Date.now() - t) / 1000).toFixed(1)} s (load average ${os.loadavg()[0].toFixed(1)})`);
        }
        const images = tf.tensor4d(done.pixels, [n, 28, 28, 1]);
        let report;
        try {
          report = await evaluateSamples(classifier, images, labels, ref, { seed });
        } finally {
          images.dispose();
        }
        const fastaiKey = `${plan.spec.sampler}:${plan.calls}`;
        const fastai = dataset === 'fashion-mnist' && !plan.spec.eta ? FASTAI_FASHION.fid[fastaiKey] : undefined;
        const result: RowResult = {
          ...plan,
          label: samplerLabel(plan.spec),
          accuracy: report.accuracy.overall,
          perClass: report.accuracy.perClass.map((c) => c.accuracy),
          fid: report.fid.fid,
          fidOverFloor: report.fid.fid / floor,
          sampleSeconds: done.seconds,
          secondsPer64Images: (done.seconds * 64) / n,
          sessions: done.sessions,
          ...(fastai !== undefined ? { fastaiFidOverFloor: fastai / FASTAI_FASHION.real } : {}),
          date: new Date().toISOString(),
        };
        table.rows.push(result);
        save();
        fs.renameSync(partialFile, path.join(rowsDir, `${plan.id}.bin`));
        log(`${plan.id}: accuracy ${pct(result.accuracy)}, FID ${result.fid.toFixed(2)} (floor ${floor.toFixed(2)}, ×${result.fidOverFloor.toFixed(2)}), ` +
          `${result.secondsPer64Images.toFixed(1)} s per 64 images`);
      }
      save();
      log('');
      log(formatTable(table));
      log(`\nwrote ${tableFile} and ${path.join(outDir, 'table.md')}`);
      if (a.record !== undefined) {
        const prov = recordMetrics(a.checkpoint!, a.record, table, plans.map((p) => p.id), ['npm run quality-table --', ...argv].join(' '), a.classifier ?? classifierDir(dataset));
        log(`recorded as metrics.${a.record} in ${prov}`);
      }
      return table;
    } finally {
      classifier.dispose();
    }
  } finally {
    loaded.model.dispose();
  }
}

if (require.main === module) {
  runQualityTable(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof DiffusionError ? `${e.name}: ${e.message}` : e);
    process.exit(1);
  });
}
