/**
 * Makes WebGPU errors thrown, named errors (WebGpuError) instead of console warnings.
 *
 * Why: WebGPU reports a validation error, out-of-memory or device loss to the device, not to the call, and tfjs 4.22
 * ignores it. One invalid command also invalidates the whole command buffer tfjs was filling (up to 15 dispatches),
 * so OTHER operations' results silently read as zeros (shared/notes/gpu.md: a global gradient norm read 0 after a
 * failed tf.addN; a U-Net forward was off by 1.6).
 *
 * How: the device's `onuncapturederror` and `lost` handlers record the error; wrappers around the backend instance's
 * runWebGPUProgram / uploadToGPU / submitQueue / read / readSync turn it into a throw. Where it surfaces:
 *   - Dawn's Node binding reports validation and out-of-memory errors synchronously, inside the API call, so the
 *     operation that caused it throws: `WebGpuError (validation) in AddNPackedProgram: …`;
 *   - the results recorded into the same command buffer before it are marked lost: reading one (`await data()`) or
 *     using it as an input throws a WebGpuError of kind 'lost-result' (never a silent zero). That includes tensors
 *     whose upload was queued in that buffer (e.g. a variable's first use);
 *   - an error reported later (asynchronously: device loss, or any error that arrives between calls) throws at the
 *     next operation, read or submit; after a device loss every one of them throws;
 *   - operations after a thrown error run normally on a fresh command buffer (the invalid one is dropped inside an
 *     error scope), so a notebook cell can be fixed and re-run;
 *   - `dataSync()` of a tensor computed on the GPU throws a WebGpuError ('sync-read') naming `await data()` instead of
 *     tfjs' "OffscreenCanvas is not defined".
 * The wrappers touch tfjs internals (pinned at 4.22.0); test/backend/webgpu-errors.test.ts provokes real errors.
 */
import { WebGpuError, type WebGpuErrorKind } from '../errors';
import type {
  DataId, GpuDeviceLike, GpuErrorLike, TensorInfoLike, WebGpuBackendLike, WebGpuProgramLike,
} from './webgpu-types';

interface Reported { kind: WebGpuErrorKind; message: string }

/** Kind of a GPUError from its class name (GPUValidationError, GPUOutOfMemoryError, GPUInternalError). */
function kindOf(error: GpuErrorLike): WebGpuErrorKind {
  const name = (error as { constructor?: { name?: string } }).constructor?.name ?? '';
  if (/OutOfMemory/i.test(name)) return 'out-of-memory';
  if (/Internal/i.test(name)) return 'internal';
  return 'validation';
}

/** Dawn's message: the error line, then " - While …" context lines naming the pipeline; keep it readable. */
function tidyMessage(message: string, maxLines = 4): string {
  const lines = message.split('\n').map((l) => l.trim()).filter((l) => l !== '' && l !== 'validation:');
  const unique = lines.filter((l, i) => lines.indexOf(l) === i);
  return unique.slice(0, maxLines).join(' ');
}

export class WebGpuGuard {
  /** Errors the device reported that have not been thrown yet. */
  private reported: Reported[] = [];
  /** Tensors whose values an error destroyed → the error's short description. */
  private readonly lost = new WeakMap<DataId, string>();
  /** Tensors written by commands in the open (not yet submitted) command buffer. */
  private inFlight: DataId[] = [];
  private submits = 0;
  private resetting = false;
  private deviceLost: WebGpuError | undefined;

  private readonly original: Pick<WebGpuBackendLike, 'runWebGPUProgram' | 'uploadToGPU' | 'submitQueue' | 'read' | 'readSync' | 'dispose'>;

  constructor(private readonly backend: WebGpuBackendLike, private readonly device: GpuDeviceLike) {
    const b = backend;
    this.original = {
      runWebGPUProgram: b.runWebGPUProgram, uploadToGPU: b.uploadToGPU, submitQueue: b.submitQueue,
      read: b.read, readSync: b.readSync, dispose: b.dispose,
    };
    device.onuncapturederror = (event) => {
      event.preventDefault?.(); // Dawn would also print it: it is thrown instead
      if (!this.resetting) this.reported.push({ kind: kindOf(event.error), message: tidyMessage(event.error.message) });
    };
    device.lost.then((info) => {
      this.deviceLost = new WebGpuError(
        `the GPU device was lost (${info.reason ?? 'unknown reason'}: ${tidyMessage(info.message, 2) || 'no message'}); `
        + 'every tensor on it is gone. Restart the process (a driver reset, a GPU shared with another program or '
        + 'running out of GPU memory can cause this).', 'device-lost');
    }, () => undefined);
    b.runWebGPUProgram = (program, inputs, dtype, uniforms, output) => this.run(program, inputs, dtype, uniforms, output);
    b.uploadToGPU = (dataId) => this.upload(dataId);
    b.submitQueue = () => this.submit();
    b.read = (dataId) => this.read(dataId);
    b.readSync = (dataId) => this.readSync(dataId);
    b.dispose = () => {
      this.original.dispose.call(b);
      device.destroy(); // frees the GPU memory; tfjs' dispose leaves the device alive
    };
  }

  /** The device-loss error once the device is gone (tests; the next operation throws it anyway). */
  get lostDevice(): WebGpuError | undefined {
    return this.deviceLost;
  }

  private run(
    program: WebGpuProgramLike, inputs: TensorInfoLike[], dtype: string, uniforms: unknown, output?: TensorInfoLike,
  ): TensorInfoLike {
    const name = program.constructor.name || 'a WebGPU program';
    this.throwPending(`an operation before ${name}`);
    inputs.forEach((t, i) => this.throwIfLost(t.dataId, `${name}: input ${i} [${t.shape.join(', ')}]`));
    // Make the output here (as tfjs would) so that it can be released if the program fails.
    const out = output ?? this.backend.makeTensorInfo(program.outputShape, dtype);
    const submitsBefore = this.submits;
    let result: TensorInfoLike;
    try {
      result = this.original.runWebGPUProgram.call(this.backend, program, inputs, dtype, uniforms, out);
    } catch (err) {
      this.releaseFailedOutput(out, output !== undefined);
      if (err instanceof WebGpuError) throw err;
      if (this.reported.length > 0) this.fail(name, program); // a JS exception that follows from a GPU error
      throw err;
    }
    if (this.reported.length > 0) {
      this.releaseFailedOutput(out, output !== undefined);
      this.fail(name, program);
    }
    // A submit inside the call (tfjs submits every 15 dispatches) already committed this output.
    if (this.submits === submitsBefore) this.inFlight.push(result.dataId);
    return result;
  }

  /** Our own output goes away; one the caller passed in (and still holds) is marked lost with the buffer. */
  private releaseFailedOutput(out: TensorInfoLike, callersOwn: boolean): void {
    if (callersOwn) this.inFlight.push(out.dataId);
    else this.backend.disposeData(out.dataId, true);
  }

  private upload(dataId: DataId): void {
    const data = this.backend.tensorMap.get(dataId);
    const fresh = data !== undefined && data.resource == null;
    const staged = this.backend.stagingPendingDisposal.length;
    this.original.uploadToGPU.call(this.backend, dataId);
    // Values copied through a staging buffer arrive only when this command buffer runs: lost with it if it fails.
    if (fresh && this.backend.stagingPendingDisposal.length > staged) this.inFlight.push(dataId);
  }

  private submit(): void {
    if (this.deviceLost) throw this.deviceLost;
    this.original.submitQueue.call(this.backend);
    this.submits++;
    if (this.reported.length > 0) this.fail('submitting queued GPU work');
    this.inFlight = [];
  }

  private async read(dataId: DataId): Promise<unknown> {
    this.throwIfLost(dataId, 'reading a tensor');
    this.throwPending('an operation before this read');
    try {
      return await this.original.read.call(this.backend, dataId);
    } catch (err) {
      if (err instanceof WebGpuError) throw err;
      if (this.deviceLost) throw this.deviceLost;
      if (this.reported.length > 0) this.fail('reading a tensor');
      throw new WebGpuError(`reading a tensor from the GPU failed: ${err instanceof Error ? err.message : String(err)}`, 'internal');
    }
  }

  private readSync(dataId: DataId): unknown {
    this.throwIfLost(dataId, 'reading a tensor');
    const data = this.backend.tensorMap.get(dataId);
    if (data !== undefined && data.values == null && data.resource != null) {
      throw new WebGpuError(
        'dataSync() / arraySync() cannot read a tensor computed on the GPU in Node (tfjs\' webgpu backend reads '
        + 'synchronously only through a browser canvas): use `await tensor.data()` or `await tensor.array()`.', 'sync-read');
    }
    return this.original.readSync.call(this.backend, dataId);
  }

  private throwIfLost(dataId: DataId, what: string): void {
    const why = this.lost.get(dataId);
    if (why !== undefined) {
      throw new WebGpuError(`${what}: this value was lost — it was computed in a WebGPU command buffer that an `
        + `earlier error invalidated (${why}). Recompute it (and everything derived from it).`, 'lost-result');
    }
  }

  private throwPending(where: string): void {
    if (this.deviceLost) {
      throw this.deviceLost;
    }
    if (this.reported.length > 0) this.fail(where);
  }

  /**
   * Mark the open command buffer's results lost, drop that buffer, and throw the first reported error. The failing
   * program's pipeline leaves tfjs' cache, so that a retry compiles again and reports the cause again, instead of
   * "[Invalid ComputePipeline] is invalid due to a previous error".
   */
  private fail(where: string, program?: WebGpuProgramLike): never {
    if (program?.shaderKey !== undefined) delete this.backend.pipelineCache[program.shaderKey];
    const errors = this.reported;
    this.reported = [];
    const victims = this.inFlight;
    this.inFlight = [];
    const first = errors[0];
    const short = `WebGPU ${first.kind} error in ${where}: ${first.message.slice(0, 300)}`;
    for (const id of victims) this.lost.set(id, short);
    this.dropOpenCommandBuffer();
    const more = errors.length > 1 ? ` (${errors.length - 1} follow-up error${errors.length > 2 ? 's' : ''} not shown)` : '';
    const lostPart = victims.length > 0
      ? ` ${victims.length} other result${victims.length === 1 ? ' was' : 's were'} recorded in the same command buffer `
        + 'and are lost: reading or using them throws.'
      : '';
    throw new WebGpuError(`WebGPU ${first.kind} error in ${where}: ${first.message}${more}.${lostPart} `
      + 'Operations after this one run normally.', first.kind);
  }

  /** Submit (or discard) whatever tfjs had recorded, inside error scopes so its now-expected errors stay quiet. */
  private dropOpenCommandBuffer(): void {
    this.resetting = true;
    const filters = ['validation', 'out-of-memory', 'internal'] as const;
    for (const f of filters) this.device.pushErrorScope(f);
    try {
      this.backend.endComputePassEncoder();
      if (this.backend.commandEncoder) this.original.submitQueue.call(this.backend); // also releases pending buffers
    } catch {
      // the buffer is invalid anyway; what matters is that tfjs starts a new one
      this.backend.commandEncoder = null;
    } finally {
      for (let i = 0; i < filters.length; i++) this.device.popErrorScope().catch(() => undefined);
      this.resetting = false;
      this.reported = [];
    }
  }
}

const guards = new WeakMap<object, WebGpuGuard>();

/** Install the guard on a WebGPUBackend instance (once). */
export function guardWebGpuBackend(backend: WebGpuBackendLike, device: GpuDeviceLike): WebGpuGuard {
  let g = guards.get(backend);
  if (!g) {
    g = new WebGpuGuard(backend, device);
    guards.set(backend, g);
  }
  return g;
}

/** The guard of a backend instance, if lib started it. */
export function webGpuGuardOf(backend: object): WebGpuGuard | undefined {
  return guards.get(backend);
}
