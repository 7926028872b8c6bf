/**
 * The small part of tfjs-backend-webgpu 4.22's WebGPUBackend that the course's WebGPU kernels use, typed here (the
 * package's own .d.ts needs the DOM's GPU types, which lib does not compile against), and a dispatcher for programs
 * with SEVERAL outputs, which the backend's runWebGPUProgram cannot do (it binds exactly one output, at binding 0).
 *
 * Two ways to run a program:
 * - runWebGPUProgram (tfjs' own): for one output. tfjs writes the shader's header (bindings, a `uniforms` struct with
 *   every shape and the program's own uniforms, the `getX(...)` helpers) and our class gives `getUserCode()`.
 * - runMultiOutput (here): the WGSL is entirely ours — outputs at bindings 0…k−1 (read_write), inputs at k…k+n−1
 *   (read), one uniform struct after them — and the dispatch is recorded into the backend's own command encoder and
 *   compute pass exactly as recordAndSubmit does (same pass batching, same submit threshold, same tf.profile timers),
 *   so it interleaves correctly with tfjs' kernels.
 */
import * as tf from '@tensorflow/tfjs';
import { BackendUnavailableError, InvalidArgumentError } from '../../../errors';

/* ---------- the WebGPU objects we touch (a subset of the W3C interfaces) ---------- */
export interface GpuPipeline { getBindGroupLayout(i: number): unknown }
export interface GpuPass {
  setPipeline(p: GpuPipeline): void;
  setBindGroup(i: number, g: unknown): void;
  dispatchWorkgroups(x: number, y?: number, z?: number): void;
}
export interface GpuDevice {
  limits: Record<string, number>;
  createShaderModule(d: { code: string; label?: string }): unknown;
  createComputePipeline(d: { layout: 'auto'; compute: { module: unknown; entryPoint: string }; label?: string }): GpuPipeline;
  createBindGroup(d: { layout: unknown; entries: Array<{ binding: number; resource: unknown }> }): unknown;
  createQuerySet(d: { type: string; count: number }): unknown;
  pushErrorScope(filter: string): void;
  popErrorScope(): Promise<{ message: string } | null>;
}
interface GpuEncoder { beginComputePass(d: Record<string, unknown>): GpuPass }

/** A program for tfjs' runWebGPUProgram (tfjs-backend-webgpu's WebGPUProgram interface, the fields we set). */
export interface WebGPUProgram {
  outputShape: number[];
  shaderKey: string;
  variableNames: string[];
  /** Which output dimensions map onto the dispatch's x, y, z (tfjs generates index helpers from it). */
  dispatchLayout: { x: number[]; y?: number[]; z?: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  /** Extra fields of the `uniforms` struct, e.g. 'M : i32, N : i32,'. */
  uniforms?: string;
  /** Adds `size : i32` (the output's element count) to the uniforms. */
  size?: boolean;
  /** The output is `array<atomic<i32>>`. */
  atomic?: boolean;
  getUserCode(): string;
}

export type UniformData = Array<{ type: 'int32' | 'float32' | 'uint32'; data: number[] }>;

type Info = tf.TensorInfo;
interface TensorData { resource: unknown; refCount: number; values: unknown }

/** The members of tfjs-backend-webgpu 4.22's WebGPUBackend used by the course kernels. */
export interface WebGPUBackendLike {
  device: GpuDevice;
  commandEncoder: (GpuEncoder & { resolveQuerySet?: unknown }) | null;
  computePassEncoder: GpuPass | null;
  dispatchCountInPass: number;
  commandQueueOwnedIds: WeakSet<object>;
  activeTimers: Array<{ name: string; query: Promise<number> }> | null | undefined;
  supportTimestampQuery: boolean;
  querySet: unknown;
  querySetCount: number;
  tensorMap: { get(dataId: object): TensorData };
  runWebGPUProgram(program: WebGPUProgram, inputs: Info[], dtype: tf.DataType, uniforms?: UniformData, output?: Info): Info;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: unknown): Info;
  disposeData(dataId: object, force?: boolean): boolean;
  uploadToGPU(dataId: object): void;
  tensorToBinding(t: Info): unknown;
  makeUniforms(u: UniformData): unknown;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  getQueryTime(): Promise<number>;
}

const REQUIRED: Array<keyof WebGPUBackendLike> = [
  'device', 'tensorMap', 'runWebGPUProgram', 'makeTensorInfo', 'disposeData', 'uploadToGPU', 'tensorToBinding',
  'makeUniforms', 'ensureCommandEncoderReady', 'endComputePassEncoder', 'submitQueue', 'getQueryTime',
  'commandQueueOwnedIds', 'dispatchCountInPass',
];
const checked = new WeakSet<object>();

/**
 * The backend of a kernel call as WebGPUBackendLike. Checks once per backend that the members we rely on exist, so a
 * tfjs-backend-webgpu other than 4.22 fails with a named error instead of writing into undefined.
 */
export function asWebGPU(backend: unknown): WebGPUBackendLike {
  const be = backend as WebGPUBackendLike;
  if (!checked.has(be as object)) {
    const missing = REQUIRED.filter((k) => !(k in (be as object)));
    if (missing.length > 0) {
      throw new BackendUnavailableError(
        `course WebGPU kernels: the webgpu backend lacks ${missing.join(', ')} (written for @tensorflow/tfjs-backend-webgpu 4.22.0)`);
    }
    checked.add(be as object);
  }
  return be;
}

/** Workgroup counts for `n` workgroups along x, folded into y when x would exceed the per-dimension limit. */
export function spreadWorkgroups(n: number, device: GpuDevice): [number, number, number] {
  const max = device.limits.maxComputeWorkgroupsPerDimension ?? 65535;
  if (n <= max) return [Math.max(1, n), 1, 1];
  const y = Math.ceil(n / max);
  return [Math.ceil(n / y), y, 1];
}

/* ---------- several outputs: our own WGSL, recorded into tfjs' command encoder ---------- */

/** A shader whose bindings follow runMultiOutput's convention (see bindingsWGSL). */
export interface MultiOutputProgram {
  /** Identifies the WGSL text: everything the code depends on except the uniforms' values. */
  key: string;
  /** Shown in tf.profile's kernel timings. */
  name: string;
  code: string;
  workgroups: [number, number, number];
}

const pipelines = new WeakMap<object, Map<string, GpuPipeline>>();

function pipelineFor(device: GpuDevice, prog: MultiOutputProgram): GpuPipeline {
  let cache = pipelines.get(device as object);
  if (!cache) pipelines.set(device as object, (cache = new Map()));
  let p = cache.get(prog.key);
  if (!p) {
    const module = device.createShaderModule({ code: prog.code, label: prog.name });
    p = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: prog.name });
    cache.set(prog.key, p);
  }
  return p;
}

/**
 * WGSL declarations for runMultiOutput: `outputs` as read_write arrays at bindings 0…, `inputs` as read arrays after
 * them, then `var<uniform> u : Params` where `params` lists the struct's fields (scalars only, e.g. 'lr : f32, n : i32',
 * so that their offsets are 4·i, as backend.makeUniforms lays out scalar fields).
 */
export function bindingsWGSL(outputs: string[], inputs: string[], params: string): string {
  const lines = [
    `struct Params { ${params} };`,
    ...outputs.map((n, i) => `@group(0) @binding(${i}) var<storage, read_write> ${n} : array<f32>;`),
    ...inputs.map((n, i) => `@group(0) @binding(${outputs.length + i}) var<storage, read> ${n} : array<f32>;`),
    `@group(0) @binding(${outputs.length + inputs.length}) var<uniform> u : Params;`,
  ];
  return lines.join('\n');
}

/**
 * Run `prog` with new float32 outputs of `outShapes`, reading `inputs`; `uniforms` fill the Params struct in order.
 * Returns the outputs (owned by the caller, as a kernel's outputs are).
 */
export function runMultiOutput(
  backend: WebGPUBackendLike, prog: MultiOutputProgram, inputs: Info[], outShapes: number[][], uniforms: UniformData,
): Info[] {
  if (outShapes.some((s) => tf.util.sizeFromShape(s) === 0)) {
    throw new InvalidArgumentError(`${prog.name}: an output of ${JSON.stringify(outShapes)} is empty (callers return early)`);
  }
  const outputs = outShapes.map((s) => backend.makeTensorInfo(s, 'float32'));
  outputs.forEach((o) => backend.uploadToGPU(o.dataId));
  inputs.forEach((t) => backend.uploadToGPU(t.dataId));
  const device = backend.device;
  const pipeline = pipelineFor(device, prog);
  const entries = [...outputs, ...inputs].map((t, i) => ({ binding: i, resource: backend.tensorToBinding(t) }));
  entries.push({ binding: entries.length, resource: backend.makeUniforms(uniforms) });
  // the buffers must outlive this command buffer: tfjs defers their release until it is submitted
  [...outputs, ...inputs].forEach((t) => backend.commandQueueOwnedIds.add(t.dataId));
  const bindGroup = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });

  // as tfjs' recordAndSubmit: a profiled dispatch gets its own pass with timestamp writes
  const timed = backend.activeTimers != null;
  backend.ensureCommandEncoderReady();
  const encoder = backend.commandEncoder as GpuEncoder;
  if (timed && backend.supportTimestampQuery) {
    backend.endComputePassEncoder();
    if (backend.querySet == null) backend.querySet = device.createQuerySet({ type: 'timestamp', count: backend.querySetCount });
    backend.computePassEncoder = encoder.beginComputePass({
      timestampWrites: { querySet: backend.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 },
    });
  } else if (!backend.computePassEncoder) {
    backend.computePassEncoder = encoder.beginComputePass({});
  }
  const pass = backend.computePassEncoder as GpuPass;
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(...prog.workgroups);
  backend.dispatchCountInPass++;
  if (timed || (tf.env().get('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE') as number) <= backend.dispatchCountInPass) {
    backend.endComputePassEncoder();
    if (timed) (backend.activeTimers as Array<{ name: string; query: Promise<number> }>).push({ name: prog.name, query: backend.getQueryTime() });
    else backend.submitQueue();
  }
  return outputs;
}
