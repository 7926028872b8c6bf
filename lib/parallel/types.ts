/**
 * The contract between the data-parallel trainer and the model it trains.
 *
 * Functions cannot cross a thread boundary, so every thread builds its own copy of the model ("replica") from a
 * `ReplicaSpec`: a module path, the name of a factory it exports, and plain options (structured-cloneable). The main
 * thread's replica holds the master weights; workers' replicas receive them before each step.
 */
import type * as tf from '@tensorflow/tfjs';

/** What a shard's loss gets besides its tensors. */
export interface ShardContext {
  /**
   * A seed for the shard's random draws (e.g. dropout masks): the step's seed plus the index of the shard's (or
   * micro-batch's) first row in the whole batch, so every shard draws its own masks, new at every step.
   */
  seed: number;
}

export interface Replica {
  /** Trainable variables in a fixed order; every replica built from the same spec lists the same shapes. */
  variables: tf.Variable[];
  /**
   * The training loss on one shard of the batch: the MEAN over the shard's examples (so that shard gradients weighted
   * by shard size average to the full-batch gradient). It must be deterministic given `inputs`: draw timesteps and noise
   * for the whole batch beforehand and pass them in as inputs, so that the split cannot change the result.
   * Called inside tf.variableGrads; it may create intermediate tensors freely.
   */
  loss(inputs: Record<string, tf.Tensor>, context: ShardContext): tf.Scalar;
  /**
   * Optional inference on a shard (e.g. the denoiser's output for { x, t, classes }), row i of the output belonging to
   * example i: DataParallelTrainer.apply splits a batch over the threads with it (sampling on every core).
   */
  apply?(inputs: Record<string, tf.Tensor>): tf.Tensor;
  /** Frees the replica's variables (called when the trainer is disposed). */
  dispose?(): void;
}

/** A module exporting `exportName: (options) => Replica | Promise<Replica>`. */
export interface ReplicaSpec {
  /** Absolute path of the module (a .ts file is loaded through ts-node in the workers). */
  module: string;
  exportName: string;
  options?: unknown;
}

export type ReplicaFactory = (options: unknown) => Replica | Promise<Replica>;

/** A tensor's data as it travels between threads. */
export interface WireTensor {
  data: Float32Array | Int32Array;
  shape: number[];
  dtype: 'float32' | 'int32';
}

/** Main thread → worker. */
export type ToWorker =
  | { type: 'init'; spec: ReplicaSpec; weights: SharedArrayBuffer; grads: SharedArrayBuffer; microBatch?: number }
  /** `seed`: ShardContext.seed of this worker's shard. */
  | { type: 'step'; id: number; weightsVersion: number; seed: number; inputs: Record<string, WireTensor> }
  /** Inference on this worker's rows; answered with 'applied'. */
  | { type: 'apply'; id: number; weightsVersion: number; inputs: Record<string, WireTensor> }
  | { type: 'close' };

/** Worker → main thread. */
export type FromWorker =
  | { type: 'ready'; sizes: number[]; backend: string }
  | { type: 'done'; id: number; loss: number; computeMs: number; cpuMs?: number; heapBytes?: number }
  | { type: 'applied'; id: number; output: WireTensor }
  | { type: 'error'; id?: number; name: string; message: string; stack?: string };
