/**
 * Data-parallel training on one machine: the wasm backend computes on ONE core in Node (its threaded build does not
 * load there), so a batch is split into shards that N threads — the main thread plus N−1 worker_threads, each holding
 * a replica of the model — differentiate at the same time. The main thread averages the shard gradients (weighted by
 * shard size, which equals the full-batch gradient of a mean loss), applies the optimizer to the master weights, and
 * publishes them through shared memory before the next step.
 *
 * Exact up to float rounding as long as the loss couples no examples (GroupNorm and LayerNorm are per example; batch
 * norm would not be) and all randomness (timesteps, noise) is drawn for the whole batch before the split.
 */
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { restoreDefaultBlasThreads, setBlasThreads } from '../backend/kernels/native-blas';
import * as tf from '@tensorflow/tfjs';
import { currentBackendReport } from '../backend/index';
import { BackendUnavailableError, DiffusionError, InvalidArgumentError, ShapeMismatchError } from '../errors';
import { threadCpuMs } from './cputime';
import { totalSize, writeFlat } from './flat';
import { batchSizeOf, shardGradients, shardSizes, sliceToWire } from './shard';
import type { FromWorker, Replica, ReplicaFactory, ReplicaSpec, ToWorker } from './types';

/** Anything that applies named gradients to the variables they are named after (tf.train.adam; any tf.Optimizer). */
export interface GradientApplier {
  applyGradients(grads: { name: string; tensor: tf.Tensor }[]): void;
}

export interface DataParallelOptions {
  /** Compute threads including the main thread (default: the number of cores). 1 = no workers. */
  threads?: number;
  /**
   * Applied on the main thread to the master weights by step(); default tf.train.adam(learningRate). `null`: none —
   * the caller takes gradients() and updates the weights itself (as ParallelCourseTrainer does with lib/train's Adam).
   */
  optimizer?: GradientApplier | null;
  /** For the default Adam (default 1e-3). */
  learningRate?: number;
  /**
   * Each thread differentiates its shard in chunks of at most this many examples (same gradients, less memory: the
   * wasm heap grows to the largest chunk's working set and never shrinks). Default: the whole shard at once.
   */
  microBatch?: number;
}

let singleBlasHolders = 0;
/** While any data-parallel group lives, OpenBLAS (if the native kernels are built) runs one thread per call. */
function holdSingleBlasThread(delta: 1 | -1): void {
  singleBlasHolders += delta;
  if (singleBlasHolders > 0) setBlasThreads(1);
  else restoreDefaultBlasThreads();
}

/**
 * Data-parallel training splits a batch over CPU cores. On webgpu the GPU already computes the whole batch in one
 * process; worker threads would each open a device of their own on the same GPU and exchange every step's gradients
 * through host memory (a read from the GPU per step and thread, which the trainer is built to avoid). Refused.
 */
function refuseGpuBackend(threads: number): void {
  if (threads > 1 && tf.getBackend() === 'webgpu') {
    throw new InvalidArgumentError(
      `data-parallel training on ${threads} threads splits a batch over CPU cores, but the backend is webgpu, where the `
      + 'GPU computes the whole batch in one process (each worker thread would open its own device on the same GPU and '
      + 'send its gradients through host memory every step): use --threads 1 (the default) on webgpu, or '
      + 'DIFFUSION_BACKEND=wasm to train data-parallel on the CPU cores');
  }
}

/** Where a step's time went (milliseconds), to see whether threads pay off. */
export interface StepTiming {
  total: number;
  /** Main thread's own shard (forward + backward). */
  mainCompute: number;
  /** Slowest worker's shard, measured inside the worker (0 with one thread). */
  workerCompute: number;
  /** Waiting for workers after the main shard was done. */
  wait: number;
  /** Averaging gradients + optimizer update + publishing weights. */
  reduceAndApply: number;
  /** CPU time (Linux) of the main thread's shard and of the busiest worker's: the wall times an idle machine would show. */
  mainCpu?: number;
  workerCpu?: number;
}

export interface StepResult {
  /** Mean loss over the whole batch. */
  loss: number;
  timing: StepTiming;
}

/** Error raised in a worker thread, re-thrown on the main thread with the worker's message. */
export class WorkerError extends DiffusionError {}

type Answer = Extract<FromWorker, { type: 'done' | 'applied' }>;

interface Pending {
  resolve: (m: Answer) => void;
  reject: (e: Error) => void;
}

class WorkerHandle {
  readonly grads: Float32Array;
  private pending = new Map<number, Pending>();
  private readyWaiter?: { resolve: (m: Extract<FromWorker, { type: 'ready' }>) => void; reject: (e: Error) => void };
  private failure?: Error;

  constructor(readonly worker: Worker, readonly gradsBuffer: SharedArrayBuffer) {
    this.grads = new Float32Array(gradsBuffer);
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (e) => this.fail(new WorkerError(`worker thread crashed: ${e.message}`)));
    worker.on('exit', (code) => {
      if (code !== 0) this.fail(new WorkerError(`worker thread exited with code ${code}`));
    });
  }

  private onMessage(m: FromWorker): void {
    if (m.type === 'ready') this.readyWaiter?.resolve(m);
    else if (m.type === 'done' || m.type === 'applied') {
      this.pending.get(m.id)?.resolve(m);
      this.pending.delete(m.id);
    } else if (m.type === 'error') {
      const e = new WorkerError(`in worker: ${m.name}: ${m.message}`);
      if (m.id !== undefined && this.pending.has(m.id)) {
        this.pending.get(m.id)!.reject(e);
        this.pending.delete(m.id);
      } else this.fail(e);
    }
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.readyWaiter?.reject(e);
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  ready(): Promise<Extract<FromWorker, { type: 'ready' }>> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => (this.readyWaiter = { resolve, reject }));
  }

  /** Sends a request and resolves with the worker's answer to it ('done' for a step, 'applied' for an apply). */
  run(msg: Extract<ToWorker, { type: 'step' }>): Promise<Extract<FromWorker, { type: 'done' }>>;
  run(msg: Extract<ToWorker, { type: 'apply' }>): Promise<Extract<FromWorker, { type: 'applied' }>>;
  run(msg: Extract<ToWorker, { type: 'step' | 'apply' }>): Promise<Answer> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.set(msg.id, { resolve, reject });
      this.worker.postMessage(msg);
    });
  }

  post(msg: ToWorker): void {
    this.worker.postMessage(msg);
  }

  get failed(): Error | undefined {
    return this.failure;
  }
}

function startWorker(tfBackend: string, gradsBuffer: SharedArrayBuffer): WorkerHandle {
  const isTs = __filename.endsWith('.ts');
  const entry = path.join(__dirname, `worker${isTs ? '.ts' : '.js'}`);
  // Node cannot load .ts itself: under ts-node (tests, scripts, tslab builds) the worker registers it first.
  const code = `${isTs ? "require('ts-node/register/transpile-only');" : ''} require(${JSON.stringify(entry)});`;
  return new WorkerHandle(new Worker(code, {
    eval: true,
    // the same backend as this thread: lib's choice (so wasm gets the course kernels), then tfjs' active one
    workerData: { prefer: currentBackendReport()?.name, tfBackend },
  }), gradsBuffer);
}

/** Every input's values, read back (awaited), for slicing into the workers' shards. */
async function readInputs(inputs: Record<string, tf.Tensor>): Promise<Record<string, Float32Array | Int32Array>> {
  const names = Object.keys(inputs);
  const values = await Promise.all(names.map((n) => inputs[n].data() as Promise<Float32Array | Int32Array>));
  return Object.fromEntries(names.map((n, i) => [n, values[i]]));
}

export class DataParallelTrainer {
  private stepId = 0;
  private weightsVersion = 0;
  private disposed = false;
  private readonly weights: Float32Array;
  private readonly ownsOptimizer: boolean;
  /** Each worker's wasm heap after its last step (bytes; empty before the first step or off wasm). */
  workerHeapBytes: number[] = [];

  private constructor(
    /** The main thread's replica: its variables are the master weights (sample from it, checkpoint it). */
    readonly replica: Replica,
    readonly threads: number,
    readonly optimizer: GradientApplier | null,
    private readonly workers: WorkerHandle[],
    weightsBuffer: SharedArrayBuffer,
    ownsOptimizer: boolean,
    readonly microBatch?: number,
  ) {
    this.weights = new Float32Array(weightsBuffer);
    this.ownsOptimizer = ownsOptimizer;
  }

  /** Builds the main replica, starts `threads − 1` workers with their own replicas and checks they match. */
  static async create(spec: ReplicaSpec, options: DataParallelOptions = {}): Promise<DataParallelTrainer> {
    const threads = options.threads ?? (os.availableParallelism?.() ?? os.cpus().length);
    if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
      throw new InvalidArgumentError(`threads must be an integer in 1…64, got ${threads}`);
    }
    refuseGpuBackend(threads);
    const mb = options.microBatch;
    if (mb !== undefined && !(Number.isInteger(mb) && mb > 0)) {
      throw new InvalidArgumentError(`microBatch must be a positive integer, got ${mb}`);
    }
    if (!path.isAbsolute(spec.module)) {
      throw new InvalidArgumentError(`ReplicaSpec.module must be an absolute path (workers resolve it), got '${spec.module}'`);
    }
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const factory = (require(spec.module) as Record<string, unknown>)[spec.exportName];
    if (typeof factory !== 'function') {
      throw new InvalidArgumentError(`module ${spec.module} exports no function '${spec.exportName}'`);
    }
    const replica = await (factory as ReplicaFactory)(spec.options);
    const sizes = replica.variables.map((v) => v.size);
    const n = totalSize(sizes);
    const weightsBuffer = new SharedArrayBuffer(4 * n);
    const backend = tf.getBackend();
    if (!backend) throw new BackendUnavailableError('no tfjs backend is active; call initBackend() first');

    const workers: WorkerHandle[] = [];
    try {
      // start every worker first, then wait: their start-ups (tfjs + model build) overlap
      const ready = [];
      for (let i = 1; i < threads; i++) {
        const h = startWorker(backend, new SharedArrayBuffer(4 * n));
        workers.push(h);
        ready.push(h.ready());
        h.post({ type: 'init', spec, weights: weightsBuffer, grads: h.gradsBuffer, microBatch: mb });
      }
      const settled = await Promise.allSettled(ready);
      for (const s of settled) {
        if (s.status === 'rejected') throw s.reason;
        const r = s.value;
        if (r.backend !== backend) throw new BackendUnavailableError(`worker runs backend '${r.backend}', main '${backend}'`);
        if (r.sizes.length !== sizes.length || r.sizes.some((x, k) => x !== sizes[k])) {
          throw new ShapeMismatchError(`worker replica has variables of sizes [${r.sizes}], main [${sizes}]; the factory must be deterministic`);
        }
      }
    } catch (e) {
      await Promise.all(workers.map((h) => h.worker.terminate()));
      replica.dispose?.();
      throw e;
    }
    const ownsOptimizer = options.optimizer === undefined;
    const optimizer = options.optimizer === undefined ? tf.train.adam(options.learningRate ?? 1e-3) : options.optimizer;
    // Every core already runs a JS thread: native BLAS calls must not start threads of their own on top.
    if (threads > 1) holdSingleBlasThread(+1);
    return new DataParallelTrainer(replica, threads, optimizer, workers, weightsBuffer, ownsOptimizer, mb);
  }

  /** The worker threads (threads − 1 of them), e.g. to watch their resource use; terminating one fails the next step. */
  get workerThreads(): readonly Worker[] {
    return this.workers.map((h) => h.worker);
  }

  /**
   * The full-batch mean loss and its gradients (variable order), computed in shards on all threads.
   * Does not change the weights. The caller owns the returned tensors. `seed` is the batch's ShardContext seed: the
   * shard starting at row r gets seed + r.
   */
  async gradients(inputs: Record<string, tf.Tensor>, seed = 0): Promise<{ loss: number; grads: tf.Tensor[]; timing: StepTiming }> {
    if (this.disposed) throw new InvalidArgumentError('this DataParallelTrainer was disposed');
    const t0 = performance.now();
    const batch = batchSizeOf(inputs);
    if (batch < this.threads) {
      throw new InvalidArgumentError(`batch of ${batch} cannot be split over ${this.threads} threads; use a batch ≥ threads`);
    }
    const sizes = shardSizes(batch, this.threads);

    // Publish the current master weights (cheap next to a step; also covers weights changed outside step()).
    const vars = this.replica.variables;
    if (this.workers.length > 0) {
      await writeFlat(vars, this.weights);
      this.weightsVersion++;
    }

    // Hand shards 1… to the workers first, so they compute while the main thread does shard 0.
    const data = this.workers.length > 0 ? await readInputs(inputs) : {};
    const runs: Promise<Extract<FromWorker, { type: 'done' }>>[] = [];
    let start = sizes[0];
    this.workers.forEach((h, k) => {
      const size = sizes[k + 1];
      runs.push(h.run({ type: 'step', id: ++this.stepId, weightsVersion: this.weightsVersion, seed: (seed + start) | 0, inputs: sliceToWire(inputs, data, start, size) }));
      start += size;
    });
    // A rejected worker promise must not go unhandled while the main shard computes.
    const settled = Promise.allSettled(runs);

    const tMain = performance.now();
    const cMain = threadCpuMs();
    const mainShard = tf.tidy(() => {
      const own: Record<string, tf.Tensor> = {};
      for (const [name, t] of Object.entries(inputs)) own[name] = tf.slice(t, 0, sizes[0]);
      const { loss, grads } = shardGradients(this.replica, own, this.microBatch, seed);
      return { loss, grads };
    });
    const mainLoss = (await mainShard.loss.data())[0];
    const mainGrads = await Promise.all(mainShard.grads.map((g) => g.data() as Promise<Float32Array>));
    tf.dispose([mainShard.loss, ...mainShard.grads]);
    const tMainDone = performance.now();
    const cMainDone = threadCpuMs();

    const results = await settled;
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
    if (failed) throw failed.reason;
    const done = results.map((r) => (r as PromiseFulfilledResult<Extract<FromWorker, { type: 'done' }>>).value);
    const tWait = performance.now();
    this.workerHeapBytes = done.map((d) => d.heapBytes ?? 0);

    // Weighted average: Σ_k (n_k / B) · g_k, accumulated in a fixed order (deterministic).
    let loss = (sizes[0] / batch) * mainLoss;
    done.forEach((d, k) => (loss += (sizes[k + 1] / batch) * d.loss));
    const grads: tf.Tensor[] = [];
    let offset = 0;
    vars.forEach((v, j) => {
      const acc = new Float32Array(v.size);
      const w0 = sizes[0] / batch;
      const g0 = mainGrads[j];
      for (let i = 0; i < acc.length; i++) acc[i] = w0 * g0[i];
      this.workers.forEach((h, k) => {
        const wk = sizes[k + 1] / batch;
        const gk = h.grads;
        for (let i = 0; i < acc.length; i++) acc[i] += wk * gk[offset + i];
      });
      offset += v.size;
      grads.push(tf.tensor(acc, v.shape, 'float32'));
    });
    const tEnd = performance.now();
    return {
      loss,
      grads,
      timing: {
        total: tEnd - t0,
        mainCompute: tMainDone - tMain,
        workerCompute: Math.max(0, ...done.map((d) => d.computeMs)),
        wait: tWait - tMainDone,
        reduceAndApply: tEnd - tWait,
        mainCpu: cMain !== undefined && cMainDone !== undefined ? cMainDone - cMain : undefined,
        workerCpu: done.length && done.every((d) => d.cpuMs !== undefined) ? Math.max(...done.map((d) => d.cpuMs!)) : undefined,
      },
    };
  }

  /**
   * `replica.apply` on the whole batch, split over the threads: the workers compute their rows while the main thread
   * computes its own; their outputs come back in messages. Uses the main replica's current weights (e.g. EMA weights
   * swapped in for sampling). The caller owns the result.
   */
  async apply(inputs: Record<string, tf.Tensor>): Promise<tf.Tensor> {
    if (this.disposed) throw new InvalidArgumentError('this DataParallelTrainer was disposed');
    const apply = this.replica.apply?.bind(this.replica);
    if (!apply) throw new InvalidArgumentError('apply needs a replica with an apply() method');
    const batch = batchSizeOf(inputs);
    const parts = Math.min(this.threads, batch);
    if (parts === 1) return tf.tidy(() => apply(inputs));
    const sizes = shardSizes(batch, parts);
    const workers = this.workers.slice(0, parts - 1);
    await writeFlat(this.replica.variables, this.weights);
    this.weightsVersion++;
    const data = await readInputs(inputs);
    let start = sizes[0];
    const runs = workers.map((h, k) => {
      const size = sizes[k + 1];
      const run = h.run({ type: 'apply', id: ++this.stepId, weightsVersion: this.weightsVersion, inputs: sliceToWire(inputs, data, start, size) });
      start += size;
      return run;
    });
    // A rejected worker promise must not go unhandled while the main rows compute.
    const settled = Promise.allSettled(runs);
    const own = tf.tidy(() => {
      const slice: Record<string, tf.Tensor> = {};
      for (const [name, t] of Object.entries(inputs)) slice[name] = tf.slice(t, 0, sizes[0]);
      return apply(slice);
    });
    const rows: tf.Tensor[] = [own];
    try {
      const results = await settled;
      const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
      if (failed) throw failed.reason;
      for (const r of results) {
        const { output } = (r as PromiseFulfilledResult<Extract<FromWorker, { type: 'applied' }>>).value;
        rows.push(tf.tensor(output.data, output.shape, output.dtype));
      }
      return tf.concat(rows, 0);
    } finally {
      tf.dispose(rows);
    }
  }

  /** One optimizer step on the full batch: sharded gradients, averaged, applied to the master weights. */
  async step(inputs: Record<string, tf.Tensor>, seed = 0): Promise<StepResult> {
    const { loss, grads, timing } = await this.gradients(inputs, seed);
    const tApply = performance.now();
    if (!this.optimizer) {
      tf.dispose(grads);
      throw new InvalidArgumentError('step() needs an optimizer; this trainer was created with optimizer: null (use gradients())');
    }
    this.optimizer.applyGradients(this.replica.variables.map((v, j) => ({ name: v.name, tensor: grads[j] })));
    tf.dispose(grads);
    const applyMs = performance.now() - tApply;
    return { loss, timing: { ...timing, total: timing.total + applyMs, reduceAndApply: timing.reduceAndApply + applyMs } };
  }

  /** Stops the workers and frees the main replica and the default optimizer's state. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const h of this.workers) h.post({ type: 'close' });
    await Promise.all(this.workers.map((h) => h.worker.terminate()));
    if (this.threads > 1) holdSingleBlasThread(-1);
    if (this.ownsOptimizer) (this.optimizer as tf.Optimizer).dispose();
    this.replica.dispose?.();
  }
}
