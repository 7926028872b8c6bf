/**
 * The EMA update of one weight tensor, masked by a control tensor (gradientControl's [norm, scale, ok]):
 *   shadow′ = d·shadow + (1−d)·θ   where ok = 1,   shadow′ = shadow   where ok = 0 (the step was not finite).
 *
 * emaUpdateComposite is the formula in tfjs ops (every backend; masked by scalar coefficients, d → 1 and (1−d) → 0, see
 * ControlMasks: the weights are finite, so the shadow stays exactly as it was); on webgpu the kernel 'CourseEmaUpdate'
 * computes the same in ONE dispatch per tensor (with a select). emaApply updates every shadow of a model, sharing the
 * prepared control with adamApply when given one ControlMasks.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../../../errors';
import { ControlMasks, withMasks, type Control } from './adam';
import { asWebGPU, bindingsWGSL, runMultiOutput, spreadWorkgroups } from './program';

export const EMA_UPDATE_KERNEL = 'CourseEmaUpdate';

/** The kernel's attributes: d and 1−d (computed once, in float64, as the composite's scalar multiplications get them). */
export interface EmaAttrs { decay: number; oneMinusDecay: number }

function checkEma(shadow: tf.Tensor, theta: tf.Tensor, decay: number, control?: tf.Tensor): void {
  if (!tf.util.arraysEqual(shadow.shape, theta.shape)) {
    throw new ShapeMismatchError(`emaUpdate: shadow has shape ${JSON.stringify(shadow.shape)}, theta ${JSON.stringify(theta.shape)}`);
  }
  if (shadow.dtype !== 'float32' || theta.dtype !== 'float32') throw new InvalidArgumentError('emaUpdate: shadow and theta must be float32');
  if (!(decay >= 0 && decay < 1)) throw new InvalidArgumentError(`emaUpdate: decay must be in [0, 1), got ${decay}`);
  if (control && (control.size !== 3 || control.dtype !== 'float32')) {
    throw new ShapeMismatchError(`emaUpdate: control must be float32 [norm, scale, ok] (3 values), got ${control.dtype} ${JSON.stringify(control.shape)}`);
  }
}

/** The formula, in tfjs ops (the kernel computes the same products and sum); `masks`: d → 1, (1−d) → 0 when not ok. */
function emaComposite(shadow: tf.Tensor, theta: tf.Tensor, decay: number, masks?: ControlMasks): tf.Tensor {
  if (!masks) return tf.add(tf.mul(shadow, decay), tf.mul(theta, 1 - decay));
  return tf.add(tf.mul(shadow, masks.factor(decay, 1)), tf.mul(theta, masks.factor(1 - decay, 0)));
}

/** The formula in tfjs ops (every backend): the reference the kernel is tested against. */
export function emaUpdateComposite(shadow: tf.Tensor, theta: tf.Tensor, decay: number, control?: tf.Tensor): tf.Tensor {
  checkEma(shadow, theta, decay, control);
  return withMasks(control, (masks) => tf.tidy(() => emaComposite(shadow, theta, decay, masks)));
}

/** True when the active backend has the one-dispatch kernel (webgpu with the course kernels registered). */
export function fusedEmaAvailable(): boolean {
  return tf.getKernel(EMA_UPDATE_KERNEL, tf.getBackend()) !== undefined;
}

function runEmaKernel(shadow: tf.Tensor, theta: tf.Tensor, decay: number, control?: tf.Tensor): tf.Tensor {
  const attrs: EmaAttrs = { decay, oneMinusDecay: 1 - decay };
  const inputs: tf.NamedTensorMap = control ? { shadow, theta, control } : { shadow, theta };
  return tf.engine().runKernel(EMA_UPDATE_KERNEL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
}

/** shadow′ for one tensor (a new tensor); `control` ([norm, scale, ok]) leaves it unchanged when ok is 0. */
export function emaUpdate(shadow: tf.Tensor, theta: tf.Tensor, decay: number, control?: tf.Tensor): tf.Tensor {
  if (!fusedEmaAvailable()) return emaUpdateComposite(shadow, theta, decay, control);
  checkEma(shadow, theta, decay, control);
  return runEmaKernel(shadow, theta, decay, control);
}

/** Every shadow′, assigned to `shadows` (the old values are released). On webgpu one dispatch per tensor. */
export function emaApply(shadows: tf.Variable[], thetas: tf.Tensor[], decay: number, control?: Control): void {
  if (shadows.length !== thetas.length) throw new ShapeMismatchError(`emaApply: ${shadows.length} shadows for ${thetas.length} weights`);
  const c = control instanceof ControlMasks ? control.control : control;
  shadows.forEach((s, i) => checkEma(s, thetas[i], decay, c));
  const fused = fusedEmaAvailable();
  withMasks(control, (masks) => tf.tidy(() => {
    shadows.forEach((s, i) => s.assign(fused ? runEmaKernel(s, thetas[i], decay, c) : emaComposite(s, thetas[i], decay, masks)));
  }));
}

/* ---------- WGSL ---------- */

const WG = 256;

function emaWGSL(withControl: boolean): string {
  return `
${bindingsWGSL(['out'], ['shadow', 'theta', ...(withControl ? ['control'] : [])], 'd : f32, omd : f32, size : i32, rowStride : i32')}

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid : vec3<u32>) {
  let i = i32(gid.x) + i32(gid.y) * u.rowStride;
  if (i >= u.size) { return; }
  // the composite's order of operations: shadow·d + θ·(1−d)
  let next = shadow[i] * u.d + theta[i] * u.omd;
  ${withControl ? 'out[i] = select(shadow[i], next, control[2] > 0.5);' : 'out[i] = next;'}
}`;
}

const emaKernelFunc: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const be = asWebGPU(backend);
  const { shadow, theta, control } = inputs as Record<string, tf.TensorInfo | undefined> as
    { shadow: tf.TensorInfo; theta: tf.TensorInfo; control?: tf.TensorInfo };
  const a = attrs as unknown as EmaAttrs;
  const size = tf.util.sizeFromShape(shadow.shape);
  if (size === 0) return be.makeTensorInfo(shadow.shape, 'float32', new Float32Array(0));
  const workgroups = spreadWorkgroups(Math.ceil(size / WG), be.device);
  const withControl = control !== undefined;
  const prog = { key: `courseEma_${withControl}`, name: 'CourseEmaUpdate', code: emaWGSL(withControl), workgroups };
  const [out] = runMultiOutput(be, prog, [shadow, theta, ...(control ? [control] : [])], [shadow.shape], [
    { type: 'float32', data: [a.decay] }, { type: 'float32', data: [a.oneMinusDecay] },
    { type: 'int32', data: [size] }, { type: 'int32', data: [workgroups[0] * WG] },
  ]);
  return out;
};

export const emaUpdateConfig: tf.KernelConfig = { kernelName: EMA_UPDATE_KERNEL, backendName: 'webgpu', kernelFunc: emaKernelFunc };
