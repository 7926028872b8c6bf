/**
 * npm run bench [-- --quick] [--slow] [--json FILE] [--models reference,unet-cond-mnist] [--no-torch] [--profile]
 *                  [--variants a,b] [--webgpu] [--batch N] [--tiny] [--torch-device cpu|cuda] [--torch-python PATH]
 *
 * Speed and memory of the course's models on every backend available here, next to the same model in PyTorch on the
 * CPU (scripts/bench_torch.py, run in the same invocation). Prints a table and writes JSON (default
 * bench-results/bench-<date>.json) for comparison across commits. See docs/benchmarks.md for what each column means.
 *
 *   --quick     fewer timed steps (3 after 1 warm-up), DDIM-50 estimated from 5 steps, leak checks over 20 train steps
 *               and 200 sampling steps: a couple of minutes instead of ~10
 *   --slow      also the pure-JS cpu backend (train at batch 2: minutes per step)
 *   --profile   print the 12 most expensive kernels of one training step (wasm, native, webgpu; on webgpu with
 *               timestamp queries, i.e. GPU time)
 *   --variants  only these rows (e.g. webgpu)
 *   --webgpu    the webgpu row also on a CPU adapter (Mesa llvmpipe: a dry run, CPU figures); without it the row is
 *               there only when lib's webgpu loader finds a real GPU adapter
 *   --batch N   the batch of the training step, forward pass and sampling (default 64)
 *   --tiny      smoke test of the benchmark itself (1 timed step, sampling estimated from 2 steps, leak checks over 3
 *               train / 10 sampling steps): figures without meaning, for dry runs on llvmpipe
 *   --torch-device cuda  the PyTorch row on the GPU (one run) instead of the CPU thread counts; --torch-python: the
 *               interpreter that has torch (default /usr/bin/python3)
 *
 * Every backend variant runs in a fresh child process (`--child VARIANT`), so its peak RSS and wasm heap are its own.
 * Bundled by the GPU check (scripts/gpu-check.sh) it runs from the repository root without ts-node.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../lib/errors';
import { ArgList } from './cli-args';
import { benchModels, syntheticBatch, type BenchModel } from './bench-models';
import { createModel, type DiffusionModel, type ModelConfig } from '../lib/models';
import { ParallelCourseTrainer, parallelDenoiser, peakRssBytes, threadCpuMs, wasmHeapBytes } from '../lib/parallel';
import { ddimSample, ddpmSample, type SampleResult } from '../lib/samplers';
import { DEFAULT_TRAIN, Trainer, type TrainConfig } from '../lib/train/trainer';
import { makeSchedule } from '../lib/train/run-config';

// the repository root: this file's parent, or the working directory when it runs as a bundle (the GPU check)
const ROOT = fs.existsSync(path.resolve(__dirname, '..', 'configs')) ? path.resolve(__dirname, '..') : process.cwd();
/** Batch of the timed training step, forward pass and sampling (--batch). */
let BATCH = 64;

// ---------------------------------------------------------------------------------------------------- options

/**
 * wasm: lib/backend's wasm with the course kernels only (no native addon), lib/train's Trainer (one thread).
 * wasm-2threads: the same step data-parallel over 2 threads (lib/parallel).
 * native: wasm + the native OpenBLAS kernels (build/native), one JS thread, OpenBLAS on 1 thread (one core's work).
 * native-blas2: the same with OpenBLAS on 2 threads (what a notebook gets by default).
 * native-2threads: native kernels, data-parallel over 2 JS threads, OpenBLAS on 1 thread each; -mb16: micro-batches of 16.
 * native-avx512, native-2threads-avx512: as native / native-2threads with OPENBLAS_CORETYPE=SkylakeX, i.e. OpenBLAS'
 *   AVX-512 kernels, on CPUs that have AVX-512 when the environment chose another core type (skipped otherwise).
 * wasm-stock: tfjs' wasm without the course kernels. cpu: tfjs' pure-JS backend (with --slow).
 * webgpu: lib/backend's webgpu (Dawn, the course's WGSL kernels), lib/train's Trainer; only on a real GPU adapter unless
 *   --webgpu forces it (then also on llvmpipe).
 */
type Variant = 'webgpu' | 'wasm' | 'wasm-2threads' | 'native' | 'native-blas2' | 'native-2threads' | 'native-2threads-mb16'
  | 'native-avx512' | 'native-2threads-avx512' | 'wasm-stock' | 'cpu';
const VARIANTS: Variant[] = ['webgpu', 'wasm', 'wasm-2threads', 'native', 'native-blas2', 'native-2threads', 'native-2threads-mb16',
  'native-avx512', 'native-2threads-avx512', 'wasm-stock', 'cpu'];
const isParallel = (v: Variant) => v.includes('2threads');
/** Environment of each variant's child process (DIFFUSION_NATIVE, DIFFUSION_BLAS_THREADS, OPENBLAS_CORETYPE). */
function variantEnv(v: Variant, profile: boolean): Record<string, string> {
  // timestamp queries: tf.profile then reports each kernel's GPU time
  if (v === 'webgpu') return profile ? { DIFFUSION_WEBGPU_PROFILE: '1' } : {};
  if (!v.startsWith('native')) return { DIFFUSION_NATIVE: '0' };
  const env: Record<string, string> = { DIFFUSION_NATIVE: '1', DIFFUSION_BLAS_THREADS: v === 'native-blas2' ? '2' : '1' };
  if (v.endsWith('-avx512')) env.OPENBLAS_CORETYPE = 'SkylakeX';
  return env;
}

/** The avx512 rows only mean something where the CPU has AVX-512 and the environment picked another OpenBLAS core. */
function avx512RowsApply(): boolean {
  if (process.env.OPENBLAS_CORETYPE === 'SkylakeX' || process.platform !== 'linux') return false;
  try {
    const flags = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags')) ?? '';
    return ['avx512f', 'avx512bw', 'avx512dq', 'avx512vl'].every((f) => flags.includes(f));
  } catch {
    return false;
  }
}

interface Args {
  quick: boolean;
  slow: boolean;
  profile: boolean;
  torch: boolean;
  json?: string;
  models?: string[];
  child?: Variant;
  modelFile?: string;
  variants?: Variant[];
  webgpu: boolean;
  batch: number;
  tiny: boolean;
  torchDevice: 'cpu' | 'cuda';
  torchPython?: string;
}

function parseVariant(v: string, flag: string): Variant {
  if (!VARIANTS.includes(v as Variant)) throw new InvalidArgumentError(`${flag} must be one of ${VARIANTS.join(', ')}, got '${v}'`);
  return v as Variant;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { quick: false, slow: false, profile: false, torch: true, webgpu: false, batch: 64, tiny: false, torchDevice: 'cpu' };
  const args = new ArgList(argv);
  for (let k = args.next(); k !== undefined; k = args.next()) {
    if (k === '--quick') a.quick = true;
    else if (k === '--slow') a.slow = true;
    else if (k === '--profile') a.profile = true;
    else if (k === '--no-torch') a.torch = false;
    else if (k === '--json') a.json = args.value(k);
    else if (k === '--models') a.models = args.value(k).split(',').map((s) => s.trim()).filter(Boolean);
    else if (k === '--child') a.child = parseVariant(args.value(k), k);
    else if (k === '--model-file') a.modelFile = args.value(k);
    else if (k === '--variants') a.variants = args.value(k).split(',').map((s) => parseVariant(s.trim(), '--variants'));
    else if (k === '--webgpu') a.webgpu = true;
    else if (k === '--tiny') a.tiny = true;
    else if (k === '--batch') {
      const v = args.value(k);
      a.batch = Number(v);
      if (!(Number.isInteger(a.batch) && a.batch > 0)) throw new InvalidArgumentError(`--batch must be a positive integer, got '${v}'`);
    } else if (k === '--torch-device') {
      const d = args.value(k);
      if (d !== 'cpu' && d !== 'cuda') throw new InvalidArgumentError(`--torch-device must be cpu or cuda, got '${d}'`);
      a.torchDevice = d;
    } else if (k === '--torch-python') a.torchPython = args.value(k);
    else {
      throw new InvalidArgumentError(`unknown option '${k}'; expected --quick, --slow, --profile, --no-torch, --json FILE, --models a,b, `
        + '--variants a,b, --webgpu, --batch N, --tiny, --torch-device cpu|cuda, --torch-python PATH');
    }
  }
  return a;
}

// ---------------------------------------------------------------------------------------------------- measuring

/** Wall time, and CPU time of the whole process (all threads): on a shared, loaded machine the CPU time is what an idle
 * machine's wall time would be for one thread, and its half a lower bound for two. */
interface Timed { medianMs: number; allMs: number[]; cpuMedianMs: number }

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function timeIt(fn: () => unknown | Promise<unknown>, steps: number, warmup: number): Promise<Timed> {
  for (let i = 0; i < warmup; i++) await fn();
  const all: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < steps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await fn();
    all.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  return { medianMs: median(all), allMs: all, cpuMedianMs: median(cpu) };
}

function sampleShape(model: ModelConfig, batch: number): number[] {
  const m = model as { imageSize?: number; channels?: number };
  return m.imageSize ? [batch, m.imageSize, m.imageSize, m.channels ?? 1] : [batch, 2];
}

function denoiser(model: DiffusionModel) {
  return (x: tf.Tensor, t: tf.Tensor1D, c?: tf.Tensor1D) => model.apply(x, t, c);
}

function trainConfig(): TrainConfig {
  return { ...DEFAULT_TRAIN, steps: 1_000_000, warmupSteps: 0, checkpointEvery: 0 };
}

interface ChildResult {
  variant: Variant;
  model: string;
  backendLine: string;
  params: number;
  trainBatch?: number;
  trainStepMs?: number;
  trainStepMsAll?: number[];
  trainStepCpuMs?: number;
  imagesPerSec?: number;
  trainError?: string;
  trainTiming?: Record<string, number>;
  forwardBatch?: number;
  forwardMs?: number;
  forwardCpuMs?: number;
  forwardIdleEstimateMs?: number;
  ddim50Ms?: number;
  ddim50Estimated?: boolean;
  ddpm1000Ms?: number;
  ddpm1000Estimated?: boolean;
  leakTrain?: { steps: number; batch: number; after1: number; afterN: number };
  leakSample?: { steps: number; batch: number; first: number; last: number; min: number; max: number };
  peakRssMB: number;
  wasmHeapMB?: number;
  /** webgpu: tfjs' GPU buffer pool (in use + kept for reuse), a lower bound of the device memory used. */
  gpuPoolMB?: number;
  workerHeapMB?: number[];
  profile?: { kernel: string; ms: number; calls: number }[];
  /** Engine-level kernels in the profiled step (tf.profile). */
  profileKernels?: number;
  notes: string[];
}

const MB = 1024 * 1024;

async function runChild(args: Args): Promise<ChildResult> {
  const variant = args.child!;
  const bm = JSON.parse(fs.readFileSync(args.modelFile!, 'utf8')) as BenchModel;
  const quick = args.quick || args.tiny;
  const steps = args.tiny ? 1 : variant === 'cpu' ? 2 : quick ? 3 : 5;
  const warmup = variant === 'cpu' || quick ? 1 : 2;
  const notes: string[] = [];

  let backendLine: string;
  if (variant === 'webgpu') {
    // a real GPU adapter only, unless --webgpu forces it (then Mesa llvmpipe too): lib's loader decides
    const { loadWebGpu } = await import('../lib/backend/webgpu');
    await loadWebGpu({ forced: args.webgpu });
    const { initBackend } = await import('../lib/backend');
    backendLine = (await initBackend({ prefer: 'webgpu', quiet: true })).line;
  } else if (variant === 'wasm-stock' || variant === 'cpu') {
    // bypass lib/backend on purpose: stock tfjs, none of the course's kernels
    await import('@tensorflow/tfjs-backend-wasm');
    const name = variant === 'cpu' ? 'cpu' : 'wasm';
    if (!(await tf.setBackend(name))) throw new Error(`backend ${name} failed to start`);
    backendLine = `${name} (stock tfjs 4.22, no course kernels)`;
    const { wasmKernelsRegistered } = await import('../lib/backend');
    if (wasmKernelsRegistered()) notes.push('course kernels were registered: this is not the stock backend');
  } else {
    const { initBackend } = await import('../lib/backend');
    backendLine = (await initBackend({ prefer: 'wasm', quiet: true })).line;
    const { nativeKernelsRegistered } = await import('../lib/backend/wasm-kernels');
    const { nativeUnavailableReason } = await import('../lib/backend/kernels/native-blas');
    if (variant.startsWith('native') && nativeKernelsRegistered().length === 0) {
      // a "native" row without the addon would silently repeat the wasm row
      throw new Error(`native kernels not available: ${nativeUnavailableReason() || 'not registered'}`);
    }
  }

  const schedule = makeSchedule(bm.schedule);
  const model = createModel(bm.model);
  const result: ChildResult = { variant, model: bm.name, backendLine, params: model.paramCount(), peakRssMB: 0, notes };

  // ---- training step
  const trainBatch = variant === 'cpu' ? 2 : variant === 'wasm-stock' ? 8 : BATCH;
  result.trainBatch = trainBatch;
  let step = 0;
  let par: ParallelCourseTrainer | undefined;
  try {
    if (isParallel(variant)) {
      par = await ParallelCourseTrainer.create(bm.model, schedule, trainConfig(), 2, variant.endsWith('-mb16') ? 16 : undefined);
      const timings: Record<string, number[]> = {};
      const t = await timeIt(async () => {
        const r = await par!.trainStep(syntheticBatch(bm.model, trainBatch, step++));
        for (const [k, v] of Object.entries(r.timing)) (timings[k] ??= []).push(v);
      }, steps, warmup);
      result.trainStepMs = t.medianMs;
      result.trainStepMsAll = t.allMs;
      result.trainStepCpuMs = t.cpuMedianMs;
      result.trainTiming = Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, median(v.slice(warmup))]));
      // what this step would take on an idle 2-core machine: the busier thread's CPU time, then the serial reduction
      const tt = result.trainTiming;
      if (tt.mainCpu !== undefined && tt.workerCpu !== undefined) tt.idleEstimate = Math.max(tt.mainCpu, tt.workerCpu) + tt.reduceAndApply;
      result.workerHeapMB = par.parallel.workerHeapBytes.map((b) => b / MB);
    } else {
      const trainer = new Trainer(model, schedule, trainConfig());
      // trainStep awaits the read of its loss, which (queued after it) completes the whole step on any backend
      const t = await timeIt(() => trainer.trainStep(syntheticBatch(bm.model, trainBatch, step++)), steps, warmup);
      result.trainStepMs = t.medianMs;
      result.trainStepMsAll = t.allMs;
      result.trainStepCpuMs = t.cpuMedianMs;
      if (args.profile && (variant === 'wasm' || variant === 'native' || variant === 'webgpu')) {
        ({ top: result.profile, kernels: result.profileKernels } = await profileStep(trainer, bm, trainBatch));
      }
      trainer.dispose();
    }
    result.imagesPerSec = (trainBatch * 1000) / result.trainStepMs!;
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    // "Kernel 'X' not registered for backend 'wasm'" → the kernel's name is what the table needs
    result.trainError = /Kernel '(\w+)' not registered/.exec(msg)?.[1].concat(' missing') ?? msg;
  }
  if (variant.endsWith('-mb16') || (isParallel(variant) && !par)) {
    // micro-batches change training memory only; inference is measured in the wasm-2threads row
    result.peakRssMB = peakRssBytes() / MB;
    result.wasmHeapMB = (wasmHeapBytes() ?? 0) / MB;
    await par?.dispose();
    model.dispose();
    return result;
  }
  // the 2-thread row samples with each model call split over both threads (lib/parallel parallelDenoiser)
  const parallel = par?.parallel;

  // ---- forward pass (the unit of sampling cost)
  const fwdBatch = BATCH;
  result.forwardBatch = fwdBatch;
  const m = model as DiffusionModel;
  const numClasses = m.numClasses;
  const x = tf.randomNormal(sampleShape(bm.model, fwdBatch), 0, 1, 'float32', 7);
  const tt = tf.tensor1d(Array.from({ length: fwdBatch }, (_, i) => (i * 37) % schedule.T), 'int32');
  const cc = numClasses > 0 ? tf.tensor1d(Array.from({ length: fwdBatch }, (_, i) => i % numClasses), 'int32') : undefined;
  const mainCpu: number[] = [];
  // each forward pass ends with the awaited read of its output: the read completes the work being timed
  const forwardOnce = async () => {
    const c0 = threadCpuMs();
    const y = parallel ? await parallel.apply(cc ? { x, t: tt, classes: cc } : { x, t: tt }) : tf.tidy(() => m.apply(x, tt, cc));
    try {
      await y.data();
    } finally {
      y.dispose();
    }
    const c1 = threadCpuMs();
    if (c0 !== undefined && c1 !== undefined) mainCpu.push(c1 - c0);
  };
  const fwd = await timeIt(forwardOnce, variant === 'cpu' ? 2 : steps, 1);
  result.forwardMs = fwd.medianMs;
  result.forwardCpuMs = fwd.cpuMedianMs;
  // with 2 threads the main thread computes half the rows and the worker the other half: the main thread's CPU time
  // is what an idle 2-core machine would take per forward pass
  if (parallel && mainCpu.length) result.forwardIdleEstimateMs = median(mainCpu.slice(1));
  tf.dispose([x, tt, cc]);
  if (variant === 'cpu' || variant === 'wasm-stock') {
    result.peakRssMB = peakRssBytes() / MB;
    result.wasmHeapMB = variant === 'wasm-stock' ? (wasmHeapBytes() ?? 0) / MB : undefined;
    model.dispose();
    return result;
  }

  // ---- sampling 64 images
  const classes = numClasses > 0 ? Array.from({ length: BATCH }, (_, i) => i % numClasses) : undefined;
  const den = parallel ? parallelDenoiser(parallel) : denoiser(m);
  const wall = async (run: () => Promise<SampleResult>): Promise<number> => {
    const t0 = performance.now();
    const r = await run();
    await r.sample.data(); // the read that completes the sampling is part of its time
    const ms = performance.now() - t0;
    tf.dispose([r.sample, ...r.trajectory.flatMap((p) => [p.x, p.predX0].filter((t): t is tf.Tensor => !!t))]);
    return ms;
  };
  if (quick) {
    const k = args.tiny ? 2 : 5;
    result.ddim50Ms = ((await wall(() => ddimSample(den, sampleShape(bm.model, BATCH), schedule, { predictionType: bm.model.predictionType, steps: k, seed: 1, classes }))) / k) * 50;
    result.ddim50Estimated = true;
  } else {
    result.ddim50Ms = await wall(() => ddimSample(den, sampleShape(bm.model, BATCH), schedule, { predictionType: bm.model.predictionType, steps: 50, seed: 1, classes }));
    result.ddim50Estimated = false;
  }
  // DDPM's per-step work equals the full run's (one forward + a few elementwise ops): 1000 steps at batch 64 would take
  // ~15 min here, so the per-step time of a 10-step run is scaled up, and the table says "est."
  const k = args.tiny ? 2 : 10;
  result.ddpm1000Ms = ((await wall(() => ddpmSample(den, sampleShape(bm.model, BATCH), schedule, { predictionType: bm.model.predictionType, steps: k, seed: 2, classes }))) / k) * 1000;
  result.ddpm1000Estimated = true;

  if (parallel) {
    result.peakRssMB = peakRssBytes() / MB;
    result.wasmHeapMB = (wasmHeapBytes() ?? 0) / MB;
    await par!.dispose();
    model.dispose();
    return result;
  }

  // ---- tensor counts: flat over training steps and over a full-length sampling run (small batches: counts only)
  {
    const n = args.tiny ? 3 : quick ? 20 : 100;
    const trainer = new Trainer(model, schedule, trainConfig());
    await trainer.trainStep(syntheticBatch(bm.model, 2, 0));
    const after1 = tf.memory().numTensors;
    for (let s = 1; s < n; s++) await trainer.trainStep(syntheticBatch(bm.model, 2, s));
    result.leakTrain = { steps: n, batch: 2, after1, afterN: tf.memory().numTensors };
    trainer.dispose();
  }
  {
    const n = args.tiny ? 10 : quick ? 200 : 1000;
    const counts: number[] = [];
    const before = tf.memory().numTensors;
    const r = await ddpmSample(den, sampleShape(bm.model, 1), schedule, {
      predictionType: bm.model.predictionType, steps: n, seed: 3, classes: classes?.slice(0, 1), onStep: () => counts.push(tf.memory().numTensors),
    });
    r.sample.dispose();
    result.leakSample = { steps: n, batch: 1, first: counts[0], last: counts[counts.length - 1], min: Math.min(...counts), max: Math.max(...counts) };
    if (tf.memory().numTensors !== before) notes.push(`sampling left ${tf.memory().numTensors - before} tensors behind`);
  }
  result.peakRssMB = peakRssBytes() / MB;
  if (variant === 'webgpu') {
    const bytes = (tf.memory() as tf.MemoryInfo & { numBytesAllocatedInGPU?: number }).numBytesAllocatedInGPU;
    result.gpuPoolMB = bytes === undefined ? undefined : bytes / MB;
  } else result.wasmHeapMB = (wasmHeapBytes() ?? 0) / MB;
  model.dispose();
  return result;
}

/**
 * Per-kernel time of one training step (wasm kernels are synchronous, so tfjs' kernel timings are real; on webgpu they
 * are GPU times when timestamp queries are on, DIFFUSION_WEBGPU_PROFILE=1, which --profile sets, and 0 otherwise).
 */
async function profileStep(trainer: Trainer, bm: BenchModel, batch: number): Promise<{ top: { kernel: string; ms: number; calls: number }[]; kernels: number }> {
  const info = await tf.profile(async () => {
    await trainer.trainStep(syntheticBatch(bm.model, batch, 999));
  });
  const by = new Map<string, { ms: number; calls: number }>();
  for (const k of info.kernels) {
    const e = by.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    e.calls += 1;
    by.set(k.name, e);
  }
  const top = [...by.entries()].map(([kernel, v]) => ({ kernel, ...v })).sort((a, b) => b.ms - a.ms || b.calls - a.calls).slice(0, 12);
  return { top, kernels: info.kernels.length };
}

// ---------------------------------------------------------------------------------------------------- parent

interface TorchRun {
  device?: 'cpu' | 'cuda'; gpu?: string; peakGpuMB?: number;
  threads: number; params: number; trainStepMs: number; trainStepCpuMs?: number; imagesPerSec: number; forwardMs: number;
  forwardCpuMs?: number; peakRssMB: number;
}
interface TorchResult { torch?: string; runs?: TorchRun[]; skipped?: string; error?: string }

function spawnChild(args: Args, variant: Variant, modelFile: string): ChildResult | { variant: Variant; error: string } {
  // from the repository: this .ts file through ts-node; as a bundle (the GPU check): the bundle itself
  const self = __filename.endsWith('.ts') ? ['-r', 'ts-node/register/transpile-only', __filename] : [__filename];
  const childArgs = [...self, '--child', variant, '--model-file', modelFile, '--batch', String(BATCH)];
  if (args.quick) childArgs.push('--quick');
  if (args.tiny) childArgs.push('--tiny');
  if (args.profile) childArgs.push('--profile');
  if (args.webgpu) childArgs.push('--webgpu');
  const r = spawnSync(process.execPath, childArgs, {
    cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * MB, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...variantEnv(variant, args.profile) },
  });
  const last = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as ChildResult;
  } catch {
    return { variant, error: `child exited with ${r.status ?? r.signal}: ${last.slice(0, 200)}` };
  }
}

function runTorch(args: Args, bm: BenchModel, modelFile: string): TorchResult {
  if (!args.torch) return { skipped: '--no-torch' };
  const py = args.torchPython ?? (fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
  const cfgFile = modelFile.replace(/\.json$/, '.torch.json');
  fs.writeFileSync(cfgFile, JSON.stringify(bm.model));
  const where = args.torchDevice === 'cuda' ? ['--device', 'cuda'] : ['--threads', '2,1'];
  const [steps, warmup] = args.tiny ? ['1', '1'] : args.quick ? ['3', '1'] : ['5', '2'];
  const r = spawnSync(py, [path.join(ROOT, 'scripts/bench_torch.py'), '--config', cfgFile, ...where,
    '--batch', String(BATCH), '--steps', steps, '--warmup', warmup],
  { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * MB, stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.error) return { skipped: `cannot run ${py}: ${r.error.message}` };
  const last = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as TorchResult;
  } catch {
    return { error: `bench_torch.py exited with ${r.status}: ${last.slice(0, 200)}` };
  }
}

const fmt = (v: number | undefined, digits = 0) => (v === undefined || !Number.isFinite(v) ? '—' : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));

function table(bm: BenchModel, rows: (ChildResult | { variant: Variant; error: string })[], torch: TorchResult): string {
  const head = ['variant', 'params', 'batch', 'ms/step', 'cpu ms', 'img/s', `ms/fwd@${BATCH}`, 'cpu ms', 'DDIM-50 s', 'DDPM-1000 s', 'RSS MB', 'heap MB', 'tensors train', 'tensors sample'];
  const lines: string[][] = [head];
  for (const r of rows) {
    if ('error' in r) { lines.push([r.variant, `error: ${r.error}`]); continue; }
    const train = r.trainError ? `fails: ${r.trainError.slice(0, 60)}` : fmt(r.trainStepMs);
    const heap = r.gpuPoolMB !== undefined ? `gpu ${fmt(r.gpuPoolMB)}`
      : r.workerHeapMB?.length ? `${fmt(r.wasmHeapMB)} + ${r.workerHeapMB.map((h) => fmt(h)).join(' + ')}` : fmt(r.wasmHeapMB);
    lines.push([
      r.variant, String(r.params), String(r.trainBatch ?? '—'), train, fmt(r.trainStepCpuMs), fmt(r.imagesPerSec, 1), fmt(r.forwardMs), fmt(r.forwardCpuMs),
      r.ddim50Ms === undefined ? '—' : `${fmt(r.ddim50Ms / 1000, 1)}${r.ddim50Estimated ? ' est.' : ''}`,
      r.ddpm1000Ms === undefined ? '—' : `${fmt(r.ddpm1000Ms / 1000, 0)}${r.ddpm1000Estimated ? ' est.' : ''}`,
      fmt(r.peakRssMB), heap,
      r.leakTrain ? `${r.leakTrain.after1}→${r.leakTrain.afterN} (${r.leakTrain.steps})` : '—',
      r.leakSample ? `${r.leakSample.min}…${r.leakSample.max} (${r.leakSample.steps})` : '—',
    ]);
  }
  for (const t of torch.runs ?? []) {
    lines.push([t.device === 'cuda' ? 'pytorch cuda' : `pytorch ${t.threads} thr`, String(t.params), String(BATCH), fmt(t.trainStepMs), fmt(t.trainStepCpuMs), fmt(t.imagesPerSec, 1), fmt(t.forwardMs), fmt(t.forwardCpuMs), '—', '—', fmt(t.peakRssMB),
      t.peakGpuMB !== undefined ? `gpu ${fmt(t.peakGpuMB)}` : '—', '—', '—']);
  }
  const widths = head.map((_, j) => Math.max(...lines.map((l) => (l[j] ?? '').length)));
  const out = lines.map((l) => l.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : (c ?? '').padStart(widths[j]))).join('  '));
  out.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  if (torch.skipped) out.push(`pytorch: skipped — ${torch.skipped}`);
  if (torch.error) out.push(`pytorch: ${torch.error}`);
  return `== ${bm.name} (${(bm.model as { widths?: number[] }).widths?.join('/') ?? bm.model.kind}; trained in the course at batch ${bm.trainBatch}) ==\n${out.join('\n')}`;
}

function ratios(rows: (ChildResult | { error: string })[], torch: TorchResult): Record<string, number | undefined> {
  const ok = rows.filter((r): r is ChildResult => !('error' in r));
  // the reference: PyTorch on CUDA when measured (--torch-device cuda), else on 2 CPU threads
  const t2 = torch.runs?.find((r) => r.device === 'cuda') ?? torch.runs?.find((r) => r.threads === 2);
  const t1 = torch.runs?.find((r) => r.threads === 1 && r.device !== 'cuda');
  const by = (v: Variant) => ok.find((r) => r.variant === v);
  const div = (a: number | undefined, b: number | undefined) => (a && b ? a / b : undefined);
  const out: Record<string, number | undefined> = {};
  // wall time, every full-batch tfjs row against PyTorch on 2 threads (same run)
  for (const r of ok) {
    if (r.trainBatch === BATCH) out[`train:${r.variant}`] = div(r.trainStepMs, t2?.trainStepMs);
    if (r.forwardMs !== undefined && r.variant !== 'wasm-stock') out[`forward:${r.variant}`] = div(r.forwardMs, t2?.forwardMs);
  }
  // load-independent: CPU time of one thread's work (1 JS thread, 1 native thread) against PyTorch on 1 thread
  out['trainCpuPerThread:wasm'] = div(by('wasm')?.trainStepCpuMs, t1?.trainStepCpuMs);
  out['trainCpuPerThread:native'] = div(by('native')?.trainStepCpuMs, t1?.trainStepCpuMs);
  out['forwardCpuPerThread:native'] = div(by('native')?.forwardCpuMs, t1?.forwardCpuMs);
  out['parallelSpeedup:wasm'] = div(by('wasm')?.trainStepMs, by('wasm-2threads')?.trainStepMs);
  out['parallelSpeedup:native'] = div(by('native')?.trainStepMs, by('native-2threads')?.trainStepMs);
  out['nativeSpeedup:1thread'] = div(by('wasm')?.trainStepMs, by('native')?.trainStepMs);
  return out;
}

/**
 * Whether the webgpu row runs: lib's loader must find a real GPU adapter (the rule of the automatic selection), unless
 * --webgpu forces it. Returns why not, or undefined.
 */
async function webgpuSkipReason(args: Args): Promise<string | undefined> {
  if (args.webgpu) return undefined;
  const { chooseWebGpuAdapter, realWebGpuHost } = await import('../lib/backend/webgpu');
  try {
    await chooseWebGpuAdapter(false, realWebGpuHost());
    return undefined;
  } catch (e) {
    return `${(e instanceof Error ? e.message : String(e)).replace(/; DIFFUSION_BACKEND=webgpu forces it$/, "")} (--webgpu runs it anyway)`;
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  BATCH = args.batch;
  if (args.child) {
    try {
      const r = await runChild(args);
      process.stdout.write(`${JSON.stringify(r)}\n`);
    } catch (e) {
      // one line of JSON all the same, so that the table shows why this row is missing
      process.stdout.write(`${JSON.stringify({ variant: args.child, error: e instanceof Error ? e.message : String(e) })}\n`);
    }
    return;
  }
  const started = new Date();
  const { models, skipped } = benchModels(args.models, undefined, BATCH);
  const withAvx512 = avx512RowsApply() && process.env.OPENBLAS_CORETYPE !== undefined;
  let variants = args.variants ?? VARIANTS.filter((v) => (v !== 'cpu' || args.slow) && (!v.endsWith('-avx512') || withAvx512));
  if (variants.includes('webgpu')) {
    const why = await webgpuSkipReason(args);
    if (why) {
      skipped.push(`webgpu row — ${why}`);
      variants = variants.filter((v) => v !== 'webgpu');
    }
  }
  const machine = {
    date: started.toISOString(), cpu: os.cpus()[0]?.model, cores: os.cpus().length, memGB: os.totalmem() / 2 ** 30,
    node: process.version, platform: `${os.platform()} ${os.release()}`, loadavgStart: os.loadavg(), quick: args.quick,
  };
  console.log(`bench ${machine.date} — ${machine.cpu}, ${machine.cores} cores, load ${machine.loadavgStart.map((l) => l.toFixed(1)).join(' ')}${args.quick ? ' — QUICK mode' : ''}`);
  for (const s of skipped) console.log(`skipped: ${s}`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-'));
  const results: unknown[] = [];
  for (const bm of models) {
    const modelFile = path.join(tmp, `${bm.name}.json`);
    fs.writeFileSync(modelFile, JSON.stringify(bm));
    const rows = variants.map((v) => {
      process.stderr.write(`[bench] ${bm.name}: ${v} …\n`);
      return spawnChild(args, v, modelFile);
    });
    process.stderr.write(`[bench] ${bm.name}: pytorch …\n`);
    const torch = runTorch(args, bm, modelFile);
    const r = ratios(rows, torch);
    console.log(`\n${table(bm, rows, torch)}`);
    const tfParams = (rows.find((x) => !('error' in x)) as ChildResult | undefined)?.params;
    const ptParams = torch.runs?.[0]?.params;
    if (ptParams !== undefined) console.log(`parameters: tfjs ${tfParams}, pytorch ${ptParams}${tfParams === ptParams ? ' (equal)' : ' — DIFFERENT ARCHITECTURES'}`);
    const list = (kind: string) => Object.entries(r).filter(([k, v]) => k.startsWith(`${kind}:`) && v !== undefined)
      .map(([k, v]) => `${k.slice(kind.length + 1)} ${fmt(v, 2)}×`).join(', ');
    const ref = args.torchDevice === 'cuda' ? 'pytorch cuda   ' : 'pytorch 2 threads';
    console.log(`ratios tfjs / ${ref} (wall, same run): train step — ${list('train') || 'no pytorch'}`);
    console.log(`                                                  forward@${BATCH} — ${list('forward') || 'no pytorch'}`);
    console.log(`CPU time of one thread's work / pytorch 1 thread: train step wasm ${fmt(r['trainCpuPerThread:wasm'], 2)}×, `
      + `native ${fmt(r['trainCpuPerThread:native'], 2)}×; forward native ${fmt(r['forwardCpuPerThread:native'], 2)}×`);
    console.log(`speed-ups (wall): native kernels on one thread ${fmt(r['nativeSpeedup:1thread'], 2)}×; data-parallel 2 threads: `
      + `wasm ${fmt(r['parallelSpeedup:wasm'], 2)}×, native ${fmt(r['parallelSpeedup:native'], 2)}×`);
    for (const row of rows) if (!('error' in row)) console.log(`backend (${row.variant}): ${row.backendLine}`);
    for (const row of rows) {
      if (!('error' in row) && row.profile) {
        console.log(`most expensive kernels of one training step (${row.variant}${row.variant === 'webgpu' ? ', GPU time' : ', one thread'}; `
          + `${row.profileKernels ?? '?'} kernels in the step):`);
        for (const p of row.profile) console.log(`  ${p.kernel.padEnd(24)} ${fmt(p.ms, 1).padStart(7)} ms  ${String(p.calls).padStart(4)} calls`);
      }
      if (!('error' in row) && row.forwardIdleEstimateMs !== undefined) {
        console.log(`${row.variant} forward pass at batch 64: main thread CPU ${fmt(row.forwardIdleEstimateMs)} ms (idle 2-core estimate)`);
      }
      if (!('error' in row) && row.trainTiming) {
        console.log(`${row.variant} step breakdown (median ms): ${Object.entries(row.trainTiming).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}`);
      }
      if (!('error' in row)) for (const n of row.notes) console.log(`note (${row.variant}): ${n}`);
    }
    results.push({ model: bm, rows, torch, ratios: r });
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  const out = args.json ?? path.join(ROOT, 'bench-results', `bench-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  fs.writeFileSync(out, `${JSON.stringify({ machine: { ...machine, loadavgEnd: os.loadavg() }, results }, null, 1)}\n`);
  console.log(`\nload average at the end: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} (figures are noisy when it exceeds the core count)`);
  console.log(`wrote ${out}`);
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e instanceof Error ? `${e.name}: ${e.message}` : e);
    process.exit(1);
  });
}
