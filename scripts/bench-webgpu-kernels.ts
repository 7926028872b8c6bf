/**
 * node -r ts-node/register scripts/bench-webgpu-kernels.ts [--gpu] [--batches 64,256] [--only adam,clip,conv,gn,step]
 *        [--models unet-cond-mnist-small,reference] [--reps N] [--json FILE] [--match TEXT]
 *
 * The course's WebGPU kernels (lib/backend/kernels/webgpu) against what tfjs-backend-webgpu 4.22 does without them, in
 * the same process and on the same device, at the U-Net's own sizes:
 *   adam  one Adam update of every parameter tensor: lib/train/adam.ts's Adam.apply without the course kernels (the
 *         composite, tf ops) and tfjs' tf.train.adam vs with them (one dispatch per tensor)
 *   clip  the global-norm clip: the composite (clipByGlobalNorm's ops without its read, + the scale multiplies) vs
 *         gradientControl (the scale is then applied inside adamUpdate)
 *   conv  Conv2DBackpropFilter for every distinct conv layer of the U-Net, at each batch: tfjs' kernel vs the course's
 *   gn    GroupNorm+SiLU forward and gradient at every GroupNorm shape of the U-Net: composite vs fused
 *   step  a whole training step (ε-MSE forward + gradients, gradientControl, lib/train's Adam and EMA, as the trainer
 *         does it) at each batch: without the course's kernels vs with them
 * --match TEXT keeps the conv/gn rows whose label contains TEXT (e.g. 'dw[3,3,32,32] s1').
 * Each figure: dispatches (counted at Dawn's encoder), and the wall time per call = (K calls back to back, then one
 * `await data()` of the last result) / K, median of 3 such runs after a warm-up call (compiles the pipelines).
 *
 * The backend is lib's webgpu loader (lib/backend/webgpu.ts). Without --gpu it is FORCED, so that a machine without a
 * GPU runs it on Mesa llvmpipe (Dawn's OpenGL backend, compatibility mode): CPU figures, for correctness and dispatch
 * counts, not GPU speed. --gpu: a real GPU adapter only (it fails on a CPU one), with timestamp queries
 * (DIFFUSION_WEBGPU_PROFILE=1: tf.profile's kernelMs is then GPU time). The GPU check (scripts/gpu-check.sh) bundles
 * this script and runs it on the device with --gpu; set VK_DRIVER_FILES to the NVIDIA ICD there (docs: gpu.md).
 * "Without the course kernels" swaps tfjs' originals in through lib's registry (withTfjsWebGpuKernels), keeping the
 * course's AddN (a correctness fix: tfjs' fails beyond 7 inputs).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../lib/errors';
import { createModel, REFERENCE_UNET, type DiffusionModel, type ModelConfig } from '../lib/models';
import { Adam } from '../lib/train/adam';
import { Ema } from '../lib/train/ema';
import { adamUpdate, gradientControl, gradientControlComposite, webgpuKernelConfigs } from '../lib/backend/kernels/webgpu/index';
import { loadWebGpu } from '../lib/backend/webgpu';
import { withTfjsWebGpuKernels } from '../lib/backend/webgpu-kernels';
import { groupNormComposite, groupNormOp } from '../lib/nn/group-norm';
import { countDispatches } from '../test/backend/webgpu-cases';

interface Args { gpu: boolean; batches: number[]; only: Set<string>; models: string[]; reps: number; json?: string; match?: string }

function parseArgs(argv: string[]): Args {
  const a: Args = { gpu: false, batches: [64, 256], only: new Set(['adam', 'clip', 'conv', 'gn', 'step']), models: ['unet-cond-mnist-small', 'reference'], reps: 5 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      const next = argv[++i];
      if (next === undefined) throw new InvalidArgumentError(`${k} needs a value`);
      return next;
    };
    if (k === '--gpu') a.gpu = true;
    else if (k === '--batches') a.batches = v().split(',').map(Number);
    else if (k === '--only') a.only = new Set(v().split(','));
    else if (k === '--models') a.models = v().split(',');
    else if (k === '--reps') a.reps = Number(v());
    else if (k === '--json') a.json = v();
    else if (k === '--match') a.match = v();
    else throw new InvalidArgumentError(`unknown option '${k}'; expected --gpu, --batches a,b, --only adam,clip,conv,gn,step, --models a,b, --reps N, --json FILE, --match TEXT`);
  }
  if (a.batches.some((b) => !(Number.isInteger(b) && b > 0)) || !(a.reps >= 1)) throw new InvalidArgumentError('--batches and --reps must be positive integers');
  return a;
}

const args = parseArgs(process.argv.slice(2));
// the course's WGSL kernels (not its AddN, which only fixes tfjs' for many inputs): what "without" leaves out
const COURSE_WGSL = webgpuKernelConfigs.map((c) => c.kernelName);
/** `f` with tfjs' own webgpu kernels in place of the course's WGSL ones (the course's fused Adam / EMA absent). */
const withoutCourseKernels = <T>(f: () => Promise<T>) => withTfjsWebGpuKernels(f, COURSE_WGSL);

// the repository root: this file's parent, or the working directory when it runs as a bundle elsewhere (GPU machines)
const ROOT = fs.existsSync(path.resolve(__dirname, '..', 'configs')) ? path.resolve(__dirname, '..') : process.cwd();
const results: Record<string, unknown>[] = [];

function modelConfig(name: string): ModelConfig {
  if (name === 'reference') return REFERENCE_UNET;
  const run = JSON.parse(fs.readFileSync(path.join(ROOT, 'configs', `${name}.json`), 'utf8')) as { model: ModelConfig };
  return run.model;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Wall ms per call of `f` (which returns the tensors it made; all are disposed): a warm-up call, then 3 runs of K calls
 * each completed by reading the last call's first output. Also the dispatches of one call.
 */
async function time(f: () => tf.Tensor[], k: number): Promise<{ ms: number; dispatches: number; byProgram: Record<string, number> }> {
  const warm = f();
  await warm[0].data();
  tf.dispose(warm);
  const counted = countDispatches(f);
  await counted.result[0].data();
  tf.dispose(counted.result);
  const runs: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    let last: tf.Tensor[] = [];
    for (let i = 0; i < k; i++) {
      tf.dispose(last);
      last = f();
    }
    await last[0].data();
    runs.push((performance.now() - t0) / k);
    tf.dispose(last);
  }
  const byProgram = Object.fromEntries([...counted.byProgram.entries()].sort((a, b) => b[1] - a[1]));
  return { ms: median(runs), dispatches: counted.dispatches, byProgram };
}

/** tf.profile of one call: the engine-level kernels it ran and their summed kernelMs (GPU time with timestamp queries). */
async function profileKernels(f: () => tf.Tensor[]): Promise<{ kernels: string[]; kernelMs: number }> {
  const info = await tf.profile(() => f());
  const ms = await Promise.all(info.kernels.map((k) => Promise.resolve(k.kernelTimeMs as number | { error: string })));
  tf.dispose(info.result as tf.Tensor[]);
  return { kernels: info.kernels.map((k) => k.name), kernelMs: ms.reduce<number>((a, b) => a + (typeof b === 'number' ? b : 0), 0) };
}

function report(section: string, label: string, before: { ms: number; dispatches: number }, after: { ms: number; dispatches: number }, extra: Record<string, unknown> = {}): void {
  const f = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(2));
  console.log(`${section.padEnd(5)} ${label.padEnd(44)} dispatches ${String(before.dispatches).padStart(5)} → ${String(after.dispatches).padEnd(5)}`
    + ` ms/call ${f(before.ms).padStart(8)} → ${f(after.ms).padEnd(8)} (${(before.ms / after.ms).toFixed(1)}×)`);
  results.push({ section, label, before, after, ...extra });
  writeJson(); // after every row: a run stopped by a time limit (the GPU check) keeps what it measured
}

function writeJson(): void {
  if (!args.json) return;
  fs.mkdirSync(path.dirname(path.resolve(args.json)), { recursive: true });
  fs.writeFileSync(args.json, JSON.stringify({ date: new Date().toISOString(), gpu: args.gpu, batches: args.batches, results }, null, 1));
}

/** Random gradients shaped like the model's variables (fixed seeds). */
function fakeGrads(vars: tf.Variable[], scale: number): tf.Tensor[] {
  return vars.map((v, i) => tf.randomNormal(v.shape, 0, scale, 'float32', 1000 + i));
}

async function benchAdam(model: DiffusionModel<ModelConfig>, name: string): Promise<void> {
  const vars = model.params.variables();
  const grads = fakeGrads(vars, 0.01);
  const k = Math.max(1, Math.floor(args.reps / 2));
  // before: lib/train/adam.ts without the course kernels (its composite: tf ops per tensor)
  const adam = new Adam(vars);
  const before = await withoutCourseKernels(() => time(() => { adam.apply(grads, 1e-3); return [tf.clone(vars[0])]; }, k));
  adam.dispose();
  // tfjs' own Adam, for the figure gpu.md quotes
  const opt = tf.train.adam(1e-3);
  const named: tf.NamedTensorMap = {};
  vars.forEach((v, i) => { named[v.name] = grads[i]; });
  // (time() disposes what the call returns: a clone shares the variable's data and costs no dispatch)
  const tfjs = await time(() => { opt.applyGradients(named as unknown as Parameters<typeof opt.applyGradients>[0]); return [tf.clone(vars[0])]; }, k);
  opt.dispose();
  // after: one adamUpdate per tensor (the moments kept here as Adam keeps them)
  const m = vars.map((v) => tf.variable(tf.zerosLike(v), false));
  const v2 = vars.map((v) => tf.variable(tf.zerosLike(v), false));
  let step = 0;
  const fused = await time(() => {
    step += 1;
    tf.tidy(() => vars.forEach((theta, i) => {
      const r = adamUpdate(theta, m[i], v2[i], grads[i], { lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, step });
      theta.assign(r.theta);
      m[i].assign(r.m);
      v2[i].assign(r.v);
    }));
    return [tf.clone(vars[0])];
  }, k);
  tf.dispose([...m, ...v2, ...grads]);
  const params = model.paramCount();
  report('adam', `${name}: ${vars.length} tensors, ${params.toLocaleString('en')} params (tf.train.adam: ${tfjs.dispatches} disp.)`, before, fused,
    { tensors: vars.length, params, tfjsAdam: tfjs });
}

async function benchClip(model: DiffusionModel<ModelConfig>, name: string): Promise<void> {
  const vars = model.params.variables();
  const grads = fakeGrads(vars, 0.01);
  // before: clipByGlobalNorm's tensor work (squares, sums, their total, sqrt) and its scaled copies, without the read
  const before = await time(() => {
    const ctrl = gradientControlComposite(grads, 1);
    const scale = tf.slice(ctrl, [1], [1]);
    const out = [ctrl, ...grads.map((g) => tf.mul(g, scale))];
    scale.dispose();
    return out;
  }, args.reps);
  const after = await time(() => [gradientControl(grads, 1)], args.reps);
  tf.dispose(grads);
  report('clip', `${name}: global norm of ${vars.length} gradients`, before, after);
}

interface ConvShape { x: number[]; dy: number[]; filter: number[]; stride: number }

/** The U-Net's Conv2DBackpropFilter calls at batch 1 (one gradient pass, read from tf.profile), distinct shapes. */
async function convShapes(model: DiffusionModel<ModelConfig>): Promise<ConvShape[]> {
  const c = model.config as { imageSize: number; channels: number };
  const info = await tf.profile(() => {
    const x = tf.randomNormal([1, c.imageSize, c.imageSize, c.channels]);
    const t = tf.tensor1d([10], 'int32');
    const g = tf.variableGrads(() => tf.sum(model.apply(x, t)) as tf.Scalar);
    tf.dispose([x, t, g.value, ...Object.values(g.grads)]);
    return [];
  });
  const seen = new Map<string, ConvShape>();
  for (const kern of info.kernels) {
    if (kern.name !== 'Conv2DBackpropFilter') continue;
    const [x, dy] = kern.inputShapes as number[][];
    const s: ConvShape = { x, dy, filter: kern.outputShapes[0] as number[], stride: Math.round(x[1] / dy[1]) };
    seen.set(JSON.stringify(s), s);
  }
  return [...seen.values()];
}

async function benchConv(model: DiffusionModel<ModelConfig>, name: string): Promise<void> {
  const shapes = await convShapes(model);
  for (const batch of args.batches) {
    for (const s of shapes) {
      const xShape = [batch, ...s.x.slice(1)];
      const label = `${name} B=${batch} x[${xShape.slice(1)}] dw[${s.filter}] s${s.stride}`;
      if (args.match && !label.includes(args.match)) continue;
      const dyShape = [batch, ...s.dy.slice(1)];
      const x = tf.randomNormal(xShape, 0, 1, 'float32', 1);
      const dy = tf.randomNormal(dyShape, 0, 1, 'float32', 2);
      const run = () => [tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
        strides: s.stride, pad: 'same', dataFormat: 'NHWC', filterShape: s.filter,
      } as unknown as tf.NamedAttrMap) as tf.Tensor];
      const [before, profBefore, ref] = await withoutCourseKernels(async () => [await time(run, args.reps), await profileKernels(run), run()[0]] as const);
      const after = await time(run, args.reps);
      const profAfter = await profileKernels(run);
      const ours = run()[0];
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(ours, ref))).div(tf.max(tf.abs(ref))));
      const relErr = (await diff.data())[0];
      tf.dispose([x, dy, ref, ours, diff]);
      report('conv', label, { ...before, ...profBefore }, { ...after, ...profAfter }, { relErrVsTfjs: relErr });
      console.log(`      tf.profile: ${profBefore.kernels.join(', ')} (${profBefore.kernelMs.toFixed(2)} kernel ms) → `
        + `${profAfter.kernels.join(', ')} (${profAfter.kernelMs.toFixed(2)} kernel ms); max |ours − tfjs| / max |tfjs| = ${relErr.toExponential(1)}`);
    }
  }
}

async function benchGroupNorm(model: DiffusionModel<ModelConfig>, name: string): Promise<void> {
  const c = model.config as { imageSize: number; widths: number[]; groups: number };
  // every width at every resolution it is normalised at (down/up ResBlocks; the concat widths of the up path too)
  const shapes = new Map<string, [number, number]>();
  c.widths.forEach((w, i) => {
    const res = c.imageSize / 2 ** i;
    for (const ch of [w, 2 * w, w + (c.widths[i - 1] ?? w)]) if (ch % c.groups === 0) shapes.set(`${res}x${ch}`, [res, ch]);
  });
  for (const batch of args.batches) {
    for (const [res, ch] of shapes.values()) {
      if (args.match && !`${name} B=${batch} [${res},${res},${ch}]`.includes(args.match)) continue;
      const x = tf.randomNormal([batch, res, res, ch], 1, 2, 'float32', 3) as tf.Tensor4D;
      const gamma = tf.randomNormal([ch], 1, 0.2, 'float32', 4);
      const beta = tf.randomNormal([ch], 0, 0.2, 'float32', 5);
      const dy = tf.randomNormal([batch, res, res, ch], 0, 1, 'float32', 6);
      type GN = (a: tf.Tensor4D, g: tf.Tensor, b: tf.Tensor) => tf.Tensor4D;
      const fwd = (f: GN) => () => [f(x, gamma, beta)];
      const bwd = (f: GN) => () => tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => f(a as tf.Tensor4D, g, b))([x, gamma, beta], dy);
      const composite: GN = (a, g, b) => groupNormComposite(a, g, b, c.groups, 1e-5, true);
      const fused: GN = (a, g, b) => groupNormOp(a, g, b, c.groups, 1e-5, true);
      report('gn', `${name} B=${batch} [${res},${res},${ch}] forward`, await time(fwd(composite), args.reps), await time(fwd(fused), args.reps));
      report('gn', `${name} B=${batch} [${res},${res},${ch}] fwd+grad`, await time(bwd(composite), args.reps), await time(bwd(fused), args.reps));
      tf.dispose([x, gamma, beta, dy]);
    }
  }
}

/** One training step: loss, gradients of every variable, control (clip norm 1), lib/train's Adam (lr 1e-3) and EMA. */
async function benchStep(model: DiffusionModel<ModelConfig>, name: string): Promise<void> {
  const c = model.config as { imageSize: number; channels: number; numClasses?: number };
  const vars = model.params.variables();
  for (const batch of args.batches) {
    const x = tf.randomNormal([batch, c.imageSize, c.imageSize, c.channels], 0, 1, 'float32', 7);
    const noise = tf.randomNormal(x.shape, 0, 1, 'float32', 8);
    const t = tf.tensor1d(Array.from({ length: batch }, (_, i) => (i * 37) % 1000), 'int32');
    const classes = tf.tensor1d(Array.from({ length: batch }, (_, i) => i % ((c.numClasses ?? 0) + 1)), 'int32');
    const loss = () => tf.mean(tf.square(tf.sub(model.apply(x, t, c.numClasses ? classes : undefined), noise))) as tf.Scalar;
    const gradsOf = () => {
      const { value, grads } = tf.variableGrads(loss, vars);
      return { value, grads: vars.map((v) => grads[v.name]) };
    };
    const k = Math.max(1, Math.floor(args.reps / 2));
    // before: tfjs' kernels; the control and lib/train/adam.ts as composites (what lib does without the course kernels)
    const step = (adam: Adam, ema: Ema) => () => {
      const { value, grads } = gradsOf();
      tf.tidy(() => {
        const control = gradientControl(grads, 1, { loss: value });
        adam.apply(grads, 1e-3, control);
        ema.update(control);
      });
      tf.dispose(grads);
      return [value];
    };
    const adam = new Adam(vars);
    const ema = new Ema(vars, 0.999);
    const before = await withoutCourseKernels(() => time(step(adam, ema), k));
    adam.dispose();
    ema.dispose();
    // after: the course's kernels (conv filter gradient, GroupNorm, the control, one fused Adam dispatch per tensor)
    const adam2 = new Adam(vars);
    const ema2 = new Ema(vars, 0.999);
    const after = await time(step(adam2, ema2), k);
    adam2.dispose();
    ema2.dispose();
    tf.dispose([x, noise, t, classes]);
    report('step', `${name} B=${batch} training step`, before, after);
    const top = (r: { byProgram: Record<string, number> }) => Object.entries(r.byProgram).slice(0, 12).map(([p, n]) => `${p} ${n}`).join(', ');
    console.log(`      dispatches by program, before: ${top(before)}\n      after: ${top(after)}`);
  }
}

async function main(): Promise<void> {
  if (args.gpu) process.env.DIFFUSION_WEBGPU_PROFILE ??= '1'; // timestamp queries: tf.profile reports GPU time
  const started = await loadWebGpu({ forced: !args.gpu });
  console.log(`webgpu: ${started.detail}${started.chosen.cpuReason ? ' — CPU figures' : ''}; batches ${args.batches.join(', ')}`);
  for (const name of args.models) {
    const model = createModel(modelConfig(name));
    // the variables' first use uploads them; afterwards every op on them runs on the device
    if (args.only.has('adam')) await benchAdam(model, name);
    if (args.only.has('clip')) await benchClip(model, name);
    if (args.only.has('conv')) await benchConv(model, name);
    if (args.only.has('gn')) await benchGroupNorm(model, name);
    if (args.only.has('step')) await benchStep(model, name);
    model.dispose();
  }
  writeJson();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
