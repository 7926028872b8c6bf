/**
 * A course model (lib/models) as a data-parallel replica: the loss is lib/train's `stepLoss` (ε-MSE for ε-prediction)
 * on pre-drawn inputs { x0, noise, t, classes? }, so that the batch split cannot change what is computed.
 * Dropout masks are drawn per shard from ShardContext.seed (the step's seed + the shard's first row: same statistics,
 * not bit-equal to a one-thread run); the course's configs use no dropout.
 */
import type * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors';
import { createModel, type DiffusionModel, type ModelConfig } from '../models/index';
import { NoiseSchedule, type ScheduleJSON } from '../schedule';
import type { LossWeighting } from '../losses';
import { stepLoss } from '../train/trainer';
import { asyncDenoiser, type AsyncDenoiser } from '../samplers/types';
import type { DataParallelTrainer } from './trainer';
import type { Replica, ReplicaSpec, ShardContext } from './types';

export interface ModelReplicaOptions {
  config: ModelConfig;
  /** NoiseSchedule.toJSON(); default linear, T = 1000. */
  schedule?: ScheduleJSON;
  /** The train config's lossWeighting (default 'none'). */
  weighting?: LossWeighting;
}

export interface ModelReplica extends Replica {
  model: DiffusionModel<ModelConfig>;
  schedule: NoiseSchedule;
}

/** Factory used by DataParallelTrainer in every thread (exported by name: see modelReplicaSpec). */
export function makeModelReplica(options: unknown): ModelReplica {
  const o = options as ModelReplicaOptions;
  if (!o || typeof o !== 'object' || !o.config) throw new InvalidArgumentError('makeModelReplica: options need a model config');
  const model = createModel(o.config);
  const schedule = o.schedule ? NoiseSchedule.fromJSON(o.schedule) : NoiseSchedule.linear(1000);
  return {
    model,
    schedule,
    variables: model.params.variables(),
    loss(inputs: Record<string, tf.Tensor>, context: ShardContext): tf.Scalar {
      const { x0, noise, t, classes } = inputs;
      if (!x0 || !noise || !t) throw new InvalidArgumentError(`model replica: inputs need x0, noise and t; got ${Object.keys(inputs)}`);
      return stepLoss(model, schedule, { x0, noise, t: t as tf.Tensor1D, classes: classes as tf.Tensor1D | undefined, dropoutSeed: context.seed >>> 0 }, o.weighting ?? 'none');
    },
    apply(inputs: Record<string, tf.Tensor>): tf.Tensor {
      const { x, t, classes } = inputs;
      if (!x || !t) throw new InvalidArgumentError(`model replica: apply needs x and t; got ${Object.keys(inputs)}`);
      return model.apply(x, t as tf.Tensor1D, classes as tf.Tensor1D | undefined);
    },
    dispose: () => model.dispose(),
  };
}

/**
 * An AsyncDenoiser (for lib/samplers) that runs each model call split over the trainer's threads: sampling on every
 * core. Uses the main replica's current weights; swap EMA weights into `trainer.replica` first to sample from them.
 */
export function parallelDenoiser(trainer: DataParallelTrainer): AsyncDenoiser {
  return asyncDenoiser((x, t, classes) => trainer.apply(classes ? { x, t, classes } : { x, t }));
}

export function modelReplicaSpec(config: ModelConfig, schedule?: NoiseSchedule, weighting?: LossWeighting): ReplicaSpec {
  const options: ModelReplicaOptions = { config, schedule: schedule?.toJSON(), ...(weighting !== undefined ? { weighting } : {}) };
  return { module: __filename, exportName: 'makeModelReplica', options };
}
