/**
 * The webgpu checks as data, shared by the mocha tests (webgpu-ops / webgpu-unet .test.ts, on llvmpipe in CI) and by
 * the GPU check that runs on a real GPU (scripts/gpu-check.ts): every op family the course's U-Net uses, forward and
 * gradient, and the course U-Net's forward + every parameter's gradient. Inputs are seeded, built inside each case,
 * so that cpu and webgpu see the same values. Also the helpers that scripts share with the tests (countDispatches,
 * normals). No mocha or chai in here: scripts/gpu-check.ts and scripts/bench-webgpu-kernels.ts bundle it.
 */
import * as tf from '@tensorflow/tfjs';
import { groupNormComposite } from '../../lib/nn/group-norm';
import { UNet, type UNetConfig } from '../../lib/models/unet';
import type { NoiseSchedule } from '../../lib/schedule';
import { applyStepGradients, readSteps, Trainer, type TrainConfig } from '../../lib/train/trainer';

export interface OpCase {
  /** Op family, for the table of worst errors. */
  family: string;
  label: string;
  /** Builds its inputs (seeded) and returns the outputs to compare; runs inside tf.tidy. */
  f: () => tf.Tensor[];
  /** Tolerance |Δ| ≤ atol + rtol·|cpu| (default 1e-4 each). */
  atol?: number;
  rtol?: number;
}

export const rnd = (shape: number[], seed: number): tf.Tensor => tf.randomNormal(shape, 0, 1, 'float32', seed);

/** y = op(xs…) and the gradients of Σ y·r w.r.t. every input (a random r: a wrong index cannot cancel out). */
export function withGrads(inputs: () => tf.Tensor[], op: (...xs: tf.Tensor[]) => tf.Tensor): () => tf.Tensor[] {
  return () => {
    const xs = inputs();
    const y = op(...xs);
    const r = rnd(y.shape, 99);
    const grads = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(op(...a), r)))(xs);
    return [y, ...grads];
  };
}

const conv = (stride: number, pad: 'same' | 'valid') => (x: tf.Tensor, w: tf.Tensor) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, stride, pad);

/** Every op family of the U-Net, in small shapes (llvmpipe is slow). */
export function opCases(): OpCase[] {
  const cases: OpCase[] = [];
  const add = (family: string, label: string, f: () => tf.Tensor[], atol?: number, rtol?: number) => cases.push({ family, label, f, atol, rtol });

  const convs: Array<[string, number[], number[], number, 'same' | 'valid']> = [
    ['3×3 stride 1 same', [2, 8, 8, 4], [3, 3, 4, 6], 1, 'same'],
    ['1×1 (ResBlock skip)', [2, 7, 7, 6], [1, 1, 6, 4], 1, 'same'],
    ['3×3 stride 2 same (even)', [2, 8, 8, 4], [3, 3, 4, 5], 2, 'same'],
    ['3×3 stride 2 same (odd, 7 → 4)', [2, 7, 7, 4], [3, 3, 4, 5], 2, 'same'],
    ['3×3 valid', [1, 6, 6, 3], [3, 3, 3, 2], 1, 'valid'],
  ];
  for (const [label, xs, ws, stride, pad] of convs) {
    add('conv2d (+ dx, dw)', `conv ${label}`, withGrads(() => [rnd(xs, 1), rnd(ws, 2)], conv(stride, pad)));
  }
  for (const [xs, ws, stride] of [[[2, 8, 8, 4], [3, 3, 4, 8], 1], [[2, 14, 14, 8], [3, 3, 8, 8], 2]] as Array<[number[], number[], number]>) {
    add('fused conv2d + bias (+ grads)', `fused conv [${xs}] stride ${stride}`, withGrads(
      () => [rnd(xs, 3), rnd(ws, 4), rnd([ws[3]], 5)],
      (x, w, b) => tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: stride, pad: 'same', bias: b })));
  }
  for (const halfPixelCenters of [false, true]) {
    add('nearest resize ×2 (+ grad)', `resize, half-pixel centres ${halfPixelCenters}`, withGrads(
      () => [rnd([2, 7, 7, 3], 6)], (x) => tf.image.resizeNearestNeighbor(x as tf.Tensor4D, [14, 14], false, halfPixelCenters)));
  }
  add('nearest resize ×2 (+ grad)', 'lib\'s concat + reshape upsampling', withGrads(() => [rnd([2, 7, 7, 3], 6)], (x) => {
    const [b, h, w, c] = x.shape;
    const wide = tf.reshape(tf.concat([x, x], 3), [b, h, 2 * w, c]);
    return tf.reshape(tf.concat([wide, wide], 2), [b, 2 * h, 2 * w, c]);
  }));
  add('matmul (+ grads)', 'batched q·kᵀ', withGrads(() => [rnd([2, 49, 16], 7), rnd([2, 49, 16], 8)], (q, k) => tf.matMul(q, k, false, true)));
  add('matmul (+ grads)', 'batched weights·v', withGrads(() => [rnd([2, 49, 49], 9), rnd([2, 49, 16], 10)], (w, v) => tf.matMul(w, v)));
  add('matmul (+ grads)', 'dense', withGrads(() => [rnd([6, 32], 11), rnd([32, 128], 12)], (x, w) => tf.matMul(x, w)));
  add('softmax (+ grad)', 'softmax over the last axis', withGrads(() => [tf.mul(rnd([2, 49, 49], 13), 3)], (x) => tf.softmax(x)));
  add('moments, GroupNorm (+ grads)', 'moments over (H·W, C/G)', withGrads(() => [rnd([2, 49, 4, 4], 14)], (x) => {
    const { mean, variance } = tf.moments(x, [1, 3], true);
    return tf.add(tf.mul(mean, 2), variance);
  }));
  for (const silu of [false, true]) {
    add('moments, GroupNorm (+ grads)', `lib's GroupNorm composite, silu=${silu}`, withGrads(
      () => [rnd([2, 7, 7, 16], 15), tf.add(rnd([16], 16), 1), rnd([16], 17)],
      (x, g, b) => groupNormComposite(x as tf.Tensor4D, g, b, 4, 1e-5, silu)));
  }
  add('concat (+ grad)', 'skip concat (channels)', withGrads(() => [rnd([2, 7, 7, 8], 18), rnd([2, 7, 7, 16], 19)], (a, b) => tf.concat([a, b], 3)));
  add('concat (+ grad)', 'width concat', withGrads(() => [rnd([2, 7, 7, 8], 18), rnd([2, 7, 7, 8], 19)], (a, b) => tf.concat([a, b], 2)));
  for (const n of [1, 2, 7, 8, 15, 16, 17, 31, 40]) {
    add('concat (+ grad)', `concat of ${n} (split at the storage-buffer limit)`, withGrads(
      () => Array.from({ length: n }, (_, i) => rnd([3, 5], 100 + i)), (...xs) => tf.concat(xs, 1)));
  }
  add('gather (+ grad: UnsortedSegmentSum)', 'gather rows with repeats, and the gradient', () => {
    const table = rnd([11, 16], 20);
    const idx = tf.tensor1d([3, 10, 3, 0, 7, 3], 'int32');
    const r = rnd([6, 16], 21);
    const [g] = tf.grads((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, idx), r)))([table]);
    return [tf.gather(table, idx), g];
  });
  add('gather (+ grad: UnsortedSegmentSum)', 'unsortedSegmentSum', () => [
    tf.unsortedSegmentSum(rnd([8, 5], 22), tf.tensor1d([0, 2, 2, 1, 4, 0, 2, 3], 'int32'), 5),
  ]);
  const freqs = Float32Array.from({ length: 16 }, (_, i) => Math.exp((-Math.log(10000) * i) / 16));
  add('sin, cos (+ grad)', 'sin/cos of the timestep embedding\'s arguments (t up to 999)', withGrads(
    () => [tf.mul(tf.tensor2d([0, 1, 17, 250, 511, 999], [6, 1]), tf.tensor2d(freqs, [1, 16]))],
    (a) => tf.concat([tf.sin(a), tf.cos(a)], 1)), 2e-4, 1e-4);
  add('x·sigmoid(x) (+ grad)', 'SiLU', withGrads(() => [tf.mul(rnd([2, 7, 7, 16], 23), 4)], (x) => tf.mul(x, tf.sigmoid(x))));
  for (let n = 1; n <= 40; n++) {
    add('addN (course kernel, chunked)', `addN of ${n}`, () => [tf.addN(Array.from({ length: n }, (_, i) => rnd([3, 4], 200 + i)))]);
  }
  add('addN (course kernel, chunked)', 'global norm of 30 tensors (as lib/train/adam.ts)', () => [
    tf.sqrt(tf.addN(Array.from({ length: 30 }, (_, i) => tf.sum(tf.square(rnd([5, 3], 300 + i)))))),
  ]);
  return cases;
}

/** One representative case per family, for the runs with other device limits. */
export function oneCasePerFamily(): OpCase[] {
  const seen = new Set<string>();
  return opCases().filter((c) => !seen.has(c.family) && seen.add(c.family) !== undefined);
}

/** max |got − want| and that over max |want| (a norm-wise relative error, fair to values near zero). */
export function errors(got: ArrayLike<number>, want: ArrayLike<number>): { abs: number; rel: number } {
  let abs = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    abs = Number.isNaN(d) ? Infinity : Math.max(abs, d);
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return { abs, rel: scale > 0 ? abs / scale : abs };
}

/** The index of the worst element over atol + rtol·|want| (−1 when all are within), NaN counted as worst. */
export function worstOutside(got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number): number {
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < want.length; i++) {
    const excess = Math.abs(got[i] - want[i]) - (atol + rtol * Math.abs(want[i]));
    if (!(excess <= worstExcess)) { worst = i; worstExcess = excess; }
  }
  return worst;
}

/** Run `f` in tf.tidy on `backend`, read every output with `await data()`, dispose them. */
export async function valuesOn(backend: string, f: () => tf.Tensor[]): Promise<{ values: Float32Array[]; shapes: number[][] }> {
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} did not start`);
  const outs = tf.tidy(f);
  try {
    const values = (await Promise.all(outs.map((t) => t.data()))).map((v) => Float32Array.from(v));
    return { values, shapes: outs.map((t) => t.shape) };
  } finally {
    tf.dispose(outs);
  }
}

export interface UNetRun { names: string[]; params: Float32Array[]; out: Float32Array; loss: number; grads: Float32Array[] }

/**
 * The U-Net built on the active backend (seeded: the same weights everywhere), its output on fixed inputs and the
 * gradient of an MSE to a fixed target w.r.t. every parameter. Leaves no tensor behind.
 */
export async function unetForwardAndGrads(config: UNetConfig, batch: number): Promise<UNetRun> {
  const model = new UNet(config);
  const size = config.imageSize;
  const x = rnd([batch, size, size, config.channels], 11);
  const target = rnd([batch, size, size, config.channels], 12);
  const t = tf.tensor1d(Array.from({ length: batch }, (_, i) => (17 + 883 * i) % 1000), 'int32');
  const classes = config.numClasses ? tf.tensor1d(Array.from({ length: batch }, (_, i) => (i % 2 ? config.numClasses! : 3 + i)), 'int32') : undefined;
  const toFree: tf.Tensor[] = [x, target, t];
  if (classes) toFree.push(classes);
  try {
    const vars = [...model.params.entries()];
    const names = vars.map(([k]) => k);
    const params = await Promise.all(vars.map(([, v]) => v.data() as Promise<Float32Array>));
    const out = tf.tidy(() => model.apply(x, t, classes));
    toFree.push(out);
    const { value, grads } = tf.variableGrads(
      () => tf.mean(tf.square(tf.sub(model.apply(x, t, classes), target))) as tf.Scalar, vars.map(([, v]) => v));
    toFree.push(value, ...Object.values(grads));
    return {
      names, params,
      out: (await out.data()) as Float32Array,
      loss: (await value.data())[0],
      grads: await Promise.all(vars.map(([, v]) => grads[v.name].data() as Promise<Float32Array>)),
    };
  } finally {
    tf.dispose(toFree);
    model.dispose();
  }
}

export interface UNetComparison {
  params: number;
  forward: { abs: number; rel: number };
  lossRel: number;
  worstGrad: { name: string; abs: number; rel: number };
  /** Parameters whose initial values differ, and gradients over `tol` (both must be empty). */
  differentInit: string[];
  overTolerance: string[];
  allGradsZero: boolean;
}

export function compareUNetRuns(got: UNetRun, want: UNetRun, tol = 1e-4): UNetComparison {
  const differentInit = got.names.filter((n, i) => n !== want.names[i] || errors(got.params[i], want.params[i]).abs !== 0);
  let worstGrad = { name: '', abs: 0, rel: 0 };
  const overTolerance: string[] = [];
  got.grads.forEach((g, i) => {
    const e = errors(g, want.grads[i]);
    if (e.rel > worstGrad.rel) worstGrad = { name: got.names[i], ...e };
    if (!(e.rel <= tol)) overTolerance.push(`${got.names[i]}: ${e.rel.toExponential(2)}`);
  });
  return {
    params: want.params.reduce((s, p) => s + p.length, 0),
    forward: errors(got.out, want.out),
    lossRel: Math.abs(got.loss - want.loss) / Math.abs(want.loss),
    worstGrad, differentInit, overTolerance,
    allGradsZero: !want.grads.some((g) => g.some((v) => v !== 0)),
  };
}

/** Seeded standard normals as a plain array (the same values on every backend): a small LCG + Box–Muller. */
export function normals(n: number, seed: number, scale = 1, shift = 0): Float32Array {
  let s = (seed * 2654435761 + 12345) >>> 0;
  const next = () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return (s + 0.5) / 4294967296; };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = Math.sqrt(-2 * Math.log(next()));
    out[i] = shift + scale * r * Math.cos(2 * Math.PI * next());
  }
  return out;
}

/**
 * The number of compute dispatches `f` records on webgpu (every kernel's, tfjs' and ours: counted at Dawn's compute
 * pass encoder), and how many per pipeline label (tfjs labels a pipeline with its program's class name, ours with the
 * kernel's name). Needs the webgpu backend started (Dawn's GPUComputePassEncoder is then a global).
 */
export function countDispatches<T>(f: () => T): { result: T; dispatches: number; byProgram: Map<string, number> } {
  const encoder = (globalThis as unknown as { GPUComputePassEncoder?: { prototype: { dispatchWorkgroups: Function; setPipeline: Function } } })
    .GPUComputePassEncoder;
  if (!encoder) throw new Error('countDispatches: no GPUComputePassEncoder global (start the webgpu backend first)');
  const proto = encoder.prototype;
  const { dispatchWorkgroups, setPipeline } = proto;
  let dispatches = 0;
  let current = '?';
  const byProgram = new Map<string, number>();
  proto.setPipeline = function (this: unknown, p: { label?: string }) {
    current = p?.label || '?';
    return setPipeline.call(this, p);
  };
  proto.dispatchWorkgroups = function (this: unknown, ...args: unknown[]) {
    dispatches++;
    byProgram.set(current, (byProgram.get(current) ?? 0) + 1);
    return dispatchWorkgroups.apply(this, args);
  };
  try {
    return { result: f(), dispatches, byProgram };
  } finally {
    proto.dispatchWorkgroups = dispatchWorkgroups;
    proto.setPipeline = setPipeline;
  }
}

/** countDispatches, plus the GPU buffer reads (mapAsync) that `f` starts. */
export function countWork<T>(f: () => T): { result: T; dispatches: number; byProgram: Map<string, number>; reads: number } {
  const buffer = (globalThis as unknown as { GPUBuffer: { prototype: { mapAsync: Function } } }).GPUBuffer.prototype;
  const { mapAsync } = buffer;
  let reads = 0;
  buffer.mapAsync = function (this: unknown, ...args: unknown[]) { reads++; return mapAsync.apply(this, args); };
  try {
    return { ...countDispatches(f), reads };
  } finally {
    buffer.mapAsync = mapAsync;
  }
}

export interface TrainerStepRun {
  loss: number; gradNorm: number; names: string[]; before: Float32Array[]; after: Float32Array[]; m: Float32Array[];
  v: Float32Array[]; ema: Float32Array[];
  /** Tensors left behind by the step (must be 0). */
  leaked: number;
  /** webgpu: what the whole step (Trainer.queueStep) and its tail alone (applyStepGradients) dispatch and read. */
  work?: ReturnType<typeof countWork>;
  tail?: ReturnType<typeof countWork>;
}

/**
 * One Trainer step (lib/train: inputs, loss, gradients, control, Adam, EMA) of `config`'s U-Net on the active backend,
 * from its seeded weights and a seeded batch of `batch` images (labels 3, 7, 3, 7 …), read back.
 */
export async function trainerStep(model: UNetConfig, schedule: NoiseSchedule, config: TrainConfig, batch: number): Promise<TrainerStepRun> {
  const trainer = new Trainer(new UNet(model), schedule, config);
  const tensors = tf.memory().numTensors;
  const gpu = tf.getBackend() === 'webgpu';
  try {
    const names = trainer.model.params.names();
    const before = [...(await trainer.model.params.snapshot()).values()];
    const size = model.imageSize * model.imageSize * model.channels;
    const x = tf.tensor4d(normals(batch * size, 5, 0.5), [batch, model.imageSize, model.imageSize, model.channels]);
    const y = tf.tensor1d(Array.from({ length: batch }, (_, i) => (i % 2 ? 7 : 3)), 'int32');
    let work: TrainerStepRun['work'];
    if (gpu) work = countWork(() => trainer.queueStep({ x, y }));
    else trainer.queueStep({ x, y });
    const [r] = await readSteps(trainer);
    const after = [...(await trainer.model.params.snapshot()).values()];
    const { m, v } = await trainer.optimizer.getState();
    const ema = await trainer.ema.values();
    const leaked = tf.memory().numTensors - tensors;
    let tail: TrainerStepRun['tail'];
    if (gpu) {
      // the tail alone (what applyStepGradients adds to the gradients), on a second step with made-up gradients
      const grads = trainer.model.params.variables().map((p, i) => tf.randomNormal(p.shape, 0, 0.01, 'float32', 900 + i));
      tail = countWork(() => applyStepGradients(trainer, grads, tf.scalar(0.5)));
      await readSteps(trainer);
    }
    return { loss: r.loss, gradNorm: r.gradNorm, names, before, after, m, v, ema, leaked, work, tail };
  } finally {
    trainer.dispose();
    trainer.model.dispose();
  }
}

export interface TrainerStepComparison {
  sameInit: boolean;
  lossRel: number;
  gradNormRel: number;
  /** Worst tensor of Adam's moments (linear / quadratic in the gradient): max |Δ| / max |reference|. */
  m: { name: string; rel: number };
  v: { name: string; rel: number };
  /** Weights and EMA after the step, ‖Δ‖ / ‖reference‖ over the model, and the worst tensor (informative: see below). */
  weights: number;
  worstWeights: { name: string; rel: number; abs: number };
  ema: number;
  /** Cosine between the two updates (after − before) over the model. */
  updateCosine: number;
  updateNorm: number;
}

/**
 * got vs want. The weights after Adam's FIRST step moved by ≈ lr·g/(|g| + ε): a gradient that is float noise (e.g. the
 * attention's key bias, to which softmax is invariant) moves its weight by an arbitrary fraction of lr on each backend,
 * so a zero-initialised tensor can differ by ~1e-2 of its own size; hence the weights are compared over the model.
 */
export function compareTrainerSteps(got: TrainerStepRun, want: TrainerStepRun): TrainerStepComparison {
  const worst = (a: Float32Array[], b: Float32Array[]) => a.map((x, i) => ({ name: want.names[i], ...errors(x, b[i]) }))
    .sort((p, q) => q.rel - p.rel)[0];
  const normwise = (a: Float32Array[], b: Float32Array[]) => {
    let d = 0, r = 0;
    a.forEach((x, i) => x.forEach((y, j) => { d += (y - b[i][j]) ** 2; r += b[i][j] ** 2; }));
    return Math.sqrt(d / r);
  };
  let dot = 0, nGot = 0, nWant = 0;
  got.after.forEach((a, i) => a.forEach((x, j) => {
    const u = x - got.before[i][j];
    const w = want.after[i][j] - want.before[i][j];
    dot += u * w; nGot += u * u; nWant += w * w;
  }));
  const m = worst(got.m, want.m);
  const v = worst(got.v, want.v);
  return {
    sameInit: got.before.every((w, i) => errors(w, want.before[i]).abs === 0),
    lossRel: Math.abs(got.loss - want.loss) / Math.abs(want.loss),
    gradNormRel: Math.abs(got.gradNorm - want.gradNorm) / Math.abs(want.gradNorm),
    m: { name: m.name, rel: m.rel }, v: { name: v.name, rel: v.rel },
    weights: normwise(got.after, want.after), worstWeights: worst(got.after, want.after), ema: normwise(got.ema, want.ema),
    updateCosine: dot / Math.sqrt(nGot * nWant), updateNorm: Math.sqrt(nWant),
  };
}

/** Whether a comparison passes: everything within 1e-4, the update's direction within cosine 0.999. */
export function trainerStepsAgree(c: TrainerStepComparison, tol = 1e-4): boolean {
  return c.sameInit && c.lossRel <= tol && c.gradNormRel <= tol && c.m.rel <= tol && c.v.rel <= tol && c.weights <= tol
    && c.ema <= tol && c.updateCosine > 0.999;
}
