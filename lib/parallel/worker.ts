/**
 * Worker-thread entry of the data-parallel trainer: builds a replica, then for each step reads the master weights from
 * shared memory, computes its shard's gradients and writes them to its own shared gradient buffer; for applySync it
 * writes its rows of a forward pass to shared memory and wakes the (blocked) main thread.
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

function step(msg: Extract<ToWorker, { type: 'step' }>): void {
  const r = replica!;
  const t0 = performance.now();
  const c0 = threadCpuMs();
  loadWeights(msg.weightsVersion);
  const inputs = wireToTensors(msg.inputs);
  let lossValue: number;
  try {
    const { loss, grads: g } = shardGradients(r, inputs, microBatch);
    writeFlat(g, grads!);
    lossValue = loss.dataSync()[0];
    tf.dispose([loss, ...g]);
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

/** Inference for a main thread that is blocked in Atomics.wait: every outcome must end in a store + notify. */
function apply(msg: Extract<ToWorker, { type: 'apply' }>): void {
  const flag = new Int32Array(msg.flag);
  const done = (state: number) => {
    Atomics.store(flag, 0, state);
    Atomics.notify(flag, 0);
  };
  try {
    const r = replica!;
    if (!r.apply) throw new Error('the replica has no apply(); applySync needs one');
    loadWeights(msg.weightsVersion);
    const inputs = wireToTensors(msg.inputs);
    let y: tf.Tensor;
    try {
      y = tf.tidy(() => r.apply!(inputs));
    } finally {
      tf.dispose(Object.values(inputs));
    }
    const data = y.dataSync() as Float32Array;
    const shape = y.shape;
    y.dispose();
    if (shape.length > flag.length - 2) throw new Error(`output rank ${shape.length} exceeds ${flag.length - 2}`);
    const out = new Float32Array(msg.out);
    if (data.length > out.length) {
      flag[1] = data.length;
      done(-2);
      return;
    }
    out.set(data);
    flag[1] = shape.length;
    shape.forEach((d, i) => (flag[2 + i] = d));
    done(1);
  } catch (e) {
    const err = e as Error;
    const bytes = new TextEncoder().encode(`${err.name}: ${err.message}`);
    const room = new Uint8Array(msg.out);
    const n = Math.min(bytes.length, room.length);
    room.set(bytes.subarray(0, n));
    flag[1] = n;
    done(-1);
  }
}

port.on('message', (msg: ToWorker) => {
  void (async () => {
    try {
      if (msg.type === 'init') await init(msg);
      else if (msg.type === 'step') step(msg);
      else if (msg.type === 'apply') apply(msg);
      else if (msg.type === 'close') {
        replica?.dispose?.();
        port.close();
      }
    } catch (e) {
      const err = e as Error;
      send({ type: 'error', id: msg.type === 'step' ? msg.id : undefined, name: err.name, message: err.message, stack: err.stack });
    }
  })();
});
