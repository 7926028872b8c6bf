/**
 * Fused GroupNorm(+SiLU) for webgpu under the kernel names lib/nn/group-norm.ts dispatches on (GROUP_NORM_KERNEL and,
 * through its registered gradient, GROUP_NORM_GRAD_KERNEL): registering them for 'webgpu' switches groupNormOp over.
 * The formula is lib/nn/group-norm.ts's groupNormComposite: for sample b and group g (channels g·cg … g·cg+cg−1),
 *   μ = mean, σ² = mean((x−μ)²) over (H, W, the group's channels),  x̂ = (x−μ)/√(σ²+ε),  y = x̂·γ + β,  z = y·sigmoid(y).
 *
 * Forward: ONE dispatch, a workgroup of 256 threads per (b, g): sum → μ, squared deviations → σ² (two passes over the
 * group, like the composite's moments), then writes y or z. Storage buffers: x, γ, β, out (4).
 * Gradient: TWO dispatches (the composite's gradient: ~40).
 *   1. per (b, g): μ, r = 1/√(σ²+ε) again from x, then with ∂z/∂y = s·(1 + y·(1−s)) (s = sigmoid(y)) folded into dy,
 *      dx̂ = dy·γ and dx = r·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)); also writes (μ, r) per (b, g) for dispatch 2.
 *      Buffers: x, γ, β, dy → dx, stats (6).
 *   2. per channel c: dγ[c] = Σ_{b,h,w} dy·x̂, dβ[c] = Σ dy (dy with the SiLU factor). Buffers: x, dy, stats, γ, β → dγ, dβ (7;
 *      5 without SiLU).
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../../../errors';
import { GROUP_NORM_GRAD_KERNEL, GROUP_NORM_KERNEL, type GroupNormAttrs } from '../native-blas';
import { asWebGPU, bindingsWGSL, runMultiOutput } from './program';

const WG = 256;

function dims(x: tf.TensorInfo, attrs: GroupNormAttrs): { b: number; hw: number; c: number; cg: number } {
  const c = x.shape[x.shape.length - 1];
  const b = x.shape[0];
  if (x.shape.length !== 4 || !(attrs.groups >= 1) || c % attrs.groups !== 0) {
    throw new InvalidArgumentError(`GroupNorm (webgpu): x must be [B, H, W, C] with C divisible by groups, got ${JSON.stringify(x.shape)} and ${attrs.groups} groups`);
  }
  return { b, hw: x.shape[1] * x.shape[2], c, cg: c / attrs.groups };
}

/** WGSL shared by both group kernels: the tree reduction and the two-pass statistics of group (b, g). */
const STATS_WGSL = (xName: string) => `
var<workgroup> red : array<f32, ${WG}>;
var<workgroup> total : f32;

// the sum of v over the workgroup (every thread gets it); called from uniform control flow only.
// Thread 0 publishes red[0] through its own variable: every thread reading red[0] after the last barrier is valid
// WGSL, but Mesa llvmpipe (Dawn's GL backend) then gave threads 8+ a stale red[0] whenever the sum was divided.
fn workgroupSum(v : f32, tid : u32) -> f32 {
  red[tid] = v;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
    if (tid < s) { red[tid] = red[tid] + red[tid + s]; }
    workgroupBarrier();
  }
  if (tid == 0u) { total = red[0]; }
  return workgroupUniformLoad(&total);
}

// mean and 1/sqrt(variance + eps) of the group at base (sample offset + first channel), as the composite's moments
fn groupStats(base : i32, tid : u32) -> vec2<f32> {
  let n = f32(u.hw * u.cg);
  var s = 0.0;
  for (var p = i32(tid); p < u.hw; p = p + ${WG}) {
    for (var j = 0; j < u.cg; j = j + 1) { s = s + ${xName}[base + p * u.c + j]; }
  }
  let mean = workgroupSum(s, tid) / n;
  var q = 0.0;
  for (var p = i32(tid); p < u.hw; p = p + ${WG}) {
    for (var j = 0; j < u.cg; j = j + 1) { let d = ${xName}[base + p * u.c + j] - mean; q = q + d * d; }
  }
  let variance = workgroupSum(q, tid) / n;
  return vec2<f32>(mean, inverseSqrt(variance + u.eps));
}

fn sigmoid(y : f32) -> f32 { return 1.0 / (1.0 + exp(-y)); }
`;

const PARAMS = 'hw : i32, c : i32, cg : i32, groups : i32, batch : i32, eps : f32';

function forwardWGSL(silu: boolean): string {
  return `
${bindingsWGSL(['y'], ['x', 'gamma', 'beta'], PARAMS)}
${STATS_WGSL('x')}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg : vec3<u32>, @builtin(local_invocation_index) tid : u32) {
  let bg = i32(wg.x);
  let b = bg / u.groups;
  let g = bg - b * u.groups;
  let base = b * u.hw * u.c + g * u.cg;
  let st = groupStats(base, tid);
  for (var p = i32(tid); p < u.hw; p = p + ${WG}) {
    for (var j = 0; j < u.cg; j = j + 1) {
      let i = base + p * u.c + j;
      let c = g * u.cg + j;
      let v = ((x[i] - st.x) * st.y) * gamma[c] + beta[c];
      y[i] = ${silu ? 'v * sigmoid(v)' : 'v'};
    }
  }
}`;
}

function gradDxWGSL(silu: boolean): string {
  return `
${bindingsWGSL(['dx', 'stats'], ['x', 'gamma', 'dy', ...(silu ? ['beta'] : [])], PARAMS)}
${STATS_WGSL('x')}
// dy with the SiLU factor folded in (∂L/∂y where y = x̂·γ + β)
fn dyOfY(i : i32, c : i32, xh : f32) -> f32 {
  ${silu ? `let v = xh * gamma[c] + beta[c];
  let s = sigmoid(v);
  return dy[i] * (s * (1.0 + v * (1.0 - s)));` : 'return dy[i];'}
}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg : vec3<u32>, @builtin(local_invocation_index) tid : u32) {
  let bg = i32(wg.x);
  let b = bg / u.groups;
  let g = bg - b * u.groups;
  let base = b * u.hw * u.c + g * u.cg;
  let st = groupStats(base, tid);
  var s1 = 0.0;
  var s2 = 0.0;
  for (var p = i32(tid); p < u.hw; p = p + ${WG}) {
    for (var j = 0; j < u.cg; j = j + 1) {
      let i = base + p * u.c + j;
      let c = g * u.cg + j;
      let xh = (x[i] - st.x) * st.y;
      let dxh = dyOfY(i, c, xh) * gamma[c];
      s1 = s1 + dxh;
      s2 = s2 + dxh * xh;
    }
  }
  let n = f32(u.hw * u.cg);
  let meanDxh = workgroupSum(s1, tid) / n;
  let meanDxhXh = workgroupSum(s2, tid) / n;
  for (var p = i32(tid); p < u.hw; p = p + ${WG}) {
    for (var j = 0; j < u.cg; j = j + 1) {
      let i = base + p * u.c + j;
      let c = g * u.cg + j;
      let xh = (x[i] - st.x) * st.y;
      let dxh = dyOfY(i, c, xh) * gamma[c];
      dx[i] = st.y * (dxh - meanDxh - xh * meanDxhXh);
    }
  }
  if (tid == 0u) { stats[2 * bg] = st.x; stats[2 * bg + 1] = st.y; }
}`;
}

function gradGammaBetaWGSL(silu: boolean): string {
  const inputs = ['x', 'dy', 'stats', ...(silu ? ['gamma', 'beta'] : [])];
  return `
${bindingsWGSL(['dgamma', 'dbeta'], inputs, PARAMS)}
${STATS_WGSL('x')}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg : vec3<u32>, @builtin(local_invocation_index) tid : u32) {
  let c = i32(wg.x);
  let g = c / u.cg;
  var sg = 0.0;
  var sb = 0.0;
  for (var b = 0; b < u.batch; b = b + 1) {
    let mean = stats[2 * (b * u.groups + g)];
    let r = stats[2 * (b * u.groups + g) + 1];
    for (var p = i32(tid); p < u.hw; p = p + ${WG}) {
      let i = (b * u.hw + p) * u.c + c;
      let xh = (x[i] - mean) * r;
      ${silu ? `let v = xh * gamma[c] + beta[c];
      let s = sigmoid(v);
      let d = dy[i] * (s * (1.0 + v * (1.0 - s)));` : 'let d = dy[i];'}
      sg = sg + d * xh;
      sb = sb + d;
    }
  }
  let tg = workgroupSum(sg, tid);
  let tb = workgroupSum(sb, tid);
  if (tid == 0u) { dgamma[c] = tg; dbeta[c] = tb; }
}`;
}

function params(d: ReturnType<typeof dims>, attrs: GroupNormAttrs) {
  const i = (v: number) => ({ type: 'int32' as const, data: [v] });
  return [i(d.hw), i(d.c), i(d.cg), i(attrs.groups), i(d.b), { type: 'float32' as const, data: [attrs.eps] }];
}

/** One workgroup per (sample, group) along x: B·G must fit one dispatch dimension (65,535: B ≤ 8,191 at G = 8). */
function checkGroups(be: ReturnType<typeof asWebGPU>, n: number): number {
  if (n > (be.device.limits.maxComputeWorkgroupsPerDimension ?? 65535)) {
    throw new InvalidArgumentError(`GroupNorm (webgpu): ${n} (sample, group) pairs exceed one dispatch dimension; split the batch`);
  }
  return n;
}

const forward: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const be = asWebGPU(backend);
  const { x, gamma, beta } = inputs as { x: tf.TensorInfo; gamma: tf.TensorInfo; beta: tf.TensorInfo };
  const a = attrs as unknown as GroupNormAttrs;
  const d = dims(x, a);
  if (d.b * d.hw * d.c === 0) return be.makeTensorInfo(x.shape, 'float32', new Float32Array(0));
  const groupsTotal = checkGroups(be, d.b * a.groups);
  const prog = { key: `courseGroupNorm_${a.silu}`, name: 'CourseGroupNorm', code: forwardWGSL(a.silu), workgroups: [groupsTotal, 1, 1] as [number, number, number] };
  return runMultiOutput(be, prog, [x, gamma, beta], [x.shape], params(d, a))[0];
};

const gradient: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const be = asWebGPU(backend);
  const { x, gamma, beta, dy } = inputs as { x: tf.TensorInfo; gamma: tf.TensorInfo; beta: tf.TensorInfo; dy: tf.TensorInfo };
  const a = attrs as unknown as GroupNormAttrs;
  const d = dims(x, a);
  if (d.b * d.hw * d.c === 0) {
    return [be.makeTensorInfo(x.shape, 'float32', new Float32Array(0)),
      be.makeTensorInfo([d.c], 'float32', new Float32Array(d.c)), be.makeTensorInfo([d.c], 'float32', new Float32Array(d.c))];
  }
  const groupsTotal = checkGroups(be, d.b * a.groups);
  const u = params(d, a);
  const [dx, stats] = runMultiOutput(be, {
    key: `courseGroupNormGradDx_${a.silu}`, name: 'CourseGroupNormGradDx', code: gradDxWGSL(a.silu), workgroups: [groupsTotal, 1, 1],
  }, [x, gamma, dy, ...(a.silu ? [beta] : [])], [x.shape, [groupsTotal * 2]], u);
  const [dgamma, dbeta] = runMultiOutput(be, {
    key: `courseGroupNormGradGammaBeta_${a.silu}`, name: 'CourseGroupNormGradGammaBeta', code: gradGammaBetaWGSL(a.silu),
    workgroups: [d.c, 1, 1],
  }, [x, dy, stats, ...(a.silu ? [gamma, beta] : [])], [[d.c], [d.c]], u);
  be.disposeData(stats.dataId);
  return [dx, dgamma, dbeta];
};

export const groupNormConfig: tf.KernelConfig = { kernelName: GROUP_NORM_KERNEL, backendName: 'webgpu', kernelFunc: forward };
export const groupNormGradConfig: tf.KernelConfig = { kernelName: GROUP_NORM_GRAD_KERNEL, backendName: 'webgpu', kernelFunc: gradient };
