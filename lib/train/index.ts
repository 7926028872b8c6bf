/**
 * Training: data → loss → gradients → Adam → EMA → checkpoint.
 *   trainer     Trainer (warm-up, clipping, EMA, class dropout, NaN guard, loss history), stepLoss, drawStepInputs;
 *               applyStepGradients (a step's tail after the gradients, nothing read back), readSteps (the batched,
 *               awaited read of losses and finite checks) and FitLoop (progress, checkpoints, early stop), shared with
 *               lib/parallel's ParallelCourseTrainer. Every read is awaited: one async API on every backend.
 *   adam / ema  the optimizer and the weight average, with state that checkpoints can save exactly
 *   data        epochSource: the batch of step n as a pure function of (seed, n), so resumption is exact
 *   checkpoint  the file format (header JSON + float32 blob + SHA-256) and atomic writes
 *   state       saveTrainer / resumeTrainer / openResume (into any CheckpointableTrainer) / loadModel (EMA weights for sampling)
 *   run-config  configs/<name>.json → model, schedule and train configs
 */
export * from './adam';
export * from './ema';
export * from './checkpoint';
export * from './trainer';
export * from './data';
export * from './state';
export * from './run-config';
// The baselines of notebook 10 (lib/models' Vae and Gan), trained through the pieces above.
export * from './baseline-trainer';
export * from './baseline-state';
export * from './baseline-config';
