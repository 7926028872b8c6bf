/**
 * lib/train's training step (warm-up LR, gradient clipping by global norm, Adam, EMA, NaN guard) with the gradients
 * computed data-parallel on several threads. The pieces are lib/train's own (drawStepInputs, clipByGlobalNorm,
 * warmupLr, Adam, Ema); only where the gradients come from differs from Trainer.trainStep.
 */
import * as tf from '@tensorflow/tfjs';
import { NonFiniteError } from '../errors';
import type { ModelConfig } from '../models/index';
import type { NoiseSchedule } from '../schedule';
import { Adam, clipByGlobalNorm, warmupLr } from '../train/adam';
import { Ema } from '../train/ema';
import { drawStepInputs, validateTrainConfig, type Batch, type StepResult, type TrainConfig } from '../train/trainer';
import type { ModelReplica } from './model-replica';
import { modelReplicaSpec } from './model-replica';
import { DataParallelTrainer, type StepTiming } from './trainer';

export class ParallelCourseTrainer {
  step = 0;
  readonly lossHistory: number[] = [];

  private constructor(
    readonly parallel: DataParallelTrainer,
    readonly optimizer: Adam,
    readonly ema: Ema,
    readonly config: TrainConfig,
  ) {}

  /** Builds the model from `modelConfig` on every thread (same seed → same initial weights). */
  static async create(
    modelConfig: ModelConfig, schedule: NoiseSchedule, config: TrainConfig, threads?: number, microBatch?: number,
  ): Promise<ParallelCourseTrainer> {
    validateTrainConfig(config);
    const parallel = await DataParallelTrainer.create(modelReplicaSpec(modelConfig, schedule), {
      threads,
      microBatch,
      optimizer: null, // this class applies lib/train's Adam itself
    });
    const vars = parallel.replica.variables;
    return new ParallelCourseTrainer(parallel, new Adam(vars), new Ema(vars, config.emaDecay), config);
  }

  /** The main thread's replica: its model holds the master weights (sample, checkpoint, swap in EMA from here). */
  get replica(): ModelReplica {
    return this.parallel.replica as ModelReplica;
  }

  /** Same names as lib/train's Trainer (model, schedule, step, config, lossHistory, ema, optimizer), for checkpoints. */
  get model(): ModelReplica['model'] {
    return this.replica.model;
  }

  get schedule(): NoiseSchedule {
    return this.replica.schedule;
  }

  /** As Trainer.trainStep, with `timing` of the sharded gradient computation. `batch` is disposed here. */
  async trainStep(batch: Batch): Promise<StepResult & { timing: StepTiming }> {
    const r = this.replica;
    const inputs = drawStepInputs(batch, r.schedule, r.model.numClasses, this.config, this.step);
    tf.dispose([batch.x, batch.y]);
    const named: Record<string, tf.Tensor> = { x0: inputs.x0, noise: inputs.noise, t: inputs.t };
    if (inputs.classes) named.classes = inputs.classes;
    let result;
    try {
      result = await this.parallel.gradients(named);
    } finally {
      tf.dispose([inputs.x0, inputs.noise, inputs.t, inputs.classes]);
    }
    const { loss, grads, timing } = result;
    if (!Number.isFinite(loss)) {
      tf.dispose(grads);
      throw new NonFiniteError(`training loss is ${loss} at step ${this.step}: stopping (weights keep the last good step; try a lower lr or gradClip)`);
    }
    const clipped = clipByGlobalNorm(grads, this.config.gradClip);
    tf.dispose(grads);
    if (!Number.isFinite(clipped.norm)) {
      tf.dispose(clipped.grads);
      throw new NonFiniteError(`gradient norm is ${clipped.norm} at step ${this.step}: stopping (weights keep the last good step)`);
    }
    const lr = warmupLr(this.step, this.config.lr, this.config.warmupSteps);
    this.optimizer.apply(clipped.grads, lr);
    tf.dispose(clipped.grads);
    this.ema.update();
    this.lossHistory.push(loss);
    const out = { step: this.step, loss, gradNorm: clipped.norm, lr, timing };
    this.step += 1;
    return out;
  }

  async dispose(): Promise<void> {
    this.optimizer.dispose();
    this.ema.dispose();
    await this.parallel.dispose();
  }
}
