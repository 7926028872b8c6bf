/**
 * The GPU check's main part: what scripts/gpu-check.sh bundles (esbuild, with Node and Dawn) and
 * scripts/gpu-check-device.sh runs on a machine with a GPU, in one call of the device tool (phases stop at --budget):
 *   1. backend  lib's selection, forced to webgpu; what the automatic rule would decide on that machine;
 *   2. kernels  every op family of the U-Net against the cpu backend (test/backend/webgpu-cases.ts, as in CI on
 *               llvmpipe), the course U-Net's forward + every parameter's gradient (relative error ≤ 1e-4), and one
 *               lib/train Trainer step (control, fused Adam, fused EMA) against the same step on cpu;
 *   3. train    a short real training run of the course model on MNIST digits with lib/train's Trainer (its config:
 *               clipping, warm-up, EMA, the course's fused kernels; losses read in batches), then a DDIM-50 sample grid
 *               with classifier-free guidance from the EMA weights (PNG).
 * Speed is measured by the other two parts of the check: `npm run bench`'s webgpu row next to PyTorch on CUDA in the
 * same run (scripts/bench.ts) and the kernel-level comparison (scripts/bench-webgpu-kernels.ts).
 * Writes gpu-check.json, loss.csv and samples.png to --out and prints a summary. Exit code 1 if a check failed.
 *
 *   node gpu-check.js [--out DIR] [--budget SECONDS] [--data mnist-subset.bin] [--tiny] [--phases kernels,train]
 *   (from the repository: node -r ts-node/register scripts/gpu-check.ts …)
 *
 * --tiny: small batches and few steps, for the dry run on llvmpipe (scripts/gpu-check.sh --dry-run).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { silenceCpuBanner } from '../lib/backend/loaders';
import { chooseWebGpuAdapter, describeAdapter, realWebGpuHost, startedWebGpu } from '../lib/backend/webgpu';
import { bytesToUnit } from '../lib/data/mnist';
import { InvalidArgumentError } from '../lib/errors';
import { UNet, type UNetConfig } from '../lib/models/unet';
import { makeRng } from '../lib/random';
import { ddimSample } from '../lib/samplers/ddim';
import { makeSchedule } from '../lib/train/run-config';
import { DEFAULT_TRAIN, Trainer, type Batch, type TrainConfig } from '../lib/train/trainer';
import courseRun from '../configs/unet-cond-mnist-small.json';
import {
  compareTrainerSteps, compareUNetRuns, countDispatches, errors, opCases, trainerStep, trainerStepsAgree, unetForwardAndGrads,
  valuesOn, worstOutside,
} from '../test/backend/webgpu-cases';

type Phase = 'kernels' | 'train';
const PHASES: Phase[] = ['kernels', 'train'];

interface Args { out: string; budgetSec: number; data: string; tiny: boolean; phases: Phase[] }

function parseArgs(argv: string[]): Args {
  const a: Args = {
    out: process.env.OUT || 'gpu-check-out', budgetSec: 240, data: path.join(__dirname, 'mnist-subset.bin'), tiny: false, phases: PHASES,
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new InvalidArgumentError(`${k} needs a value`);
      return v;
    };
    if (k === '--out') a.out = value();
    else if (k === '--budget') {
      a.budgetSec = Number(value());
      if (!(a.budgetSec > 0)) throw new InvalidArgumentError(`--budget must be a positive number of seconds, got ${argv[i]}`);
    } else if (k === '--data') a.data = value();
    else if (k === '--tiny') a.tiny = true;
    else if (k === '--phases') {
      a.phases = value().split(',').map((s) => s.trim()) as Phase[];
      const bad = a.phases.filter((p) => !PHASES.includes(p));
      if (bad.length) throw new InvalidArgumentError(`--phases: unknown ${bad.join(', ')}; expected some of ${PHASES.join(',')}`);
    } else throw new InvalidArgumentError(`unknown option '${k}': expected --out DIR, --budget SEC, --data FILE, --tiny, --phases a,b`);
  }
  return a;
}

const COURSE: UNetConfig = courseRun.model as UNetConfig;
const SCHEDULE = courseRun.schedule as Parameters<typeof makeSchedule>[0];
const round = (v: number, digits = 2) => Number(v.toFixed(digits));

/** The JSON report, filled phase by phase (written even when a phase fails). */
const report: Record<string, unknown> = { date: new Date().toISOString(), node: process.version, failures: [] as string[] };
const failures = report.failures as string[];

// ------------------------------------------------------------------------------------------------ phases

async function phaseKernels(tiny: boolean): Promise<void> {
  const rows: Array<Record<string, unknown>> = [];
  let bad = 0;
  const t0 = Date.now();
  for (const c of opCases()) {
    const want = await valuesOn('cpu', c.f);
    let row: Record<string, unknown>;
    try {
      const got = await valuesOn('webgpu', c.f);
      const worst = got.values.map((g, i) => errors(g, want.values[i]));
      const outside = got.values.map((g, i) => worstOutside(g, want.values[i], c.atol ?? 1e-4, c.rtol ?? 1e-4));
      const ok = outside.every((k) => k < 0) && got.shapes.every((s, i) => s.join() === want.shapes[i].join());
      row = { family: c.family, label: c.label, ok, maxAbs: Math.max(...worst.map((e) => e.abs)), maxRel: Math.max(...worst.map((e) => e.rel)) };
    } catch (err) {
      row = { family: c.family, label: c.label, ok: false, error: (err as Error).message.slice(0, 400) };
    }
    if (!row.ok) bad++;
    rows.push(row);
  }
  const families = [...new Set(rows.map((r) => r.family as string))].map((family) => {
    const rs = rows.filter((r) => r.family === family);
    return {
      family, cases: rs.length, failed: rs.filter((r) => !r.ok).length,
      maxAbs: Math.max(...rs.map((r) => (r.maxAbs as number) ?? Infinity)), maxRel: Math.max(...rs.map((r) => (r.maxRel as number) ?? Infinity)),
    };
  });
  report.kernels = { seconds: round((Date.now() - t0) / 1000, 1), families, failedCases: rows.filter((r) => !r.ok) };
  console.log(`[gpu-check] kernels: ${rows.length - bad}/${rows.length} cases match cpu (${round((Date.now() - t0) / 1000, 1)} s)`);
  for (const f of families) {
    console.log(`  ${f.family.padEnd(38)} ${f.failed ? `${f.failed} FAILED` : 'ok'}   max |Δ| ${f.maxAbs.toExponential(1)}   relative ${f.maxRel.toExponential(1)}`);
  }
  if (bad) failures.push(`${bad} kernel case(s) differ from cpu`);

  // the course U-Net, forward + every gradient, against cpu
  const b = tiny ? 1 : 2;
  await tf.setBackend('cpu');
  const want = await unetForwardAndGrads(COURSE, b);
  await tf.setBackend('webgpu');
  const got = await unetForwardAndGrads(COURSE, b);
  const c = compareUNetRuns(got, want);
  const ok = c.differentInit.length === 0 && c.forward.rel <= 1e-4 && c.lossRel <= 1e-4 && c.overTolerance.length === 0 && !c.allGradsZero;
  report.unet = { batch: b, ok, ...c };
  console.log(`[gpu-check] course U-Net vs cpu (B=${b}): forward relative ${c.forward.rel.toExponential(1)}, worst gradient `
    + `${c.worstGrad.name} ${c.worstGrad.rel.toExponential(1)}: ${ok ? 'ok' : 'FAILED'}`);
  if (!ok) failures.push('course U-Net differs from cpu');

  // one lib/train Trainer step (control, fused Adam and EMA) against the same step on cpu, as test/backend/webgpu-train
  const config: TrainConfig = { ...DEFAULT_TRAIN, ...courseRun.train, batchSize: b, warmupSteps: 0, checkpointEvery: 0 };
  const schedule = makeSchedule(SCHEDULE);
  await tf.setBackend('cpu');
  const wantStep = await trainerStep(COURSE, schedule, config, b);
  await tf.setBackend('webgpu');
  const gotStep = await trainerStep(COURSE, schedule, config, b);
  const s = compareTrainerSteps(gotStep, wantStep);
  const n = wantStep.names.length;
  const tail = Object.fromEntries(gotStep.tail!.byProgram);
  const tailOk = tail.CourseAdamUpdate === n && tail.CourseEmaUpdate === n && gotStep.tail!.dispatches === 2 * n + Math.ceil(n / 7) + 1;
  const stepOk = trainerStepsAgree(s) && gotStep.leaked === 0 && gotStep.work!.reads === 0 && tailOk;
  report.trainerStep = {
    batch: b, ok: stepOk, ...s, dispatches: gotStep.work!.dispatches, readsWhileQueued: gotStep.work!.reads,
    tailDispatches: gotStep.tail!.dispatches, tail,
  };
  console.log(`[gpu-check] Trainer step vs cpu (B=${b}): weights ${s.weights.toExponential(1)}, Adam m ${s.m.rel.toExponential(1)}, `
    + `v ${s.v.rel.toExponential(1)}, EMA ${s.ema.toExponential(1)}; ${gotStep.work!.dispatches} dispatches (tail `
    + `${gotStep.tail!.dispatches}), ${gotStep.work!.reads} reads while queued: ${stepOk ? 'ok' : 'FAILED'}`);
  if (!stepOk) failures.push('the Trainer step differs from cpu (or dispatched / read more than it should)');
}

/** The digits file written by scripts/gpu-check-data.ts: "MNSB", uint32 count, count×784 pixel bytes, count labels. */
function readDigits(file: string): { images: Uint8Array; labels: Uint8Array; count: number } {
  const buf = fs.readFileSync(file);
  if (buf.subarray(0, 4).toString('latin1') !== 'MNSB') throw new InvalidArgumentError(`${file} is not a digits file from scripts/gpu-check-data.ts`);
  const count = buf.readUInt32LE(4);
  if (buf.length !== 8 + count * 785) throw new InvalidArgumentError(`${file}: ${buf.length} bytes, expected ${8 + count * 785} for ${count} digits`);
  return { images: buf.subarray(8, 8 + count * 784), labels: buf.subarray(8 + count * 784), count };
}

async function phaseTrain(args: Args, deadline: number): Promise<void> {
  const digits = readDigits(args.data);
  const batch = args.tiny ? 8 : courseRun.train.batchSize;
  const maxSteps = args.tiny ? 5 : courseRun.train.steps;
  const sampleSteps = args.tiny ? 3 : 50;
  const perClass = args.tiny ? 1 : 4;
  // the course's own training config (clipping, warm-up, EMA), as `npm run train -- configs/unet-cond-mnist-small.json` runs it
  const config: TrainConfig = { ...DEFAULT_TRAIN, ...courseRun.train, batchSize: batch, steps: maxSteps, checkpointEvery: 0 };
  const trainer = new Trainer(new UNet(COURSE), makeSchedule(SCHEDULE), config);
  /** The batch of step n: a seeded draw of digits (a pure function of n, as lib/train expects). */
  const source = (step: number): Batch => {
    const rng = makeRng(1_000_003 * (config.seed + 1) + step);
    const idx = Array.from({ length: batch }, () => Math.floor(rng() * digits.count));
    const x = new Float32Array(batch * 784);
    idx.forEach((i, k) => { for (let j = 0; j < 784; j++) x[k * 784 + j] = bytesToUnit(digits.images[i * 784 + j]); });
    return { x: tf.tensor4d(x, [batch, 28, 28, 1]), y: tf.tensor1d(idx.map((i) => digits.labels[i]), 'int32') };
  };
  const losses: number[] = [];
  const ema = new UNet(COURSE);
  // leave time for sampling: DDIM-50 of 40 digits with guidance = 50 model calls at batch 80
  const trainUntil = deadline - (args.tiny ? 5000 : 30000);
  try {
    // the dispatches of one whole step (inputs, loss, gradients, control, Adam, EMA), counted before the run
    const counted = countDispatches(() => trainer.queueStep(source(0)));
    await trainer.fit(source, { until: 1 }); // reads step 0
    losses.push(...trainer.lossHistory);
    const t0 = Date.now();
    await trainer.fit(source, { shouldStop: () => Date.now() > trainUntil, onStep: (e) => losses.push(e.loss) });
    const trainSec = (Date.now() - t0) / 1000;
    const timedSteps = losses.length - 1;
    fs.writeFileSync(path.join(args.out, 'loss.csv'), `step,loss\n${losses.map((l, i) => `${i},${l}`).join('\n')}\n`);
    const mean = (xs: number[]) => xs.reduce((sum, v) => sum + v, 0) / Math.max(1, xs.length);
    const firstLoss = mean(losses.slice(0, 20));
    const lastLoss = mean(losses.slice(-20));
    console.log(`[gpu-check] train (lib/train Trainer, course config): ${losses.length} steps of batch ${batch}; after the first `
      + `(shader compilation), ${timedSteps} in ${round(trainSec, 1)} s = ${round(timedSteps / trainSec, 2)} steps/s `
      + `(${round((1000 * trainSec) / Math.max(1, timedSteps), 0)} ms/step, losses read every 20 steps); ${counted.dispatches} dispatches per step; `
      + `loss ${firstLoss.toFixed(4)} (first 20) → ${lastLoss.toFixed(4)} (last 20)`);

    // DDIM with classifier-free guidance (w = 2) from the EMA weights: perClass digits of each class, one class per column
    ema.params.assignFrom(new Map(trainer.model.params.names().map((name, i) => [name, trainer.ema.shadow[i]])));
    const classes = Array.from({ length: 10 * perClass }, (_, i) => i % 10);
    const s0 = Date.now();
    const r = await ddimSample((x, t, c) => ema.apply(x, t, c), [classes.length, 28, 28, 1], trainer.schedule, {
      predictionType: ema.predictionType, steps: sampleSteps, seed: 123, guidance: { weight: 2, classes, nullClass: COURSE.numClasses },
    });
    const pixels = (await r.sample.data()) as Float32Array;
    r.sample.dispose();
    const sampleSec = (Date.now() - s0) / 1000;
    fs.writeFileSync(path.join(args.out, 'samples.png'), gridPng(pixels, classes.length, 10));
    report.train = {
      trainer: 'lib/train Trainer (course config: clip, warm-up, EMA; fused Adam / EMA / control kernels)',
      steps: losses.length, batch, seconds: round(trainSec, 1), stepsPerSec: round(timedSteps / trainSec, 3),
      msPerStep: round((1000 * trainSec) / Math.max(1, timedSteps), 1), dispatchesPerStep: counted.dispatches,
      firstLoss: round(firstLoss, 5), lastLoss: round(lastLoss, 5), sampler: `DDIM-${sampleSteps}, guidance 2, EMA weights`,
      samples: classes.length, sampleSeconds: round(sampleSec, 1), files: ['loss.csv', 'samples.png'],
    };
    console.log(`[gpu-check] samples: ${classes.length} digits (DDIM-${sampleSteps}, guidance 2, EMA weights) in ${round(sampleSec, 1)} s → samples.png`);
  } finally {
    trainer.dispose();
    trainer.model.dispose();
    ema.dispose();
  }
}

// ------------------------------------------------------------------------------------------------ PNG (no canvas)

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/**
 * n 28×28 images in [-1, 1] as a greyscale PNG, `cols` per row, 2× pixels, 2-pixel white gaps. Written here rather
 * than with lib/viz's imageGrid, which needs node-canvas (a native addon with system libraries the GPU machine lacks);
 * the byte mapping is lib/viz/grid.ts's toByte.
 */
function gridPng(pixels: Float32Array, n: number, cols: number): Buffer {
  const scale = 2;
  const pad = 2;
  const cell = 28 * scale;
  const rows = Math.ceil(n / cols);
  const width = pad + cols * (cell + pad);
  const height = pad + rows * (cell + pad);
  const raw = Buffer.alloc((width + 1) * height, 255);
  for (let y = 0; y < height; y++) raw[y * (width + 1)] = 0; // filter type 0 per row
  for (let k = 0; k < n; k++) {
    const x0 = pad + (k % cols) * (cell + pad);
    const y0 = pad + Math.floor(k / cols) * (cell + pad);
    for (let i = 0; i < 28 * scale; i++) {
      for (let j = 0; j < 28 * scale; j++) {
        const v = pixels[k * 784 + Math.floor(i / scale) * 28 + Math.floor(j / scale)];
        const byte = Math.round(Math.min(1, Math.max(0, (v + 1) / 2)) * 255);
        raw[(y0 + i) * (width + 1) + 1 + x0 + j] = Number.isNaN(v) ? 0 : byte;
      }
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr), pngChunk('IDAT', zlib.deflateSync(raw)), pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

// ------------------------------------------------------------------------------------------------ main

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  fs.mkdirSync(args.out, { recursive: true });
  const start = Date.now();
  const deadline = start + args.budgetSec * 1000;
  const write = () => fs.writeFileSync(path.join(args.out, 'gpu-check.json'), `${JSON.stringify(report, null, 1)}\n`);

  const backend = await initBackend({ prefer: 'webgpu', quiet: true });
  silenceCpuBanner(); // the cpu backend is the reference: no "install tfjs-node" banner
  const gpu = startedWebGpu()!;
  const limits: Record<string, number | undefined> = {};
  for (const k of ['maxStorageBuffersPerShaderStage', 'maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupStorageSize', 'maxComputeWorkgroupSizeX']) limits[k] = gpu.device.limits[k];
  report.backend = { line: backend.line, adapter: gpu.chosen.adapter.info, dawn: gpu.chosen.dawnBackend, flags: gpu.chosen.flags, limits };
  let auto: string;
  try {
    const c = await chooseWebGpuAdapter(false, realWebGpuHost());
    auto = `webgpu on ${describeAdapter(c.adapter.info)} (Dawn ${c.dawnBackend})`;
  } catch (err) {
    auto = `not webgpu: ${(err as Error).message}`;
  }
  (report.backend as Record<string, unknown>).automaticChoice = auto;
  console.log(backend.line);
  console.log(`[gpu-check] automatic selection here would choose: ${auto}`);
  write();

  const phaseBudget: Record<Phase, number> = { kernels: 0.35, train: 0.65 };
  for (const phase of args.phases) {
    const left = deadline - Date.now();
    if (left <= 0) {
      failures.push(`phase ${phase} skipped: time budget spent`);
      continue;
    }
    // a phase may use its share of what is left, plus whatever earlier phases did not use
    const share = phaseBudget[phase] / args.phases.filter((p) => args.phases.indexOf(p) >= args.phases.indexOf(phase)).reduce((s, p) => s + phaseBudget[p], 0);
    const phaseDeadline = Date.now() + left * share;
    try {
      if (phase === 'kernels') await phaseKernels(args.tiny);
      else await phaseTrain(args, phaseDeadline);
    } catch (err) {
      const msg = `${phase}: ${(err as Error).name}: ${(err as Error).message.slice(0, 500)}`;
      failures.push(msg);
      console.log(`[gpu-check] ${msg}`);
    }
    if (tf.getBackend() !== 'webgpu') await tf.setBackend('webgpu');
    write();
  }
  report.seconds = round((Date.now() - start) / 1000, 1);
  report.tensorsLeft = tf.memory().numTensors;
  write();
  console.log(`[gpu-check] ${failures.length ? `FAILED: ${failures.join('; ')}` : 'all checks passed'} (${report.seconds} s) → ${path.join(args.out, 'gpu-check.json')}`);
  return failures.length ? 1 : 0;
}

main().then((code) => process.exit(code), (err) => {
  console.error(`[gpu-check] ${(err as Error).stack ?? err}`);
  process.exit(2);
});
