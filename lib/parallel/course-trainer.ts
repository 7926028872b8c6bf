/**
 * lib/train's training step with the gradients computed data-parallel on several threads. Everything but the gradients
 * is lib/train's own: drawStepInputs before, applyStepGradients after (on-device NaN guard, clipping, warm-up LR, Adam,
 * EMA), readSteps (batched reads of the losses), FitLoop around, saveTrainer / openResume for checkpoints.
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../models/index';
import type { NoiseSchedule } from '../schedule';
import { Adam } from '../train/adam';
import { Ema } from '../train/ema';
import { openResume, type ResumeOptions } from '../train/state';
import {
  applyStepGradients, drawStepInputs, FitLoop, meanOfLast, PendingSteps, readSteps, validateTrainConfig,
  type Batch, type BatchSource, type FitOptions, type StepResult, type StepState, type TrainConfig,
} from '../train/trainer';
import type { ModelReplica } from './model-replica';
import { modelReplicaSpec } from './model-replica';
import { DataParallelTrainer, type StepTiming } from './trainer';

export class ParallelCourseTrainer implements StepState {
  /** Steps applied so far (= the index of the next step). */
  step = 0;
  readonly lossHistory: number[] = [];
  readonly pending = new PendingSteps();

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
    const parallel = await DataParallelTrainer.create(modelReplicaSpec(modelConfig, schedule, config.lossWeighting), {
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

  /**
   * As Trainer.queueStep: computes the gradients on every thread and applies the step on the device (nothing read back
   * but what the threads exchange); returns the timing of the sharded gradient computation. `batch` is disposed here.
   */
  async queueStep(batch: Batch): Promise<StepTiming> {
    const r = this.replica;
    const inputs = drawStepInputs(batch, r.schedule, r.model.numClasses, this.config, this.step);
    tf.dispose([batch.x, batch.y]);
    const named: Record<string, tf.Tensor> = { x0: inputs.x0, noise: inputs.noise, t: inputs.t };
    if (inputs.classes) named.classes = inputs.classes;
    let result;
    try {
      // the shard starting at row i draws its dropout masks from seed + i: new at every step, different per shard
      result = await this.parallel.gradients(named, inputs.dropoutSeed);
    } finally {
      tf.dispose([inputs.x0, inputs.noise, inputs.t, inputs.classes]);
    }
    applyStepGradients(this, result.grads, tf.scalar(result.loss));
    return result.timing;
  }

  /** As Trainer.trainStep (one step and its loss, read back), with `timing` of the sharded gradient computation. */
  async trainStep(batch: Batch): Promise<StepResult & { timing: StepTiming }> {
    const timing = await this.queueStep(batch);
    const results = await readSteps(this);
    return { ...results[results.length - 1], timing };
  }

  /**
   * Train from the current step to opts.until (default config.steps) with lib/train's fit options (progress, due
   * checkpoints, early stop, batched reads), as Trainer.fit does. A worker failure rejects with WorkerError after the
   * last completed step: weights, optimizer and every checkpoint taken so far are those of that step.
   */
  async fit(source: BatchSource, opts: FitOptions = {}): Promise<void> {
    const loop = new FitLoop(this, opts);
    while (loop.running()) {
      await this.queueStep(source(this.step));
      if (await loop.after()) break;
    }
    await loop.done();
  }

  /** Mean loss over the last `n` steps (NaN before the first). */
  recentLoss(n = 100): number {
    return meanOfLast(this.lossHistory, n);
  }

  /** Stops the workers and frees the optimizer, the EMA and the main replica (its model included). */
  async dispose(): Promise<void> {
    this.optimizer.dispose();
    this.ema.dispose();
    this.pending.dispose();
    await this.parallel.dispose();
  }
}
