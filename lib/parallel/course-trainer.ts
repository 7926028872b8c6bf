/**
 * lib/train's training step with the gradients computed data-parallel on several threads. Everything but the gradients
 * is lib/train's own: drawStepInputs before, applyStepGradients after (NaN guards, clipping, warm-up LR, Adam, EMA,
 * history), FitLoop around, saveTrainer / openResume for checkpoints.
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../models/index';
import type { NoiseSchedule } from '../schedule';
import { Adam } from '../train/adam';
import { Ema } from '../train/ema';
import { openResume, type ResumeOptions } from '../train/state';
import {
  applyStepGradients, drawStepInputs, FitLoop, meanOfLast, validateTrainConfig,
  type Batch, type BatchSource, type FitOptions, type StepResult, type StepState, type TrainConfig,
} from '../train/trainer';
import type { ModelReplica } from './model-replica';
import { modelReplicaSpec } from './model-replica';
import { DataParallelTrainer, type StepTiming } from './trainer';

export class ParallelCourseTrainer implements StepState {
  /** Steps completed so far (= the index of the next step). */
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
      optimizer: null, // applyStepGradients applies lib/train's Adam
    });
    const vars = parallel.replica.variables;
    return new ParallelCourseTrainer(parallel, new Adam(vars), new Ema(vars, config.emaDecay), config);
  }

  /**
   * Continues a checkpoint written by saveTrainer (from this class or lib/train's Trainer) on `threads` threads:
   * weights, EMA, Adam moments, step and loss history as saved.
   */
  static async resume(file: string, opts: ResumeOptions & { threads?: number; microBatch?: number } = {}): Promise<ParallelCourseTrainer> {
    const point = openResume(file, opts);
    const trainer = await ParallelCourseTrainer.create(point.header.model, point.schedule, point.train, opts.threads, opts.microBatch);
    try {
      point.restore(trainer); // the workers get the restored weights with the next step's gradients() call
      return trainer;
    } catch (e) {
      await trainer.dispose();
      throw e;
    }
  }

  /** Compute threads, the main one included. */
  get threads(): number {
    return this.parallel.threads;
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
    const b = inputs.x0.shape[0];
    // row i carries seed + i, so each shard (and micro-batch) draws its own dropout masks, new at every step
    const seeds = tf.tensor1d(Array.from({ length: b }, (_, i) => (inputs.dropoutSeed + i) | 0), 'int32');
    const named: Record<string, tf.Tensor> = { x0: inputs.x0, noise: inputs.noise, t: inputs.t, dropoutSeed: seeds };
    if (inputs.classes) named.classes = inputs.classes;
    let result;
    try {
      result = await this.parallel.gradients(named);
    } finally {
      tf.dispose([inputs.x0, inputs.noise, inputs.t, inputs.classes, seeds]);
    }
    return { ...applyStepGradients(this, result.grads, result.loss), timing: result.timing };
  }

  /**
   * Train from the current step to opts.until (default config.steps) with lib/train's fit options (progress, due
   * checkpoints, early stop), as Trainer.fit does. A worker failure rejects with WorkerError after the last completed
   * step: weights, optimizer and every checkpoint taken so far are those of that step.
   */
  async fit(source: BatchSource, opts: FitOptions = {}): Promise<void> {
    const loop = new FitLoop(this, opts);
    while (loop.running()) {
      if (loop.after(await this.trainStep(source(this.step)))) break;
    }
    loop.done();
  }

  /** Mean loss over the last `n` steps (NaN before the first). */
  recentLoss(n = 100): number {
    return meanOfLast(this.lossHistory, n);
  }

  /** Stops the workers and frees the optimizer, the EMA and the main replica (its model included). */
  async dispose(): Promise<void> {
    this.optimizer.dispose();
    this.ema.dispose();
    await this.parallel.dispose();
  }
}
