/**
 * The Adam update of one parameter tensor (Kingma & Ba 2015; decoupled weight decay as AdamW, Loshchilov & Hutter 2019):
 *   g ← s·g   (s: the gradient-clipping scale),
 *   m′ = β1·m + (1−β1)·g,   v′ = β2·v + (1−β2)·g²,
 *   θ′ = θ − lr·( (m′/c1) / (√(v′/c2) + ε) + λ·θ ),   c1 = 1−β1ⁿ, c2 = 1−β2ⁿ (n = the update's number, from 1),
 * and, when the `control` tensor says the gradients were not finite, θ′ = θ, m′ = m, v′ = v (the step is skipped
 * without the host reading anything).
 *
 * adamUpdateComposite is the formula in tfjs ops (any backend): THE formula, which lib/train/adam.ts's Adam applies
 * through adamApply; on webgpu the kernel 'CourseAdamUpdate' computes the same in ONE dispatch per parameter tensor
 * (tfjs' Adam: ~13), in the same order of operations. adamUpdate / adamApply pick the kernel when the backend has it.
 *
 * gradientControl(grads, maxNorm) gives the [norm, scale, ok] tensor that adamUpdate takes: the global L2 norm, the
 * clipping scale min(1, maxNorm/norm), and 1 if the norm is finite else 0 — computed on the device, read by nobody
 * until the caller wants the norm. On webgpu: ⌈N/7⌉ + 1 dispatches for N gradients (the composite: ~2N + 6). The
 * trainer also folds into `ok` the loss's finiteness and the previous step's `ok` (its sticky "every step so far was
 * finite" flag), so that the step needs no other op to decide whether to change anything.
 *
 * adamApply updates a whole model: on webgpu one dispatch per tensor; elsewhere the composite, with the control
 * prepared ONCE for all tensors (ControlMasks: one Select per tensor for the gradient, scalar coefficients for the rest).
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../../../errors';
import { flagLike, keep } from '../../../finite';
import { asWebGPU, bindingsWGSL, runMultiOutput, spreadWorkgroups, type UniformData, type WebGPUProgram } from './program';

export const ADAM_UPDATE_KERNEL = 'CourseAdamUpdate';
export const GRAD_CONTROL_KERNEL = 'CourseGradControl';

export interface AdamHyper {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** The number of this update, from 1 (bias corrections 1−βⁿ). */
  step: number;
  /** Decoupled weight decay λ (AdamW); 0 or absent: plain Adam. */
  weightDecay?: number;
}

export interface AdamUpdateResult { theta: tf.Tensor; m: tf.Tensor; v: tf.Tensor }

/** The kernel's attributes: every number the update uses, (1−β) and the corrections computed once here in float64. */
export interface AdamAttrs {
  lr: number; beta1: number; oneMinusBeta1: number; beta2: number; oneMinusBeta2: number;
  epsilon: number; c1: number; c2: number; weightDecay: number;
}

export function adamAttrs(h: AdamHyper): AdamAttrs {
  const { lr, beta1, beta2, epsilon, step } = h;
  const weightDecay = h.weightDecay ?? 0;
  if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) || !(epsilon > 0)) {
    throw new InvalidArgumentError(`adamUpdate: need 0 ≤ beta1, beta2 < 1 and epsilon > 0, got ${JSON.stringify(h)}`);
  }
  if (!Number.isInteger(step) || step < 1) throw new InvalidArgumentError(`adamUpdate: step must be an integer ≥ 1, got ${step}`);
  if (!Number.isFinite(lr) || !(weightDecay >= 0)) {
    throw new InvalidArgumentError(`adamUpdate: lr must be finite and weightDecay ≥ 0, got lr ${lr}, weightDecay ${weightDecay}`);
  }
  return {
    lr, beta1, oneMinusBeta1: 1 - beta1, beta2, oneMinusBeta2: 1 - beta2, epsilon,
    c1: 1 - beta1 ** step, c2: 1 - beta2 ** step, weightDecay,
  };
}

function checkShapes(theta: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, control?: tf.Tensor): void {
  for (const [name, t] of [['m', m], ['v', v], ['g', g]] as const) {
    if (!tf.util.arraysEqual(t.shape, theta.shape)) {
      throw new ShapeMismatchError(`adamUpdate: ${name} has shape ${JSON.stringify(t.shape)}, theta ${JSON.stringify(theta.shape)}`);
    }
  }
  if ([theta, m, v, g].some((t) => t.dtype !== 'float32')) throw new InvalidArgumentError('adamUpdate: theta, m, v, g must be float32');
  if (control && (control.size !== 3 || control.dtype !== 'float32')) {
    throw new ShapeMismatchError(`adamUpdate: control must be float32 [norm, scale, ok] (3 values), got ${control.dtype} ${JSON.stringify(control.shape)}`);
  }
}

/**
 * A control tensor ([norm, scale, ok]) prepared for the composite path, once for every tensor of a step. When ok is 0
 * an update must change nothing, even with NaN gradients; arithmetic cannot mask a NaN (NaN·0 is NaN), so:
 *   - the gradient goes through ONE Select per tensor (→ 0 where not ok; the Select kernel directly, with a full-shape
 *     condition per distinct shape: tf.where would broadcast a one-element condition with Tile, ~10× the Select on wasm),
 *     then is scaled by the clip scale;
 *   - the update's coefficients become scalar tensors that turn it into the identity when not ok: β → 1, (1−β) → 0,
 *     lr → 0 (θ − 0·update with a finite update), EMA d → 1, (1−d) → 0 — so θ, m, v and the EMA stay as they were (a
 *     −0 may come back as +0). When ok is 1 they equal the numbers the formula uses, so the result is bit for bit the
 *     unmasked formula's.
 * On wasm that is ~3 ms per course-U-Net step over the unmasked update, against ~13 ms for a Select on θ, m, v and the
 * EMA (docs/benchmarks.md). Nothing is computed until the composite asks (the fused webgpu kernels read the control
 * tensor directly and use select), and what is computed is kept until dispose(): pass one ControlMasks to adamApply and
 * emaApply so that they share it.
 */
export class ControlMasks {
  private scaleT?: tf.Tensor;
  private okT?: tf.Tensor;
  private readonly cache = new Map<string, tf.Tensor>();

  constructor(readonly control: tf.Tensor) {
    if (control.size !== 3 || control.dtype !== 'float32') {
      throw new ShapeMismatchError(`control must be float32 [norm, scale, ok] (3 values), got ${control.dtype} ${JSON.stringify(control.shape)}`);
    }
  }

  private get ok(): tf.Tensor {
    this.okT ??= tf.keep(tf.tidy(() => tf.greater(tf.reshape(tf.slice(tf.reshape(this.control, [3]), [2], [1]), []), 0.5)));
    return this.okT;
  }

  private cached(key: string, make: () => tf.Tensor): tf.Tensor {
    let t = this.cache.get(key);
    if (!t) this.cache.set(key, (t = tf.keep(tf.tidy(make))));
    return t;
  }

  /** The clip scale, a scalar (not a one-element tensor, so that a scalar weight keeps its shape). */
  get scale(): tf.Tensor {
    this.scaleT ??= tf.keep(tf.tidy(() => tf.reshape(tf.slice(tf.reshape(this.control, [3]), [1], [1]), [])));
    return this.scaleT;
  }

  /** g·scale where ok, 0 everywhere when not (finite whatever g holds). */
  clippedGradient(g: tf.Tensor): tf.Tensor {
    const key = g.shape.join(',');
    const cond = this.cached(`cond ${key}`, () => flagLike(this.ok, g));
    const zeros = this.cached(`zeros ${key}`, () => tf.zerosLike(g));
    return tf.mul(keep(cond, g, zeros), this.scale);
  }

  /** A scalar float32 tensor: `ifOk` when ok, else `ifNot`. */
  factor(ifOk: number, ifNot: number): tf.Tensor {
    return this.cached(`factor ${ifOk} ${ifNot}`, () => tf.where(this.ok, tf.scalar(ifOk, 'float32'), tf.scalar(ifNot, 'float32')));
  }

  /** Releases what was prepared (not the control tensor). */
  dispose(): void {
    tf.dispose([this.scaleT, this.okT, ...this.cache.values()].filter((t): t is tf.Tensor => t !== undefined));
    this.scaleT = this.okT = undefined;
    this.cache.clear();
  }
}

/** A control tensor, or one prepared for several updates (the caller disposes it). */
export type Control = tf.Tensor | ControlMasks;

/** `f` with the control prepared: the given ControlMasks, or one made (and disposed) here for a bare tensor. */
export function withMasks<T>(control: Control | undefined, f: (masks: ControlMasks | undefined) => T): T {
  // (two separate tests: tslab compiles lib without strictNullChecks, where `x === undefined ||` narrows nothing)
  if (control === undefined) return f(undefined);
  if (control instanceof ControlMasks) return f(control);
  const masks = new ControlMasks(control);
  try {
    return f(masks);
  } finally {
    masks.dispose();
  }
}

/**
 * The formula, in tfjs ops: what the kernel computes too (same order of operations, so that both round alike). With
 * `masks`, the gradient is clipped and the coefficients masked as ControlMasks describes.
 */
function adamComposite(
  theta: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, a: AdamAttrs, masks?: ControlMasks,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const gs = masks ? masks.clippedGradient(g) : g;
  const k = (value: number, ifNot: number) => (masks ? masks.factor(value, ifNot) : value);
  const mNew = tf.add(tf.mul(m, k(a.beta1, 1)), tf.mul(gs, k(a.oneMinusBeta1, 0)));
  const vNew = tf.add(tf.mul(v, k(a.beta2, 1)), tf.mul(tf.square(gs), k(a.oneMinusBeta2, 0)));
  let update = tf.div(tf.div(mNew, a.c1), tf.add(tf.sqrt(tf.div(vNew, a.c2)), a.epsilon));
  if (a.weightDecay !== 0) update = tf.add(update, tf.mul(theta, a.weightDecay));
  return [tf.sub(theta, tf.mul(update, k(a.lr, 0))), mNew, vNew];
}

/** The formula in tfjs ops (every backend): the reference the kernel is tested against. */
export function adamUpdateComposite(
  theta: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, hyper: AdamHyper, control?: tf.Tensor,
): AdamUpdateResult {
  checkShapes(theta, m, v, g, control);
  const a = adamAttrs(hyper);
  const [theta2, m2, v2] = withMasks(control, (masks) => tf.tidy(() => adamComposite(theta, m, v, g, a, masks)));
  return { theta: theta2, m: m2, v: v2 };
}

/** True when the active backend has the one-dispatch kernel (webgpu with the course kernels registered). */
export function fusedAdamAvailable(): boolean {
  return tf.getKernel(ADAM_UPDATE_KERNEL, tf.getBackend()) !== undefined;
}

/**
 * θ′, m′, v′ for one parameter tensor (new tensors; the caller assigns them to its variables and disposes the old).
 * `control` ([norm, scale, ok], from gradientControl) scales g and skips the update when ok is 0.
 */
export function adamUpdate(
  theta: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, hyper: AdamHyper, control?: tf.Tensor,
): AdamUpdateResult {
  if (!fusedAdamAvailable()) return adamUpdateComposite(theta, m, v, g, hyper, control);
  checkShapes(theta, m, v, g, control);
  const [t2, m2, v2] = runAdamKernel(theta, m, v, g, adamAttrs(hyper), control);
  return { theta: t2, m: m2, v: v2 };
}

function runAdamKernel(theta: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, attrs: AdamAttrs, control?: tf.Tensor): tf.Tensor[] {
  const inputs: tf.NamedTensorMap = control ? { theta, m, v, g, control } : { theta, m, v, g };
  return tf.engine().runKernel(ADAM_UPDATE_KERNEL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
}

/**
 * One Adam step over a model: θ′, m′, v′ for every variable, assigned to `variables`, `m`, `v` (the old values are
 * released; nothing else stays allocated). On webgpu one dispatch per variable; elsewhere the composite with the
 * control prepared once (pass a ControlMasks to share it with emaApply).
 */
export function adamApply(
  variables: tf.Variable[], m: tf.Variable[], v: tf.Variable[], grads: tf.Tensor[], hyper: AdamHyper, control?: Control,
): void {
  if (m.length !== variables.length || v.length !== variables.length || grads.length !== variables.length) {
    throw new ShapeMismatchError(`adamApply: ${variables.length} variables, ${m.length} m, ${v.length} v, ${grads.length} gradients`);
  }
  const c = control instanceof ControlMasks ? control.control : control;
  variables.forEach((theta, i) => checkShapes(theta, m[i], v[i], grads[i], c));
  const fused = fusedAdamAvailable();
  const a = adamAttrs(hyper);
  withMasks(control, (masks) => tf.tidy(() => {
    variables.forEach((theta, i) => {
      const [t2, m2, v2] = fused ? runAdamKernel(theta, m[i], v[i], grads[i], a, c) : adamComposite(theta, m[i], v[i], grads[i], a, masks);
      theta.assign(t2);
      m[i].assign(m2);
      v[i].assign(v2);
    });
  }));
}

/** The numbers of a gradientControl tensor, read asynchronously (one 12-byte read). */
export async function readControl(control: tf.Tensor): Promise<{ norm: number; scale: number; ok: boolean }> {
  const [norm, scale, ok] = await control.data();
  return { norm, scale, ok: ok > 0.5 };
}

/* ---------- WGSL ---------- */

const WG = 256;

function adamWGSL(withControl: boolean): string {
  const inputs = ['theta', 'm', 'v', 'g', ...(withControl ? ['control'] : [])];
  return `
${bindingsWGSL(['thetaOut', 'mOut', 'vOut'], inputs,
    'lr : f32, beta1 : f32, omb1 : f32, beta2 : f32, omb2 : f32, eps : f32, c1 : f32, c2 : f32, wd : f32, size : i32, rowStride : i32')}

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid : vec3<u32>) {
  let i = i32(gid.x) + i32(gid.y) * u.rowStride;
  if (i >= u.size) { return; }
  ${withControl ? 'let gi = g[i] * control[1];' : 'let gi = g[i];'}
  let th = theta[i];
  // adamComposite's order of operations, so that both round alike
  let mNew = m[i] * u.beta1 + gi * u.omb1;
  let vNew = v[i] * u.beta2 + (gi * gi) * u.omb2;
  let update = (mNew / u.c1) / (sqrt(vNew / u.c2) + u.eps) + th * u.wd;
  let thNew = th - update * u.lr;
  ${withControl ? `
  // select, not arithmetic: a NaN gradient must leave θ, m, v exactly as they were
  let ok = control[2] > 0.5;
  thetaOut[i] = select(th, thNew, ok);
  mOut[i] = select(m[i], mNew, ok);
  vOut[i] = select(v[i], vNew, ok);` : `
  thetaOut[i] = thNew;
  mOut[i] = mNew;
  vOut[i] = vNew;`}
}`;
}

const adamKernelFunc: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const be = asWebGPU(backend);
  const { theta, m, v, g, control } = inputs as Record<string, tf.TensorInfo | undefined> as
    { theta: tf.TensorInfo; m: tf.TensorInfo; v: tf.TensorInfo; g: tf.TensorInfo; control?: tf.TensorInfo };
  const a = attrs as unknown as AdamAttrs;
  const size = tf.util.sizeFromShape(theta.shape);
  if (size === 0) return [theta, m, v].map((t) => be.makeTensorInfo(t.shape, 'float32', new Float32Array(0)));
  const workgroups = spreadWorkgroups(Math.ceil(size / WG), be.device);
  const withControl = control !== undefined;
  const prog = { key: `courseAdam_${withControl}`, name: 'CourseAdamUpdate', code: adamWGSL(withControl), workgroups };
  const f = (x: number) => ({ type: 'float32' as const, data: [x] });
  const uniforms = [
    f(a.lr), f(a.beta1), f(a.oneMinusBeta1), f(a.beta2), f(a.oneMinusBeta2), f(a.epsilon), f(a.c1), f(a.c2), f(a.weightDecay),
    { type: 'int32' as const, data: [size] }, { type: 'int32' as const, data: [workgroups[0] * WG] },
  ];
  const ins = [theta, m, v, g, ...(control ? [control] : [])];
  return runMultiOutput(be, prog, ins, [theta.shape, theta.shape, theta.shape], uniforms);
};

export const adamUpdateConfig: tf.KernelConfig = { kernelName: ADAM_UPDATE_KERNEL, backendName: 'webgpu', kernelFunc: adamKernelFunc };

/* ---------- gradient control: [norm, scale, ok] ---------- */

/** What else `ok` depends on besides the gradients' norm (the trainer's use; both optional). */
export interface ControlInputs {
  /** An earlier control tensor: ok stays 0 once it was 0 (the trainer's sticky "every step so far was finite"). */
  previous?: tf.Tensor;
  /** A scalar that must be finite too (the step's loss). */
  loss?: tf.Tensor;
}

/**
 * Global L2 norm √(Σ over all tensors of Σ g²), as a scalar tensor (not read back). The per-tensor sums are stacked and
 * summed (tfjs' own AddN fails on webgpu beyond a handful of inputs; concat, behind stack, splits long input lists).
 */
export function globalNorm(grads: tf.Tensor[]): tf.Scalar {
  return tf.tidy(() => tf.sqrt(tf.sum(tf.stack(grads.map((g) => tf.sum(tf.square(g)))))) as tf.Scalar);
}

/** The composite (any backend). */
export function gradientControlComposite(grads: tf.Tensor[], maxNorm: number, extra: ControlInputs = {}): tf.Tensor1D {
  checkControlInputs(maxNorm, grads, extra);
  return tf.tidy(() => {
    const norm = globalNorm(grads);
    const normOk = tf.isFinite(norm);
    let ok = normOk;
    if (extra.loss) ok = tf.logicalAnd(ok, tf.isFinite(tf.reshape(extra.loss, [])));
    if (extra.previous) ok = tf.logicalAnd(ok, tf.greater(tf.reshape(tf.slice(tf.reshape(extra.previous, [3]), [2], [1]), []), 0.5));
    const scale = tf.where(tf.logicalAnd(normOk, tf.greater(norm, maxNorm)), tf.div(maxNorm, norm), tf.scalar(1));
    return tf.stack([norm, scale, tf.cast(ok, 'float32')]) as tf.Tensor1D;
  });
}

function checkControlInputs(maxNorm: number, grads: tf.Tensor[], extra: ControlInputs): void {
  if (!(maxNorm > 0)) throw new InvalidArgumentError(`gradientControl: maxNorm must be > 0, got ${maxNorm}`);
  if (grads.length === 0) throw new InvalidArgumentError('gradientControl: no gradients');
  if (grads.some((g) => g.dtype !== 'float32')) throw new InvalidArgumentError('gradientControl: gradients must be float32');
  if (extra.previous && (extra.previous.size !== 3 || extra.previous.dtype !== 'float32')) {
    throw new ShapeMismatchError(`gradientControl: previous must be a float32 control tensor (3 values), got ${extra.previous.dtype} ${JSON.stringify(extra.previous.shape)}`);
  }
  if (extra.loss && (extra.loss.size !== 1 || extra.loss.dtype !== 'float32')) {
    throw new ShapeMismatchError(`gradientControl: loss must be a float32 scalar, got ${extra.loss.dtype} ${JSON.stringify(extra.loss.shape)}`);
  }
}

/**
 * [norm, scale, ok] of a list of gradients: the global L2 norm, min(1, maxNorm/norm) (1 when maxNorm is Infinity or
 * the norm is not finite), ok = 1 if the norm is finite (and `extra.loss` is, and `extra.previous` said ok) else 0.
 * The tensor stays on the device; pass it to adamUpdate / adamApply (and lib/train's EMA).
 */
export function gradientControl(grads: tf.Tensor[], maxNorm: number, extra: ControlInputs = {}): tf.Tensor1D {
  checkControlInputs(maxNorm, grads, extra);
  if (tf.getKernel(GRAD_CONTROL_KERNEL, tf.getBackend()) === undefined) return gradientControlComposite(grads, maxNorm, extra);
  const inputs: tf.NamedTensorMap = {};
  grads.forEach((g, i) => { inputs[`g${i}`] = g; });
  if (extra.previous) inputs.previous = extra.previous;
  if (extra.loss) inputs.loss = extra.loss;
  return tf.engine().runKernel(GRAD_CONTROL_KERNEL, inputs, { maxNorm } as unknown as tf.NamedAttrMap) as tf.Tensor1D;
}

/** Inputs per sum-of-squares dispatch: 8 storage buffers per stage (WebGPU's default) − 1 for the output. */
export const SUMSQ_INPUTS_PER_DISPATCH = 7;

/**
 * Writes Σg² of each of its inputs into slots offset…offset+k−1 of the output it is given (a [N] partials buffer
 * shared by every dispatch of one gradientControl call): workgroup w reduces input w.
 */
class SumSquaresProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey: string;
  variableNames: string[];
  dispatchLayout = { x: [0], y: [] as number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WG, 1, 1];
  uniforms: string;

  constructor(n: number, k: number) {
    this.outputShape = [n];
    this.variableNames = Array.from({ length: k }, (_, i) => `g${i}`);
    // sizes as uniforms, not arrayLength(): a binding's length is its buffer's, which need not be the tensor's
    this.uniforms = `offset : i32, ${this.variableNames.map((_, i) => `n${i} : i32,`).join(' ')}`;
    this.dispatch = [k, 1, 1];
    this.shaderKey = `courseSumSquares_${k}`;
  }

  getUserCode(): string {
    const branches = this.variableNames.map((name, i) => `
      ${i === 0 ? '' : 'else '}if (w == ${i}) {
        for (var j = i32(localIndex); j < uniforms.n${i}; j = j + ${WG}) { let x = ${name}[j]; acc = acc + x * x; }
      }`).join('');
    return `
    var<workgroup> partial : array<f32, ${WG}>;
    fn main(index : i32) {
      let w = i32(workgroupId.x);
      var acc = 0.0;
      ${branches}
      partial[localIndex] = acc;
      workgroupBarrier();
      for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
        if (localIndex < s) { partial[localIndex] = partial[localIndex] + partial[localIndex + s]; }
        workgroupBarrier();
      }
      if (localIndex == 0u) { result[uniforms.offset + w] = partial[0]; }
    }`;
  }
}

/** [N] partial sums of squares (and the optional previous control, loss) → [norm, scale, ok], in a fixed order (deterministic). */
class ControlFromPartialsProgram implements WebGPUProgram {
  outputShape = [3];
  shaderKey: string;
  variableNames: string[];
  dispatchLayout = { x: [0], y: [] as number[] };
  dispatch: [number, number, number] = [1, 1, 1];
  workgroupSize: [number, number, number] = [1, 1, 1];
  uniforms = 'n : i32, maxNorm : f32,';

  constructor(private readonly withPrevious: boolean, private readonly withLoss: boolean) {
    this.variableNames = ['partials', ...(withPrevious ? ['previous'] : []), ...(withLoss ? ['loss'] : [])];
    this.shaderKey = `courseGradControlFinish_${withPrevious}_${withLoss}`;
  }

  getUserCode(): string {
    return `
    fn main(index : i32) {
      var sq = 0.0;
      for (var i = 0; i < uniforms.n; i = i + 1) { sq = sq + partials[i]; }
      let norm = sqrt(sq);
      // finite: neither NaN nor ±Inf (tfjs' isnan/isinf helpers; sq ≥ 0, so norm is never negative)
      let normOk = !isnan(norm) && !isinf(norm);
      var ok = normOk;
      ${this.withLoss ? 'ok = ok && !isnan(loss[0]) && !isinf(loss[0]);' : ''}
      ${this.withPrevious ? 'ok = ok && previous[2] > 0.5;' : ''}
      var scale = 1.0;
      if (normOk && norm > uniforms.maxNorm) { scale = uniforms.maxNorm / norm; }
      result[0] = norm;
      result[1] = scale;
      result[2] = select(0.0, 1.0, ok);
    }`;
  }
}

const gradControlKernelFunc: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const be = asWebGPU(backend);
  const grads = Object.keys(inputs).filter((k) => /^g\d+$/.test(k)).sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)))
    .map((k) => inputs[k] as tf.TensorInfo);
  const previous = inputs.previous as tf.TensorInfo | undefined;
  const loss = inputs.loss as tf.TensorInfo | undefined;
  const { maxNorm } = attrs as unknown as { maxNorm: number };
  const n = grads.length;
  const partials = be.makeTensorInfo([n], 'float32');
  for (let start = 0; start < n; start += SUMSQ_INPUTS_PER_DISPATCH) {
    const chunk = grads.slice(start, start + SUMSQ_INPUTS_PER_DISPATCH);
    // empty tensors have no buffer to bind: their sum of squares is 0, so give them a one-element zero
    const zeros: tf.TensorInfo[] = [];
    const bound = chunk.map((g) => {
      if (tf.util.sizeFromShape(g.shape) > 0) return g;
      const z = be.makeTensorInfo([1], 'float32', new Float32Array(1));
      zeros.push(z);
      return z;
    });
    const uniforms: UniformData = [{ type: 'int32', data: [start] }, ...chunk.map((g) => ({ type: 'int32' as const, data: [tf.util.sizeFromShape(g.shape)] }))];
    be.runWebGPUProgram(new SumSquaresProgram(n, chunk.length), bound, 'float32', uniforms, partials);
    zeros.forEach((z) => be.disposeData(z.dataId));
  }
  const finishInputs = [partials, ...(previous ? [previous] : []), ...(loss ? [loss] : [])];
  const out = be.runWebGPUProgram(new ControlFromPartialsProgram(previous !== undefined, loss !== undefined), finishInputs, 'float32', [
    { type: 'int32', data: [n] }, { type: 'float32', data: [Number.isFinite(maxNorm) ? maxNorm : 3.4e38] },
  ]);
  be.disposeData(partials.dataId);
  return out;
};

export const gradControlConfig: tf.KernelConfig = { kernelName: GRAD_CONTROL_KERNEL, backendName: 'webgpu', kernelFunc: gradControlKernelFunc };
