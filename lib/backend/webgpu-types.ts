/**
 * The small part of the WebGPU API (and of tfjs' WebGPUBackend) that lib touches, typed here so that lib compiles
 * without the DOM-flavoured @webgpu/types (tslab compiles lib with its own, fixed options).
 */

export interface GpuAdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}

/** GPUSupportedLimits: a native object whose limits are read by name (they are not enumerable own properties). */
export type GpuLimitsLike = { readonly [name: string]: number | undefined };

export interface GpuAdapterLike {
  readonly info?: GpuAdapterInfoLike;
  /** Older spelling (WebGPU before 2024) of info.isFallbackAdapter. */
  readonly isFallbackAdapter?: boolean;
  readonly features: { has(name: string): boolean };
  readonly limits: GpuLimitsLike;
  requestDevice(descriptor?: {
    requiredFeatures?: string[];
    requiredLimits?: Record<string, number>;
    label?: string;
  }): Promise<GpuDeviceLike>;
}

export interface GpuLike {
  requestAdapter(options?: { powerPreference?: string; featureLevel?: string }): Promise<GpuAdapterLike | null>;
}

/** GPUError and its subclasses GPUValidationError, GPUOutOfMemoryError, GPUInternalError. */
export interface GpuErrorLike {
  readonly message: string;
}

export interface GpuDeviceLostInfoLike {
  readonly reason?: string;
  readonly message: string;
}

export interface GpuDeviceLike {
  readonly limits: GpuLimitsLike;
  readonly features: { has(name: string): boolean };
  readonly lost: Promise<GpuDeviceLostInfoLike>;
  onuncapturederror: ((event: { error: GpuErrorLike; preventDefault?(): void }) => void) | null;
  pushErrorScope(filter: 'validation' | 'out-of-memory' | 'internal'): void;
  popErrorScope(): Promise<GpuErrorLike | null>;
  destroy(): void;
}

/** What `require('webgpu')` (Dawn's Node binding) exports. */
export interface DawnModule {
  create(flags: string[]): GpuLike;
  globals: Record<string, unknown>;
}

/** tfjs' opaque tensor handle: compared by identity. */
export type DataId = object;

export interface TensorInfoLike {
  dataId: DataId;
  shape: number[];
  dtype: string;
}

export interface WebGpuProgramLike {
  outputShape: number[];
  /** Set by tfjs' runWebGPUProgram to the key of the compiled pipeline. */
  shaderKey?: string;
  variableNames: string[];
  constructor: { name: string };
}

/**
 * The members of tfjs-backend-webgpu 4.22's WebGPUBackend that lib/backend/webgpu-guard.ts wraps or reads. Some are
 * internal to tfjs (tensorMap, commandEncoder, stagingPendingDisposal): the version is pinned to 4.22.0, and the
 * guard's tests fail if a later version renames them.
 */
export interface WebGpuBackendLike {
  device: GpuDeviceLike;
  commandEncoder: unknown;
  stagingPendingDisposal: unknown[];
  /** Compiled pipelines by shader key (a failed compilation stays cached as an invalid pipeline). */
  pipelineCache: Record<string, unknown>;
  tensorMap: { get(dataId: DataId): { values: unknown; resource: unknown } | undefined; has(dataId: DataId): boolean };
  runWebGPUProgram(
    program: WebGpuProgramLike, inputs: TensorInfoLike[], outputDtype: string, programDefinedUniform?: unknown,
    output?: TensorInfoLike,
  ): TensorInfoLike;
  makeTensorInfo(shape: number[], dtype: string, values?: unknown): TensorInfoLike;
  uploadToGPU(dataId: DataId): void;
  submitQueue(): void;
  endComputePassEncoder(): void;
  read(dataId: DataId): Promise<unknown>;
  readSync(dataId: DataId): unknown;
  disposeData(dataId: DataId, force?: boolean): boolean;
  dispose(): void;
}
