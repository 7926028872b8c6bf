import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../../lib/errors';
import { ParallelCourseTrainer, WorkerError } from '../../lib/parallel';
import { readCheckpointFile, type TensorGroup } from '../../lib/train';
import { runTrain } from '../../scripts/train';

/**
 * npm run train -- … --threads N: the threaded run trains the same steps as one thread (up to float rounding in the
 * sharded gradient sum), its checkpoints resume on any thread count, and a failing worker stops the run with a named
 * error, leaving the last checkpoint intact.
 */

// The key part of an attention's qkv bias has a true gradient of exactly 0 (softmax ignores a constant added to every
// logit of a row): its computed gradient is rounding noise that Adam scales up to ±lr, different on each thread count.
const NOISE_ONLY = /attn\.\d+\.qkv\.b$/;

function maxDiff(a: TensorGroup, b: TensorGroup): number {
  expect([...b.keys()]).to.deep.equal([...a.keys()]);
  let m = 0;
  for (const [name, t] of a) {
    if (NOISE_ONLY.test(name)) continue;
    const u = b.get(name)!.data;
    t.data.forEach((v, i) => (m = Math.max(m, Math.abs(v - u[i]))));
  }
  return m;
}

function maxMove(a: TensorGroup, b: TensorGroup): number {
  let m = 0;
  for (const [name, t] of a) {
    const u = b.get(name)!.data;
    t.data.forEach((v, i) => (m = Math.max(m, Math.abs(v - u[i]))));
  }
  return m;
}

function expectClose(a: number[], b: number[], rel: number): void {
  expect(b.length).to.equal(a.length);
  a.forEach((x, i) => expect(b[i], `loss of step ${i}`).to.be.closeTo(x, rel * Math.abs(x)));
}

describe('parallel: npm run train -- --threads N', function () {
  this.timeout(180000);
  let dir: string;
  const log = console.log;
  const cfg = 'configs/tiny-test.json';
  const ck = (d: string) => readCheckpointFile(path.join(d, 'checkpoint.bin'));
  const run = (out: string, steps: number, threads: number, ...more: string[]) =>
    runTrain([cfg, '--steps', String(steps), '--out', out, '--threads', String(threads), '--quiet', ...more]);

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'train-threads-'));
    console.log = () => undefined; // keep the test report readable
    await run(path.join(dir, 'init'), 0, 1);
    await run(path.join(dir, 'one'), 3, 1);
    await run(path.join(dir, 'two'), 3, 2);
  });
  after(() => {
    console.log = log;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('3 steps on 2 threads equal 3 steps on 1 thread: losses, weights, EMA, Adam moments; provenance records threads', () => {
    const a = ck(path.join(dir, 'one'));
    const b = ck(path.join(dir, 'two'));
    expect(b.header.step).to.equal(3);
    expectClose(a.header.lossHistory as number[], b.header.lossHistory as number[], 1e-5);
    const lr = (a.header.train as { lr: number }).lr;
    // The weights moved (Adam: ≈ lr per step) 100× more than the threads differ. Adam divides each gradient by its
    // running RMS, so for a weight whose gradient is tiny the sum's rounding shows at up to ~1e-3 of a step (measured).
    expect(maxMove(ck(path.join(dir, 'init')).groups.params, a.groups.params)).to.be.above(0.5 * lr);
    expect(maxDiff(a.groups.params, b.groups.params)).to.be.below(1e-2 * lr);
    expect(maxDiff(a.groups.ema, b.groups.ema)).to.be.below(1e-2 * lr);
    expect(maxDiff(a.groups['adam.m'], b.groups['adam.m'])).to.be.below(1e-4);
    expect(b.header.meta).to.include({ threads: 2 });
    const prov = JSON.parse(fs.readFileSync(path.join(dir, 'two', 'provenance.json'), 'utf8'));
    expect(prov).to.include({ steps: 3, threads: 2, name: 'tiny-test' });
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'one', 'provenance.json'), 'utf8'))).to.include({ threads: 1 });
  });

  it('a threaded checkpoint resumes on 1 or 2 threads at its step, continuing as the 1-thread run does; no leaked tensors', async () => {
    const ref = path.join(dir, 'one-resumed');
    fs.cpSync(path.join(dir, 'one'), ref, { recursive: true });
    await run(ref, 4, 1, '--resume');
    const before = tf.memory().numTensors;
    for (const threads of [1, 2]) {
      const out = path.join(dir, `two-resumed-${threads}`);
      fs.cpSync(path.join(dir, 'two'), out, { recursive: true });
      await run(out, 4, threads, '--resume');
      const c = ck(out);
      expect(c.header.step, `resumed on ${threads}`).to.equal(4);
      const losses = c.header.lossHistory as number[];
      // steps 0…2 are the threaded run's, kept as saved; step 3 is computed after the resume
      expect(losses.slice(0, 3)).to.deep.equal(ck(path.join(dir, 'two')).header.lossHistory);
      expectClose(ck(ref).header.lossHistory as number[], losses, 1e-5);
      expect(maxDiff(ck(ref).groups.params, c.groups.params)).to.be.below(1e-5); // lr 1e-3: 1e-2 of a step
    }
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('a worker that dies during a run surfaces as WorkerError; the previous checkpoint survives; nothing leaks', async () => {
    const out = path.join(dir, 'crash');
    fs.cpSync(path.join(dir, 'two'), out, { recursive: true });
    const file = path.join(out, 'checkpoint.bin');
    const bytes = fs.readFileSync(file);
    const before = tf.memory().numTensors;
    let err: unknown;
    try {
      await runTrain([cfg, '--steps', '6', '--out', out, '--threads', '2', '--quiet', '--resume'], {
        onTrainer: async (t) => {
          const par = t as ParallelCourseTrainer;
          await par.parallel.workerThreads[0].terminate();
        },
      });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(WorkerError);
    expect((err as Error).message).to.match(/worker thread exited/);
    expect(fs.readFileSync(file).equals(bytes)).to.equal(true);
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('bad --threads values are named errors', async () => {
    for (const [v, re] of [['0', /--threads must be an integer in 1…64/], ['1.5', /--threads must be/], ['20', /--threads 20 exceeds the batch/]] as const) {
      let err: unknown;
      try { await runTrain([cfg, '--threads', v, '--out', path.join(dir, 'bad'), '--quiet']); } catch (e) { err = e; }
      expect(err, v).to.be.instanceOf(InvalidArgumentError);
      expect((err as Error).message).to.match(re);
    }
    expect(fs.existsSync(path.join(dir, 'bad'))).to.equal(false);
  });
});
