/**
 * lib/train's Trainer on webgpu (llvmpipe without a GPU): one training step of the course model against the same step
 * on the cpu backend, what a step dispatches (the control, one fused Adam and one fused EMA dispatch per tensor, no
 * Select, no read), a deferred non-finite step, and data-parallel training's refusal of webgpu.
 */
import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, NonFiniteError } from '../../lib/errors';
import { silenceCpuBanner } from '../../lib/backend/loaders';
import { UNet, type UNetConfig } from '../../lib/models';
import { DataParallelTrainer, modelReplicaSpec, ParallelCourseTrainer } from '../../lib/parallel';
import { NoiseSchedule } from '../../lib/schedule';
import { applyStepGradients, DEFAULT_TRAIN, makeSchedule, readSteps, Trainer, type Batch, type TrainConfig } from '../../lib/train';
import { countDispatches, errors, normals } from './webgpu-cases';
import { useWebGpu } from './webgpu-setup';

const RUN = JSON.parse(fs.readFileSync(path.join(__dirname, '../../configs/unet-cond-mnist.json'), 'utf8'));
const COURSE = RUN.model as UNetConfig;
const B = 2;

/** Compute-pass dispatches and GPU buffer reads (mapAsync) that `f` starts, by program. */
function countWork<T>(f: () => T): { result: T; dispatches: number; byProgram: Map<string, number>; reads: number } {
  const buffer = (globalThis as unknown as { GPUBuffer: { prototype: { mapAsync: Function } } }).GPUBuffer.prototype;
  const { mapAsync } = buffer;
  let reads = 0;
  buffer.mapAsync = function (this: unknown, ...args: unknown[]) { reads++; return mapAsync.apply(this, args); };
  try {
    return { ...countDispatches(f), reads };
  } finally {
    buffer.mapAsync = mapAsync;
  }
}

interface StepRun {
  loss: number; gradNorm: number; names: string[]; before: Float32Array[]; after: Float32Array[]; m: Float32Array[];
  v: Float32Array[]; ema: Float32Array[]; work?: ReturnType<typeof countWork>; tail?: ReturnType<typeof countWork>;
}

/** One Trainer step of the course model at batch B on `backend` from the same seeded weights and batch. */
async function courseStep(backend: 'cpu' | 'webgpu', config: TrainConfig): Promise<StepRun> {
  await tf.setBackend(backend);
  if (backend === 'cpu') silenceCpuBanner();
  const trainer = new Trainer(new UNet(COURSE), makeSchedule(RUN.schedule), config);
  const tensors = tf.memory().numTensors;
  try {
    const names = trainer.model.params.names();
    const before = [...(await trainer.model.params.snapshot()).values()];
    const batch: Batch = { x: tf.tensor4d(normals(B * 784, 5, 0.5), [B, 28, 28, 1]), y: tf.tensor1d([3, 7], 'int32') };
    let work: StepRun['work'];
    if (backend === 'webgpu') work = countWork(() => trainer.queueStep(batch));
    else trainer.queueStep(batch);
    const [r] = await readSteps(trainer);
    const after = [...(await trainer.model.params.snapshot()).values()];
    const { m, v } = await trainer.optimizer.getState();
    const ema = await trainer.ema.values();
    expect(tf.memory().numTensors, `${backend}: tensors after the step`).to.equal(tensors);
    let tail: StepRun['tail'];
    if (backend === 'webgpu') {
      // the tail alone (what applyStepGradients adds to the gradients), on a second step with made-up gradients
      const vars = trainer.model.params.variables();
      const grads = vars.map((x, i) => tf.randomNormal(x.shape, 0, 0.01, 'float32', 900 + i));
      tail = countWork(() => applyStepGradients(trainer, grads, tf.scalar(0.5)));
      await readSteps(trainer);
    }
    return { loss: r.loss, gradNorm: r.gradNorm, names, before, after, m, v, ema, work, tail };
  } finally {
    trainer.dispose();
    trainer.model.dispose();
  }
}

describe('webgpu: training with lib/train (fused Adam and EMA) against the cpu backend', function () {
  this.timeout(600000);
  useWebGpu();

  it(`one Trainer step of the course model (B=${B}): loss, norm, weights, Adam moments and EMA within 1e-4 of cpu; `
    + 'on webgpu the step\'s tail is the control + one Adam + one EMA dispatch per tensor (no Select), and nothing is read', async () => {
    // the course's training config, without warm-up (its first step would move each weight by lr/200 only)
    const config: TrainConfig = { ...DEFAULT_TRAIN, ...RUN.train, batchSize: B, warmupSteps: 0, checkpointEvery: 0 };
    const want = await courseStep('cpu', config);
    const got = await courseStep('webgpu', config);
    const n = want.names.length;
    expect(got.before.map((w, i) => errors(w, want.before[i]).abs), 'same initial weights').to.deep.equal(Array(n).fill(0));
    expect(Math.abs(got.loss - want.loss) / want.loss, 'loss').to.be.at.most(1e-4);
    expect(Math.abs(got.gradNorm - want.gradNorm) / want.gradNorm, 'gradient norm').to.be.at.most(1e-4);
    expect(want.gradNorm, 'clipped (norm > gradClip)').to.be.greaterThan(config.gradClip);
    const worst = (label: string, a: Float32Array[], b: Float32Array[]) => {
      const e = a.map((x, i) => ({ name: want.names[i], ...errors(x, b[i]) })).sort((p, q) => q.rel - p.rel)[0];
      console.log(`      ${label.padEnd(14)} worst tensor ${e.name}: max |Δ| / max |cpu| ${e.rel.toExponential(1)} (max |Δ| ${e.abs.toExponential(1)})`);
      return e.rel;
    };
    /** ‖a − b‖ / ‖b‖ over the whole model. */
    const normwise = (label: string, a: Float32Array[], b: Float32Array[]) => {
      let d = 0, r = 0;
      a.forEach((x, i) => x.forEach((y, j) => { d += (y - b[i][j]) ** 2; r += b[i][j] ** 2; }));
      const rel = Math.sqrt(d / r);
      console.log(`      ${label.padEnd(14)} ‖Δ‖ / ‖cpu‖ over the model ${rel.toExponential(1)}`);
      return rel;
    };
    // Adam's moments are linear / quadratic in the (clipped) gradient: per tensor
    expect(worst('Adam m', got.m, want.m), 'm').to.be.at.most(1e-4);
    expect(worst('Adam v', got.v, want.v), 'v').to.be.at.most(1e-4);
    // the weights after Adam's FIRST step moved by ≈ lr·g/(|g| + ε): a gradient that is float noise (e.g. the attention's
    // key bias, to which softmax is invariant) moves its weight by an arbitrary fraction of lr on each backend, so a
    // zero-initialised tensor can differ by ~1e-2 of its size (printed); over the model the weights agree to 1e-4
    worst('weights after', got.after, want.after);
    expect(normwise('weights after', got.after, want.after), 'weights').to.be.at.most(1e-4);
    expect(normwise('EMA', got.ema, want.ema), 'EMA').to.be.at.most(1e-4);
    // the update itself (after − before), over the whole model: Adam's first step is ≈ lr·sign(g), so a gradient element
    // near 0 may take the other sign on the other backend; its direction must still agree
    let dot = 0, nGot = 0, nWant = 0;
    got.after.forEach((a, i) => a.forEach((x, j) => {
      const u = x - got.before[i][j];
      const w = want.after[i][j] - want.before[i][j];
      dot += u * w; nGot += u * u; nWant += w * w;
    }));
    const cosine = dot / Math.sqrt(nGot * nWant);
    console.log(`      update direction: cosine ${cosine.toFixed(6)} (update norm ${Math.sqrt(nWant).toExponential(2)})`);
    expect(cosine, 'update direction').to.be.greaterThan(0.999);

    const programs = (w: ReturnType<typeof countWork>) => [...w.byProgram.entries()].sort((p, q) => q[1] - p[1]).map(([k, c]) => `${k} ${c}`).join(', ');
    const step = got.work!;
    console.log(`      webgpu, whole step: ${step.dispatches} dispatches (${programs(step).split(', ').slice(0, 8).join(', ')} …), ${step.reads} reads while queued`);
    expect(step.reads, 'reads while the step is queued').to.equal(0);
    const tail = got.tail!;
    console.log(`      webgpu, the step's tail (applyStepGradients): ${tail.dispatches} dispatches (${programs(tail)}), ${tail.reads} reads`);
    expect(Object.fromEntries(tail.byProgram), 'the tail: control, one Adam and one EMA dispatch per tensor, nothing else').to.deep.equal({
      SumSquaresProgram: Math.ceil(n / 7), ControlFromPartialsProgram: 1, CourseAdamUpdate: n, CourseEmaUpdate: n,
    });
    expect(tail.reads, 'reads in the tail').to.equal(0);
  });

  it('a deferred non-finite step on webgpu: NonFiniteError names it; weights, Adam moments and EMA are the last good step\'s, bit for bit', async () => {
    await tf.setBackend('webgpu');
    const tiny: UNetConfig = {
      kind: 'unet', imageSize: 8, channels: 1, widths: [8, 16], blocksPerLevel: 1, attentionResolutions: [4], groups: 4,
      embDim: 16, timeSinDim: 8, midBlocks: 1, numClasses: 10, dropout: 0, predictionType: 'epsilon', seed: 0,
    };
    const schedule = NoiseSchedule.linear(50);
    const config = { ...DEFAULT_TRAIN, steps: 5, batchSize: 2, warmupSteps: 0, checkpointEvery: 0 };
    const good = (s: number): Batch => ({ x: tf.tensor4d(normals(128, 40 + s, 0.5), [2, 8, 8, 1]), y: tf.tensor1d([0, 1], 'int32') });
    const poisoned = (s: number): Batch => (s === 2 ? { x: tf.fill([2, 8, 8, 1], NaN), y: tf.tensor1d([0, 1], 'int32') } : good(s));
    const ref = new Trainer(new UNet(tiny), schedule, { ...config, steps: 2 });
    await ref.fit(good);
    const t = new Trainer(new UNet(tiny), schedule, config);
    const before = tf.memory().numTensors;
    let err: unknown;
    try {
      await t.fit(poisoned, { readEvery: 100 }); // steps 2, 3, 4 run on the device before anything is read
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(NonFiniteError);
    expect(String(err)).to.match(/loss is NaN at step 2/);
    expect(tf.memory().numTensors).to.equal(before);
    expect([t.step, t.optimizer.step, t.ema.updates]).to.deep.equal([2, 2, 2]);
    expect(t.lossHistory).to.deep.equal(ref.lossHistory);
    const [w, wRef] = [await t.model.params.snapshot(), await ref.model.params.snapshot()];
    for (const [k, x] of w) expect(Array.from(x), k).to.deep.equal(Array.from(wRef.get(k)!));
    const [s, sRef] = [await t.optimizer.getState(), await ref.optimizer.getState()];
    s.m.forEach((m, i) => expect(Array.from(m)).to.deep.equal(Array.from(sRef.m[i])));
    s.v.forEach((v, i) => expect(Array.from(v)).to.deep.equal(Array.from(sRef.v[i])));
    const [e, eRef] = [await t.ema.values(), await ref.ema.values()];
    e.forEach((x, i) => expect(Array.from(x)).to.deep.equal(Array.from(eRef[i])));
    // and it trains on from there like the uninterrupted run
    await t.fit(good, { until: 3 });
    await ref.fit(good, { until: 3 });
    expect(t.lossHistory).to.deep.equal(ref.lossHistory);
    for (const x of [t, ref]) { x.dispose(); x.model.dispose(); }
  });

  it('data-parallel training (--threads N, lib/parallel) refuses webgpu with a named error before starting a worker', async () => {
    await tf.setBackend('webgpu');
    const tensors = tf.memory().numTensors;
    const schedule = makeSchedule(RUN.schedule);
    let err: unknown;
    try {
      await ParallelCourseTrainer.create(COURSE, schedule, { ...DEFAULT_TRAIN, batchSize: 4 }, 2);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(InvalidArgumentError);
    expect(String(err)).to.match(/data-parallel.*webgpu.*--threads 1/);
    err = undefined;
    try {
      await DataParallelTrainer.create(modelReplicaSpec(COURSE, schedule), { threads: 3, optimizer: null });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(InvalidArgumentError);
    expect(tf.memory().numTensors, 'nothing built').to.equal(tensors);
    // one thread is the ordinary trainer's work on the GPU: allowed
    const one = await ParallelCourseTrainer.create(COURSE, schedule, { ...DEFAULT_TRAIN, batchSize: 2 }, 1);
    expect(one.threads).to.equal(1);
    await one.dispose();
  });
});
