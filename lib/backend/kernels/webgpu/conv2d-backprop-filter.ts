/**
 * Conv2DBackpropFilter for webgpu as a tiled implicit GEMM with a split-K reduction:
 *
 *   dw[m, n] = Σ_k A[k, m]·B[k, n],   m = (kh·KW + kw)·Ci + ci,   n = co,   k = (b·OH + oh)·OW + ow,
 *   A[k, m] = x[b, oh·sh + kh − padTop, ow·sw + kw − padLeft, ci] (0 outside the image),   B[k, n] = dy[b, oh, ow, co].
 *
 * dw's flat index is m·N + n (filter layout [KH, KW, Ci, Co]) and dy is already a row-major K×N matrix, so nothing is
 * transposed or materialised. The reduction length K = B·OH·OW is long (64·28·28 = 50,176 at the reference size) while
 * M×N is small (e.g. 288×32), so the K range is cut into S slices ("split-K") to give a GPU enough workgroups:
 * workgroup (tile of N, tile of M, slice s) writes partial sums into [S, M, N] and a second dispatch adds the S slices.
 * With S = 1 the first dispatch writes dw directly.
 *
 * Tiles: 32×32 outputs per workgroup of 8×8 threads, each thread 4×4 outputs in registers; K in steps of 32 through
 * workgroup memory (2 × 32×32 floats = 8 KiB). Storage buffers: x, dy, and the output (3).
 * tfjs' own kernel (Conv2DDerFilterProgram) gives each output element one thread that loops over all of K, reading x
 * and dy from global memory each time: at B=64 9,216 threads × 50,176 iterations for a 3×3×32×32 filter.
 */
import * as tf from '@tensorflow/tfjs';
import { asWebGPU, type WebGPUBackendLike, type WebGPUProgram } from './program';

const TM = 32; // rows (m = filter taps × input channels) per tile
const TN = 32; // columns (n = output channels) per tile
const TK = 32; // reduction step through workgroup memory
const RM = 4; // rows per thread
const RN = 4; // columns per thread
const THREADS = (TM / RM) * (TN / RN); // 64

/** Workgroups the split-K aims for: enough to fill a large GPU (H100/H200: 132 SMs) several times. */
export const TARGET_WORKGROUPS = 512;
/** A slice covers at least this many steps of TK (fewer would spend more on the partial sums than on the products). */
export const MIN_STEPS_PER_SLICE = 4;

export interface SplitK { slices: number; kPerSlice: number }

let splitTarget = TARGET_WORKGROUPS;
let splitMinSteps = MIN_STEPS_PER_SLICE;
/**
 * Change what split-K aims for: `target` workgroups, slices of at least `minSteps`·32 reduction steps (tests force many
 * short slices or none; a benchmark may tune it). Returns the previous setting.
 */
export function setSplitK(target: number, minSteps = MIN_STEPS_PER_SLICE): { target: number; minSteps: number } {
  const old = { target: splitTarget, minSteps: splitMinSteps };
  splitTarget = Math.max(1, Math.floor(target));
  splitMinSteps = Math.max(1, Math.floor(minSteps));
  return old;
}

/** How many K slices for an M×N output with reduction length K (S = 1: no partial sums). */
export function chooseSplitK(m: number, n: number, k: number, target = splitTarget, minSteps = splitMinSteps): SplitK {
  const tiles = Math.ceil(m / TM) * Math.ceil(n / TN);
  const maxSlices = Math.max(1, Math.floor(k / (TK * minSteps)));
  const wanted = Math.max(1, Math.min(maxSlices, Math.round(target / tiles)));
  const kPerSlice = Math.ceil(Math.ceil(k / wanted) / TK) * TK;
  return { slices: Math.ceil(k / kPerSlice), kPerSlice };
}

class FilterGemmProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey = `courseConvFilterGemm_${TM}_${TN}_${TK}`;
  variableNames = ['x', 'dy'];
  // y/z present: tfjs then calls main() without a flat index (we use workgroupId/localId ourselves)
  dispatchLayout = { x: [0], y: [1], z: [2] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [TN / RN, TM / RM, 1];
  uniforms = 'M : i32, N : i32, K : i32, kPerSlice : i32, Ci : i32, KW : i32, IH : i32, IW : i32, OH : i32, OW : i32, '
    + 'sh : i32, sw : i32, padTop : i32, padLeft : i32,';

  constructor(outputShape: number[], m: number, n: number, slices: number) {
    this.outputShape = outputShape;
    this.dispatch = [Math.ceil(n / TN), Math.ceil(m / TM), slices];
  }

  getUserCode(): string {
    const aLoads = (TK * TM) / THREADS;
    const bLoads = (TK * TN) / THREADS;
    return `
    var<workgroup> As : array<array<f32, ${TM}>, ${TK}>;
    var<workgroup> Bs : array<array<f32, ${TN}>, ${TK}>;
    var<workgroup> sliceShared : i32;
    // per row kk of the current K step: where its image row/column starts (decoded once, not by every loading thread)
    var<workgroup> rowBase : array<i32, ${TK}>;
    var<workgroup> rowIH : array<i32, ${TK}>;
    var<workgroup> rowIW : array<i32, ${TK}>;

    fn main() {
      let tx = i32(localId.x);
      let ty = i32(localId.y);
      let tid = ty * ${TN / RN} + tx;
      let n0 = i32(workgroupId.x) * ${TN};
      let m0 = i32(workgroupId.y) * ${TM};
      // tfjs hands us workgroupId through a private variable, which WGSL's uniformity analysis treats as varying:
      // the loop around the barriers needs its bounds from a workgroup-uniform load
      if (tid == 0) { sliceShared = i32(workgroupId.z); }
      let slice = workgroupUniformLoad(&sliceShared);
      let kBegin = slice * uniforms.kPerSlice;
      let kEnd = min(uniforms.K, kBegin + uniforms.kPerSlice);

      // the A column and B column this thread loads stay the same for the whole loop: decode them once
      let am = m0 + tid % ${TM};
      let tap = am / uniforms.Ci;
      let ci = am - tap * uniforms.Ci;
      let kh = tap / uniforms.KW;
      let kw = tap - kh * uniforms.KW;
      let mValid = am < uniforms.M;
      let bn = n0 + tid % ${TN};
      let nValid = bn < uniforms.N;

      var acc : array<array<f32, ${RN}>, ${RM}>;
      for (var k0 = kBegin; k0 < kEnd; k0 = k0 + ${TK}) {
        for (var kk = tid; kk < ${TK}; kk = kk + ${THREADS}) {
          let k = k0 + kk;
          let ow = k % uniforms.OW;
          let t = k / uniforms.OW;
          let oh = t % uniforms.OH;
          rowBase[kk] = (t / uniforms.OH) * uniforms.IH;
          // rows past the slice's end get an origin no tap can reach: their A values load as 0
          rowIH[kk] = select(-1073741824, oh * uniforms.sh - uniforms.padTop, k < kEnd);
          rowIW[kk] = ow * uniforms.sw - uniforms.padLeft;
        }
        workgroupBarrier();
        for (var r = 0; r < ${aLoads}; r = r + 1) {
          let kk = tid / ${TM} + r * ${THREADS / TM};
          let ih = rowIH[kk] + kh;
          let iw = rowIW[kk] + kw;
          var a = 0.0;
          if (mValid && ih >= 0 && ih < uniforms.IH && iw >= 0 && iw < uniforms.IW) {
            a = x[((rowBase[kk] + ih) * uniforms.IW + iw) * uniforms.Ci + ci];
          }
          As[kk][tid % ${TM}] = a;
        }
        for (var r = 0; r < ${bLoads}; r = r + 1) {
          let kk = tid / ${TN} + r * ${THREADS / TN};
          let k = k0 + kk;
          var b = 0.0;
          if (nValid && k < kEnd) { b = dy[k * uniforms.N + bn]; }
          Bs[kk][tid % ${TN}] = b;
        }
        workgroupBarrier();
        for (var kk = 0; kk < ${TK}; kk = kk + 1) {
          var av : array<f32, ${RM}>;
          for (var i = 0; i < ${RM}; i = i + 1) { av[i] = As[kk][ty * ${RM} + i]; }
          for (var j = 0; j < ${RN}; j = j + 1) {
            let bv = Bs[kk][tx * ${RN} + j];
            for (var i = 0; i < ${RM}; i = i + 1) { acc[i][j] = fma(av[i], bv, acc[i][j]); }
          }
        }
        workgroupBarrier();
      }

      let base = slice * uniforms.M * uniforms.N;
      for (var i = 0; i < ${RM}; i = i + 1) {
        let m = m0 + ty * ${RM} + i;
        if (m >= uniforms.M) { break; }
        for (var j = 0; j < ${RN}; j = j + 1) {
          let n = n0 + tx * ${RN} + j;
          if (n < uniforms.N) { result[base + m * uniforms.N + n] = acc[i][j]; }
        }
      }
    }`;
  }
}

/** dw[i] = Σ_s partials[s, i], in slice order (deterministic). */
class SumSlicesProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey = 'courseSumSlices';
  variableNames = ['partials'];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [256, 1, 1];
  uniforms = 'slices : i32,';
  size = true;

  constructor(outputShape: number[]) {
    this.outputShape = outputShape;
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    // tfjs folds an x beyond the device limit into y/z itself (reshapeDispatch), and getGlobalIndex follows
    this.dispatch = [Math.ceil(tf.util.sizeFromShape(outputShape) / 256), 1, 1];
  }

  getUserCode(): string {
    return `
    fn main(index : i32) {
      if (index < uniforms.size) {
        var s = 0.0;
        for (var i = 0; i < uniforms.slices; i = i + 1) { s = s + partials[i * uniforms.size + index]; }
        result[index] = s;
      }
    }`;
  }
}

interface FilterAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

/** The filter gradient of x [B, IH, IW, Ci] (NHWC) and dy [B, OH, OW, Co]; `split` overrides the split-K choice. */
export function conv2dBackpropFilterGemm(
  backend: WebGPUBackendLike, x: tf.TensorInfo, dy: tf.TensorInfo, info: tf.backend_util.Conv2DInfo, split?: SplitK,
): tf.TensorInfo {
  const [kH, kW, ci, co] = info.filterShape;
  const m = kH * kW * ci;
  const n = co;
  const k = info.batchSize * info.outHeight * info.outWidth;
  if (m * n === 0) return backend.makeTensorInfo(info.filterShape, 'float32', new Float32Array(0));
  if (k === 0) return backend.makeTensorInfo(info.filterShape, 'float32', new Float32Array(m * n));
  const { slices, kPerSlice } = split ?? chooseSplitK(m, n, k);
  const uniforms = [m, n, k, kPerSlice, ci, kW, info.inHeight, info.inWidth, info.outHeight, info.outWidth,
    info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left].map((v) => ({ type: 'int32' as const, data: [v] }));
  if (slices === 1) {
    return backend.runWebGPUProgram(new FilterGemmProgram(info.filterShape, m, n, 1), [x, dy], 'float32', uniforms);
  }
  const partials = backend.runWebGPUProgram(new FilterGemmProgram([slices, m, n], m, n, slices), [x, dy], 'float32', uniforms);
  const out = backend.runWebGPUProgram(new SumSlicesProgram(info.filterShape), [partials], 'float32',
    [{ type: 'int32', data: [slices] }]);
  backend.disposeData(partials.dataId);
  return out;
}

const kernelFunc: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const be = asWebGPU(backend);
  let { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as FilterAttrs;
  const temps: tf.TensorInfo[] = [];
  if (dataFormat === 'NCHW') {
    // the course is NHWC throughout; NCHW is transposed with tfjs' own kernel rather than given a second shader
    const transpose = tf.getKernel('Transpose', 'webgpu')!.kernelFunc;
    const toNHWC = (t: tf.TensorInfo) => transpose({ inputs: { x: t }, backend, attrs: { perm: [0, 2, 3, 1] } }) as tf.TensorInfo;
    x = toNHWC(x);
    dy = toNHWC(dy);
    temps.push(x, dy);
  }
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  const out = conv2dBackpropFilterGemm(be, x, dy, info);
  temps.forEach((t) => be.disposeData(t.dataId));
  return out;
};

export const conv2dBackpropFilterConfig: tf.KernelConfig = { kernelName: 'Conv2DBackpropFilter', backendName: 'webgpu', kernelFunc };
