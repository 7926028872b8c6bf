/**
 * The GPU check: what scripts/gpu-check.sh bundles (esbuild, with Node and Dawn) and scripts/gpu-check-device.sh runs
 * on a machine with a GPU, in one call of the device tool (a few minutes; phases stop at --budget):
 *   1. backend  lib's selection, forced to webgpu; what the automatic rule would decide on that machine;
 *   2. kernels  every op family of the U-Net against the cpu backend (test/backend/webgpu-cases.ts, as in CI on
 *               llvmpipe) and the course U-Net's forward + every parameter's gradient (relative error ≤ 1e-4);
 *   3. bench    reference U-Net and course model: training step (lib's loss, gradients, lib's Adam; each timed step
 *               ends in a read-back) and forward, at B=64 and B=256; tf.profile of one step at B=64: kernels per
 *               step and the 10 kernels with the most GPU time (timestamp queries: DIFFUSION_WEBGPU_PROFILE=1);
 *   4. train    a short real training run of the course model on MNIST digits, then a DDIM-50 sample grid (PNG).
 * Writes gpu-check.json, loss.csv and samples.png to --out and prints a summary. Exit code 1 if a check failed.
 *
 *   node gpu-check.js [--out DIR] [--budget SECONDS] [--data mnist-subset.bin] [--tiny] [--phases kernels,bench,train]
 *   (from the repository: node -r ts-node/register scripts/gpu-check.ts …)
 *
 * --tiny: small batches and few steps, for the dry run on llvmpipe (scripts/gpu-check.sh --dry-run).
 * The training step here reads values only with `await data()` and skips gradient clipping and EMA: lib's Trainer
 * reads synchronously, which webgpu cannot do in Node, until lib's API is asynchronous.
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
import { REFERENCE_UNET, UNet, type UNetConfig } from '../lib/models/unet';
import type { DiffusionModel } from '../lib/models/types';
import { makeRng } from '../lib/random';
import { DDIMScheduler } from '../lib/samplers/ddim';
import { guidedDenoiser } from '../lib/samplers/guidance';
import type { NoiseSchedule } from '../lib/schedule';
import { Adam, warmupLr } from '../lib/train/adam';
import { makeSchedule } from '../lib/train/run-config';
import { drawStepInputs, stepLoss } from '../lib/train/trainer';
import courseRun from '../configs/unet-cond-mnist.json';
import { compareUNetRuns, errors, opCases, unetForwardAndGrads, valuesOn, worstOutside } from '../test/backend/webgpu-cases';

type Phase = 'kernels' | 'bench' | 'train';
const PHASES: Phase[] = ['kernels', 'bench', 'train'];

interface Args { out: string; budgetSec: number; data: string; tiny: boolean; phases: Phase[] }

function parseArgs(argv: string[]): Args {
  const a: Args = {
    out: process.env.OUT || 'gpu-check-out', budgetSec: 420, data: path.join(__dirname, 'mnist-subset.bin'), tiny: false, phases: PHASES,
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
const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];
const round = (v: number, digits = 2) => Number(v.toFixed(digits));

/** The JSON report, filled phase by phase (written even when a phase fails). */
const report: Record<string, unknown> = { date: new Date().toISOString(), node: process.version, failures: [] as string[] };
const failures = report.failures as string[];

// ------------------------------------------------------------------------------------------------ training step

interface StepContext { model: DiffusionModel; schedule: NoiseSchedule; adam: Adam; lr: number; warmup: number; seed: number; classDropout: number }

function makeContext(config: UNetConfig, scheduleSpec: Parameters<typeof makeSchedule>[0]): StepContext {
  const model = new UNet(config);
  return {
    model, schedule: makeSchedule(scheduleSpec), adam: new Adam(model.params.variables()),
    lr: courseRun.train.lr, warmup: courseRun.train.warmupSteps, seed: courseRun.train.seed, classDropout: courseRun.train.classDropout,
  };
}

/**
 * One optimizer step on (x, labels): lib's loss on lib's drawn inputs, gradients, lib's Adam. Reading the loss after
 * the update waits for everything queued, so a timed step includes its GPU work. Disposes x.
 */
async function trainStep(ctx: StepContext, x: tf.Tensor4D, labels: number[], step: number): Promise<number> {
  const vars = ctx.model.params.variables();
  const y = tf.tensor1d(labels, 'int32'); // in JS memory: drawStepInputs reads it synchronously
  const inputs = await drawStepInputs({ x, y }, ctx.schedule, ctx.model.numClasses,
    { seed: ctx.seed, classDropout: ctx.classDropout }, step);
  tf.dispose([x, y]);
  const { value, grads } = tf.variableGrads(() => stepLoss(ctx.model, ctx.schedule, inputs), vars);
  tf.dispose([inputs.x0, inputs.noise, inputs.t, inputs.classes]);
  const ordered = vars.map((v) => grads[v.name]);
  ctx.adam.apply(ordered, warmupLr(step, ctx.lr, ctx.warmup));
  tf.dispose(ordered);
  const loss = (await value.data())[0];
  value.dispose();
  return loss;
}

function syntheticImages(batch: number, seed: number): tf.Tensor4D {
  return tf.randomUniform([batch, 28, 28, 1], -1, 1, 'float32', seed) as tf.Tensor4D;
}

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
}

async function timed(fn: () => Promise<unknown>, warmup: number, steps: number): Promise<{ medianMs: number; allMs: number[] }> {
  for (let i = 0; i < warmup; i++) await fn();
  const all: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await fn();
    all.push(round(performance.now() - t0, 1));
  }
  return { medianMs: median(all), allMs: all };
}

async function phaseBench(tiny: boolean, deadline: number): Promise<void> {
  const models: Array<{ name: string; config: UNetConfig; schedule: Parameters<typeof makeSchedule>[0] }> = [
    { name: 'reference', config: REFERENCE_UNET, schedule: { kind: 'linear', T: 1000 } },
    { name: courseRun.name, config: COURSE, schedule: courseRun.schedule as Parameters<typeof makeSchedule>[0] },
  ];
  const batches = tiny ? [2] : [64, 256];
  const [warmup, steps] = tiny ? [1, 1] : [2, 5];
  const rows: Array<Record<string, unknown>> = [];
  report.bench = rows;
  for (const m of models) {
    for (const b of batches) {
      if (Date.now() > deadline) {
        rows.push({ model: m.name, batch: b, skipped: 'time budget spent' });
        continue;
      }
      const ctx = makeContext(m.config, m.schedule);
      const row: Record<string, unknown> = { model: m.name, params: ctx.model.paramCount(), batch: b };
      rows.push(row);
      try {
        let step = 0;
        const labels = Array.from({ length: b }, (_, i) => i % 10);
        const train = await timed(() => trainStep(ctx, syntheticImages(b, 1000 + step), labels, step++), warmup, steps);
        row.trainStepMs = train.medianMs;
        row.trainStepMsAll = train.allMs;
        row.imagesPerSec = round((b * 1000) / train.medianMs, 1);
        const x = syntheticImages(b, 7);
        const t = tf.tensor1d(Array.from({ length: b }, (_, i) => (i * 37) % 1000), 'int32');
        const c = tf.tensor1d(labels, 'int32');
        const fwd = await timed(async () => {
          const y = tf.tidy(() => ctx.model.apply(x, t, c));
          await y.data();
          y.dispose();
        }, warmup, steps);
        tf.dispose([x, t, c]);
        row.forwardMs = fwd.medianMs;
        row.forwardMsAll = fwd.allMs;
        // tfjs' webgpu backend: bytes in its buffer pool (in use + free for reuse), a lower bound of the device memory
        const mem = tf.memory() as tf.MemoryInfo & { numBytesAllocatedInGPU?: number };
        row.gpuPoolMB = mem.numBytesAllocatedInGPU !== undefined ? round(mem.numBytesAllocatedInGPU / 2 ** 20, 0) : undefined;
        if (b === batches[0]) row.profile = await profileStep(ctx, b, step);
      } catch (err) {
        row.error = (err as Error).message.slice(0, 400);
        failures.push(`bench ${m.name} B=${b}: ${row.error}`);
      } finally {
        ctx.adam.dispose();
        ctx.model.dispose();
      }
      console.log(`[gpu-check] bench ${m.name} B=${b}: ${row.error ? `FAILED: ${row.error}`
        : `train step ${row.trainStepMs} ms (${row.imagesPerSec} images/s), forward ${row.forwardMs} ms`}`);
    }
  }
}

/** tf.profile of one training step: kernels per step and where the GPU time goes (timestamp queries permitting). */
async function profileStep(ctx: StepContext, b: number, step: number): Promise<Record<string, unknown>> {
  const labels = Array.from({ length: b }, (_, i) => i % 10);
  const t0 = performance.now();
  const info = await tf.profile(async () => {
    await trainStep(ctx, syntheticImages(b, 5000), labels, step);
    return [] as tf.Tensor[];
  });
  const wallMs = performance.now() - t0;
  const byName = new Map<string, { ms: number; calls: number }>();
  let totalMs = 0;
  for (const k of info.kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    totalMs += ms;
    const e = byName.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += ms;
    e.calls += 1;
    byName.set(k.name, e);
  }
  const top = [...byName.entries()].map(([kernel, v]) => ({ kernel, ms: round(v.ms, 2), calls: v.calls }))
    .sort((p, q) => q.ms - p.ms || q.calls - p.calls).slice(0, 10);
  const timestamps = startedWebGpu()?.device.features.has('timestamp-query') ?? false;
  console.log(`  profile: ${info.kernels.length} kernels per step, ${round(totalMs, 1)} ms GPU time`
    + `${timestamps ? '' : ' (no timestamp queries: GPU times read 0; DIFFUSION_WEBGPU_PROFILE=1 enables them)'}, `
    + `profiled step ${round(wallMs, 0)} ms wall`);
  for (const k of top) console.log(`    ${k.kernel.padEnd(28)} ${String(k.ms).padStart(9)} ms  ${k.calls} calls`);
  return { kernelsPerStep: info.kernels.length, gpuMs: round(totalMs, 2), timestampQueries: timestamps, profiledWallMs: round(wallMs, 0), top };
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
  const ctx = makeContext(COURSE, courseRun.schedule as Parameters<typeof makeSchedule>[0]);
  const rng = makeRng(courseRun.train.seed);
  const losses: number[] = [];
  const t0 = Date.now();
  // leave time for sampling: DDIM-50 of 40 digits with guidance ≈ 100 model calls at batch 80
  const trainUntil = deadline - (args.tiny ? 5000 : 45000);
  try {
    for (let step = 0; step < maxSteps && Date.now() < trainUntil; step++) {
      const idx = Array.from({ length: batch }, () => Math.floor(rng() * digits.count));
      const x = new Float32Array(batch * 784);
      idx.forEach((i, k) => { for (let j = 0; j < 784; j++) x[k * 784 + j] = bytesToUnit(digits.images[i * 784 + j]); });
      losses.push(await trainStep(ctx, tf.tensor4d(x, [batch, 28, 28, 1]), idx.map((i) => digits.labels[i]), step));
      if (!Number.isFinite(losses[losses.length - 1])) throw new Error(`training loss is ${losses[losses.length - 1]} at step ${step}`);
    }
    const trainSec = (Date.now() - t0) / 1000;
    fs.writeFileSync(path.join(args.out, 'loss.csv'), `step,loss\n${losses.map((l, i) => `${i},${l}`).join('\n')}\n`);
    const mean = (xs: number[]) => xs.reduce((s, v) => s + v, 0) / Math.max(1, xs.length);
    const firstLoss = mean(losses.slice(0, 20));
    const lastLoss = mean(losses.slice(-20));
    console.log(`[gpu-check] train: ${losses.length} steps of batch ${batch} in ${round(trainSec, 1)} s `
      + `(${round(losses.length / trainSec, 2)} steps/s); loss ${firstLoss.toFixed(4)} (first 20) → ${lastLoss.toFixed(4)} (last 20)`);

    // DDIM with classifier-free guidance (w = 2): perClass digits of each class, one class per column
    const classes = Array.from({ length: 10 * perClass }, (_, i) => i % 10);
    const scheduler = new DDIMScheduler(ctx.schedule).setTimesteps(sampleSteps);
    const den = guidedDenoiser((x, t, c) => ctx.model.apply(x, t, c), { classes, weight: 2 });
    const s0 = Date.now();
    let x = tf.randomNormal([classes.length, 28, 28, 1], 0, 1, 'float32', 123);
    for (const t of scheduler.timesteps) {
      const next = tf.tidy(() => {
        const out = den(x, tf.fill([classes.length], t, 'int32') as tf.Tensor1D);
        return scheduler.step(out, t, x).prevSample;
      });
      x.dispose();
      x = next;
    }
    const pixels = await x.data();
    x.dispose();
    const sampleSec = (Date.now() - s0) / 1000;
    const nonFinite = pixels.filter((v) => !Number.isFinite(v)).length;
    fs.writeFileSync(path.join(args.out, 'samples.png'), gridPng(pixels as Float32Array, classes.length, 10));
    report.train = {
      steps: losses.length, batch, seconds: round(trainSec, 1), stepsPerSec: round(losses.length / trainSec, 3),
      firstLoss: round(firstLoss, 5), lastLoss: round(lastLoss, 5), sampler: `DDIM-${sampleSteps}, guidance 2`,
      samples: classes.length, sampleSeconds: round(sampleSec, 1), nonFinitePixels: nonFinite, files: ['loss.csv', 'samples.png'],
    };
    console.log(`[gpu-check] samples: ${classes.length} digits (DDIM-${sampleSteps}, guidance 2) in ${round(sampleSec, 1)} s → samples.png`);
    if (nonFinite > 0) failures.push(`${nonFinite} sample pixels are NaN or infinite`);
  } finally {
    ctx.adam.dispose();
    ctx.model.dispose();
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

  const phaseBudget: Record<Phase, number> = { kernels: 0.25, bench: 0.45, train: 0.3 };
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
      else if (phase === 'bench') await phaseBench(args.tiny, phaseDeadline);
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
