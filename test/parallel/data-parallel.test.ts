import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { DataParallelTrainer, shardSizes, WorkerError } from '../../lib/parallel';
import { InvalidArgumentError, ShapeMismatchError } from '../../lib/errors';
import { makeStandin, STANDIN_MODULE, type StandinOptions } from './standin';

const OPTS: StandinOptions = { inDim: 12, hidden: 16, outDim: 5, seed: 7 };
const spec = (options: StandinOptions = OPTS) => ({ module: STANDIN_MODULE, exportName: 'makeStandin', options });

function batch(n: number, seed: number): Record<string, tf.Tensor> {
  return {
    x: tf.randomNormal([n, OPTS.inDim], 0, 1, 'float32', seed),
    target: tf.randomNormal([n, OPTS.outDim], 0, 1, 'float32', seed + 1),
    label: tf.tensor1d(Array.from({ length: n }, (_, i) => (i * 7) % 3), 'int32'),
  };
}

/** Reference: the same model in this thread, whole batch at once (no sharding code involved). */
function fullBatchGrads(inputs: Record<string, tf.Tensor>): { loss: number; grads: Float32Array[] } {
  const r = makeStandin(OPTS);
  const { value, grads } = tf.variableGrads(() => r.loss(inputs, { seed: 0 }), r.variables);
  const out = { loss: value.dataSync()[0], grads: r.variables.map((v) => (grads[v.name] ? grads[v.name].dataSync() as Float32Array : new Float32Array(v.size))) };
  tf.dispose([value, ...Object.values(grads)]);
  r.dispose!();
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).to.equal(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('parallel: shardSizes', () => {
  it('splits as evenly as possible, larger shards first, summing to the batch', () => {
    expect(shardSizes(64, 2)).to.deep.equal([32, 32]);
    expect(shardSizes(5, 2)).to.deep.equal([3, 2]);
    expect(shardSizes(7, 3)).to.deep.equal([3, 2, 2]);
    expect(shardSizes(3, 1)).to.deep.equal([3]);
  });
  it('rejects non-positive or fractional sizes', () => {
    expect(() => shardSizes(0, 2)).to.throw(InvalidArgumentError, /batch/);
    expect(() => shardSizes(4, 0)).to.throw(InvalidArgumentError, /parts/);
    expect(() => shardSizes(4.5, 2)).to.throw(InvalidArgumentError);
  });
});

describe('parallel: DataParallelTrainer (2 threads) vs one thread on the whole batch', function () {
  this.timeout(60000);
  let trainer: DataParallelTrainer;

  before(async () => {
    trainer = await DataParallelTrainer.create(spec(), { threads: 2, learningRate: 0.01 });
  });
  after(async () => {
    await trainer?.dispose();
  });

  for (const n of [8, 5]) {
    it(`gives the full-batch loss and gradients for a batch of ${n} (shards ${shardSizes(n, 2)})`, async () => {
      const inputs = batch(n, 100 + n);
      const ref = fullBatchGrads(inputs);
      const got = await trainer.gradients(inputs);
      expect(got.loss).to.be.closeTo(ref.loss, 1e-5 * Math.abs(ref.loss));
      got.grads.forEach((g, j) => {
        const scale = Math.max(1e-3, ...Array.from(ref.grads[j], Math.abs));
        expect(maxAbsDiff(g.dataSync(), ref.grads[j]) / scale, `variable ${j}`).to.be.below(1e-5);
      });
      // the unused variable's gradient is zeros, not missing
      expect(Array.from(got.grads[4].dataSync())).to.deep.equal([0, 0, 0]);
      tf.dispose([...got.grads, ...Object.values(inputs)]);
    });
  }

  it('gives the same gradients with micro-batches (batch 7 → shards 4, 3 → chunks of ≤ 2), without leaking', async () => {
    const mb = await DataParallelTrainer.create(spec(), { threads: 2, microBatch: 2 });
    try {
      const inputs = batch(7, 77);
      const ref = fullBatchGrads(inputs);
      const got = await mb.gradients(inputs);
      tf.dispose(got.grads);
      const before = tf.memory().numTensors;
      const again = await mb.gradients(inputs);
      expect(tf.memory().numTensors).to.equal(before + again.grads.length);
      expect(again.loss).to.be.closeTo(ref.loss, 1e-5 * Math.abs(ref.loss));
      again.grads.forEach((g, j) => {
        const scale = Math.max(1e-3, ...Array.from(ref.grads[j], Math.abs));
        expect(maxAbsDiff(g.dataSync(), ref.grads[j]) / scale, `variable ${j}`).to.be.below(1e-5);
      });
      tf.dispose([...again.grads, ...Object.values(inputs)]);
    } finally {
      await mb.dispose();
    }
    let err: unknown;
    try { await DataParallelTrainer.create(spec(), { threads: 1, microBatch: 0 }); } catch (e) { err = e; }
    expect(err).to.be.instanceOf(InvalidArgumentError);
    expect(String(err)).to.match(/microBatch must be a positive integer, got 0/);
  });

  it('applies the same Adam updates as plain tf.train.adam on the whole batch, over 3 steps', async () => {
    const ref = makeStandin(OPTS);
    const opt = tf.train.adam(0.01);
    const par = await DataParallelTrainer.create(spec(), { threads: 2, learningRate: 0.01 });
    try {
      for (let s = 0; s < 3; s++) {
        const inputs = batch(6, 300 + s);
        const res = await par.step(inputs);
        const refLoss = opt.minimize(() => ref.loss(inputs, { seed: 0 }), true, ref.variables) as tf.Scalar;
        expect(res.loss).to.be.closeTo(refLoss.dataSync()[0], 1e-5);
        tf.dispose([refLoss, ...Object.values(inputs)]);
      }
      // Adam's first steps move each weight by ≈ lr·sign(g): compare on that scale
      ref.variables.forEach((v, j) => {
        expect(maxAbsDiff(v.dataSync(), par.replica.variables[j].dataSync()), `variable ${j}`).to.be.below(1e-4);
      });
      // the weights actually moved (the comparison above is not vacuous)
      const init = makeStandin(OPTS);
      expect(maxAbsDiff(init.variables[0].dataSync(), par.replica.variables[0].dataSync())).to.be.above(0.01);
      init.dispose!();
    } finally {
      await par.dispose();
      ref.dispose!();
      opt.dispose();
    }
  });

  it('apply: the forward pass split over 2 threads equals one thread, for odd batches, with the current weights', async () => {
    const ref = makeStandin(OPTS);
    try {
      for (const n of [1, 5, 500]) {
        const x = tf.randomNormal([n, OPTS.inDim], 0, 1, 'float32', n);
        // the main replica's weights have moved (earlier tests stepped): copy them into the reference
        ref.variables.forEach((v, j) => v.assign(trainer.replica.variables[j]));
        const before = tf.memory().numTensors;
        const got = await trainer.apply({ x });
        expect(tf.memory().numTensors).to.equal(before + 1);
        const want = tf.tidy(() => ref.apply!({ x }));
        expect(got.shape).to.deep.equal([n, OPTS.outDim]);
        expect(maxAbsDiff(got.dataSync(), want.dataSync())).to.be.below(1e-5);
        tf.dispose([got, want, x]);
      }
    } finally {
      ref.dispose!();
    }
  });

  it('leaks no tensors over repeated steps', async () => {
    const inputs = batch(8, 9);
    await trainer.step(inputs); // first step creates Adam's moment variables
    const before = tf.memory().numTensors;
    for (let s = 0; s < 5; s++) await trainer.step(inputs);
    expect(tf.memory().numTensors).to.equal(before);
    tf.dispose(Object.values(inputs));
  });

  it('reports where the time went', async () => {
    const inputs = batch(8, 11);
    const { timing } = await trainer.step(inputs);
    expect(timing.total).to.be.above(0);
    expect(timing.mainCompute).to.be.above(0);
    expect(timing.workerCompute).to.be.above(0);
    expect(timing.total + 1e-9).to.be.at.least(timing.mainCompute + timing.wait + timing.reduceAndApply);
    tf.dispose(Object.values(inputs));
  });
});

describe('parallel: DataParallelTrainer errors', function () {
  this.timeout(60000);

  it('rejects a batch smaller than the thread count, inputs that disagree on the batch, and bad thread counts', async () => {
    const t = await DataParallelTrainer.create(spec(), { threads: 1 });
    try {
      const one = batch(1, 1);
      // 1 thread: a single example is fine
      const r = await t.step(one);
      expect(r.timing.workerCompute).to.equal(0);
      const bad = { x: tf.zeros([3, OPTS.inDim]), target: tf.zeros([2, OPTS.outDim]), label: tf.zeros([3], 'int32') };
      let err: unknown;
      try { await t.gradients(bad); } catch (e) { err = e; }
      expect(err).to.be.instanceOf(ShapeMismatchError);
      expect(String(err)).to.match(/'target' has 2 examples/);
      tf.dispose([...Object.values(one), ...Object.values(bad)]);
    } finally {
      await t.dispose();
    }
    const noOpt = await DataParallelTrainer.create(spec(), { threads: 1, optimizer: null });
    try {
      const one = batch(2, 3);
      const before = tf.memory().numTensors;
      let e2: unknown;
      try { await noOpt.step(one); } catch (e) { e2 = e; }
      expect(e2).to.be.instanceOf(InvalidArgumentError);
      expect(String(e2)).to.match(/optimizer: null/);
      expect(tf.memory().numTensors).to.equal(before);
      tf.dispose(Object.values(one));
    } finally {
      await noOpt.dispose();
    }
    let err: unknown;
    try { await DataParallelTrainer.create(spec(), { threads: 0 }); } catch (e) { err = e; }
    expect(err).to.be.instanceOf(InvalidArgumentError);
    err = undefined;
    try { await DataParallelTrainer.create({ module: 'relative/path', exportName: 'x' }); } catch (e) { err = e; }
    expect(err).to.be.instanceOf(InvalidArgumentError);
    expect(String(err)).to.match(/absolute path/);
    err = undefined;
    try { await DataParallelTrainer.create({ module: STANDIN_MODULE, exportName: 'nope' }); } catch (e) { err = e; }
    expect(err).to.be.instanceOf(InvalidArgumentError);
    expect(String(err)).to.match(/no function 'nope'/);
  });

  it('fails create() with the error from the worker when a replica cannot be built there, freeing the main replica', async () => {
    const before = tf.memory().numTensors;
    let err: unknown;
    try { await DataParallelTrainer.create(spec({ ...OPTS, failInWorker: true }), { threads: 2 }); } catch (e) { err = e; }
    expect(err).to.be.instanceOf(WorkerError);
    expect(String(err)).to.match(/TypeError: stand-in refuses to start in a worker/);
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('re-throws an error raised inside a worker, and a batch too small for the threads', async () => {
    const t = await DataParallelTrainer.create(spec({ ...OPTS, failOn: 42 }), { threads: 2 });
    try {
      const small = batch(1, 1);
      let err: unknown;
      try { await t.gradients(small); } catch (e) { err = e; }
      expect(err).to.be.instanceOf(InvalidArgumentError);
      expect(String(err)).to.match(/batch of 1 cannot be split over 2 threads/);
      // row 1 goes to the worker (shards [1, 1]); it fails there
      const x = tf.tensor2d([[0, ...new Array(OPTS.inDim - 1).fill(0)], [42, ...new Array(OPTS.inDim - 1).fill(0)]]);
      const inputs = { x, target: tf.zeros([2, OPTS.outDim]), label: tf.zeros([2], 'int32') };
      err = undefined;
      try { await t.step(inputs); } catch (e) { err = e; }
      expect(err).to.be.instanceOf(WorkerError);
      expect(String(err)).to.match(/RangeError: stand-in asked to fail/);
      // the same failure during a forward pass comes back as a WorkerError too, not a hang, and leaks nothing
      const before = tf.memory().numTensors;
      err = undefined;
      try { await t.apply({ x }); } catch (e) { err = e; }
      expect(err).to.be.instanceOf(WorkerError);
      expect(String(err)).to.match(/in worker: RangeError: stand-in asked to fail/);
      expect(tf.memory().numTensors).to.equal(before);
      tf.dispose([...Object.values(small), ...Object.values(inputs)]);
    } finally {
      await t.dispose();
    }
  });
});
