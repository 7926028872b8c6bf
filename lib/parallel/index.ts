/** Data-parallel training over worker threads (see trainer.ts for the why). */
export { DataParallelTrainer, WorkerError } from './trainer';
export type { DataParallelOptions, GradientApplier, StepResult, StepTiming } from './trainer';
export { shardSizes, shardGradients } from './shard';
export type { Replica, ReplicaFactory, ReplicaSpec } from './types';
export { makeModelReplica, modelReplicaSpec, parallelDenoiser } from './model-replica';
export type { ModelReplica, ModelReplicaOptions } from './model-replica';
export { ParallelCourseTrainer } from './course-trainer';
export { peakRssBytes, wasmHeapBytes } from './memory';
export { threadCpuMs } from './cputime';
