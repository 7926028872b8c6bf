/**
 * Worker-thread entry of the data-parallel trainer: builds a replica, then for each step reads the master weights from
 * shared memory, computes its shard's gradients and writes them to its own shared gradient buffer; for apply it sends
 * its rows of a forward pass back in a message. Every read of a tensor is awaited.
 * Started by trainer.ts; never imported by other code.
 */
import { parentPort, workerData } from 'worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendName } from '../backend/index';
import { assignFromFlat, writeFlat } from './flat';
import { wasmHeapBytes } from './memory';
import { threadCpuMs } from './cputime';
import { shardGradients, wireToTensors } from './shard';
import type { FromWorker, Replica, ReplicaFactory, ToWorker } from './types';

const port = parentPort;
if (!port) throw new Error('lib/parallel/worker.ts must run in a worker thread');

let replica: Replica | undefined;
let weights: Float32Array | undefined;
let grads: Float32Array | undefined;
let loadedVersion = -1;
let microBatch: number | undefined;

function send(msg: FromWorker): void {
  port!.postMessage(msg);
}

async function init(msg: Extract<ToWorker, { type: 'init' }>): Promise<void> {
  const { prefer, tfBackend } = workerData as { prefer?: BackendName; tfBackend: string };
  await initBackend({ prefer, quiet: true });
  // The main thread may have switched tfjs to another backend after initBackend (e.g. 'cpu' in a test); follow it.
  if (tf.getBackend() !== tfBackend && !(await tf.setBackend(tfBackend))) {
    throw new Error(`worker cannot start the main thread's backend '${tfBackend}'`);
  }
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const mod = require(msg.spec.module) as Record<string, unknown>;
  const factory = mod[msg.spec.exportName];
  if (typeof factory !== 'function') {
    throw new Error(`module ${msg.spec.module} exports no function '${msg.spec.exportName}'`);
  }
  replica = await (factory as ReplicaFactory)(msg.spec.options);
  weights = new Float32Array(msg.weights);
  grads = new Float32Array(msg.grads);
  microBatch = msg.microBatch;
  send({ type: 'ready', sizes: replica.variables.map((v) => v.size), backend: tf.getBackend() });
}

async function step(msg: Extract<ToWorker, { type: 'step' }>): Promise<void> {
  const r = replica!;
  const t0 = performance.now();
  const c0 = threadCpuMs();
  loadWeights(msg.weightsVersion);
  const inputs = wireToTensors(msg.inputs);
  let lossValue: number;
  try {
    const { loss, grads: g } = shardGradients(r, inputs, microBatch, msg.seed);
    try {
      await writeFlat(g, grads!);
      lossValue = (await loss.data())[0];
    } finally {
      tf.dispose([loss, ...g]);
    }
  } finally {
    tf.dispose(Object.values(inputs));
  }
  const c1 = threadCpuMs();
  send({
    type: 'done', id: msg.id, loss: lossValue, computeMs: performance.now() - t0,
    cpuMs: c0 !== undefined && c1 !== undefined ? c1 - c0 : undefined, heapBytes: wasmHeapBytes(),
  });
}

function loadWeights(version: number): void {
  if (version !== loadedVersion) {
    assignFromFlat(replica!.variables, weights!);
    loadedVersion = version;
  }
}

/** Inference on this worker's rows; the output travels back in the message (its buffer transferred, not copied). */
async function apply(msg: Extract<ToWorker, { type: 'apply' }>): Promise<void> {
  const r = replica!;
  if (!r.apply) throw new Error('the replica has no apply(); DataParallelTrainer.apply needs one');
  loadWeights(msg.weightsVersion);
  const inputs = wireToTensors(msg.inputs);
  let y: tf.Tensor;
  try {
    y = tf.tidy(() => r.apply!(inputs));
  } finally {
    tf.dispose(Object.values(inputs));
  }
  let data: Float32Array;
  try {
    data = Float32Array.from((await y.data()) as Float32Array); // a copy this thread owns, so it can be transferred
  } finally {
    y.dispose();
  }
  port!.postMessage({ type: 'applied', id: msg.id, output: { data, shape: y.shape, dtype: 'float32' } } satisfies FromWorker, [data.buffer]);
}

port.on('message', (msg: ToWorker) => {
  void (async () => {
    try {
      if (msg.type === 'init') await init(msg);
      else if (msg.type === 'step') await step(msg);
      else if (msg.type === 'apply') await apply(msg);
      else if (msg.type === 'close') {
        replica?.dispose?.();
        port.close();
      }
    } catch (e) {
      const err = e as Error;
      send({ type: 'error', id: msg.type === 'step' || msg.type === 'apply' ? msg.id : undefined, name: err.name, message: err.message, stack: err.stack });
    }
  })();
});
