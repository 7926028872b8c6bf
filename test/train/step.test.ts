import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { NonFiniteError } from '../../lib/errors';
import { Adam, applyStepGradients, DEFAULT_TRAIN, Ema, PendingSteps, readSteps, type StepState } from '../../lib/train';

/**
 * applyStepGradients (the step tail shared by lib/train's Trainer and lib/parallel's ParallelCourseTrainer: it reads
 * nothing) and readSteps (the deferred, batched read that records losses and catches a non-finite step).
 */
describe('train: applyStepGradients + readSteps', () => {
  const config = { ...DEFAULT_TRAIN, lr: 0.4, warmupSteps: 4, gradClip: 1, emaDecay: 0.999 };
  let w: tf.Variable;
  let state: StepState;
  beforeEach(() => {
    w = tf.variable(tf.tensor1d([1, -2]), true, `step-test-w-${Math.random()}`);
    state = { config, optimizer: new Adam([w]), ema: new Ema([w], config.emaDecay), lossHistory: [], step: 0, pending: new PendingSteps() };
  });
  afterEach(() => {
    state.optimizer.dispose();
    state.ema.dispose();
    state.pending.dispose();
    w.dispose();
  });

  it('clips, warms up the lr, applies Adam and the EMA and advances the step without a read; readSteps records the loss (hand-computed)', async () => {
    const before = tf.memory().numTensors;
    applyStepGradients(state, [tf.tensor1d([3, -4])], tf.scalar(0.75));
    expect(state.step).to.equal(1);
    expect(state.lossHistory).to.deep.equal([]); // not read yet
    expect(state.pending.size).to.equal(1);
    const [r] = await readSteps(state);
    // |g| = 5 > clip 1 → g = (0.6, −0.8); Adam's first bias-corrected step is lr·g/|g| per weight = lr·sign(g);
    // warm-up: lr · (0 + 1)/4 = 0.1. EMA warm-up decay min(0.999, (1 + 0)/(10 + 0)) = 0.1: 0.1·w0 + 0.9·w1.
    expect(r).to.deep.equal({ step: 0, loss: 0.75, gradNorm: 5, lr: 0.1 });
    const w1 = Array.from(w.dataSync());
    expect(w1[0]).to.be.closeTo(0.9, 1e-6);
    expect(w1[1]).to.be.closeTo(-1.9, 1e-6);
    const e = (await state.ema.values())[0];
    expect(e[0]).to.be.closeTo(0.1 * 1 + 0.9 * 0.9, 1e-6);
    expect(e[1]).to.be.closeTo(0.1 * -2 + 0.9 * -1.9, 1e-6);
    expect(state.lossHistory).to.deep.equal([0.75]);
    expect(state.optimizer.step).to.equal(1);
    expect(state.pending.size).to.equal(0);
    expect(tf.memory().numTensors).to.equal(before); // the gradient and loss handed in (made after 'before') are disposed
  });

  for (const [what, grad, loss, re] of [
    ['a NaN loss', [1, 1], NaN, /training loss is NaN at step 2/],
    ['an infinite gradient', [Infinity, 1], 0.5, /gradient norm is Infinity at step 2/],
  ] as const) {
    it(`${what} at step 2 of 4 queued: readSteps throws naming step 2; weights, moments, EMA, history and step are step 2's start`, async () => {
      const before = tf.memory().numTensors;
      applyStepGradients(state, [tf.tensor1d([0.3, -0.2])], tf.scalar(0.5));
      await readSteps(state);
      const w1 = Array.from(w.dataSync());
      const s1 = await state.optimizer.getState();
      const e1 = (await state.ema.values())[0];
      const g = tf.tensor1d([...grad]);
      applyStepGradients(state, [tf.tensor1d([0.1, 0.1])], tf.scalar(0.25)); // step 1 is fine …
      applyStepGradients(state, [g], tf.scalar(loss)); // … step 2 is not
      applyStepGradients(state, [tf.tensor1d([0.2, 0.2])], tf.scalar(0.125)); // step 3 is finite, but comes after
      expect(g.isDisposed).to.equal(true);
      expect(state.step).to.equal(4);
      let err: unknown;
      try { await readSteps(state); } catch (e) { err = e; }
      expect(err).to.be.instanceOf(NonFiniteError);
      expect(String(err)).to.match(re);
      // rolled back to the start of step 2: step 1's update stands, steps 2 and 3 changed nothing
      expect(state.step).to.equal(2);
      expect(state.optimizer.step).to.equal(2);
      expect(state.ema.updates).to.equal(2);
      expect(state.lossHistory).to.deep.equal([0.5, 0.25]);
      expect(Array.from(w.dataSync())).to.not.deep.equal(w1);
      const w2 = Array.from(w.dataSync());
      // replay step 1 on a copy of step 1's start to get the expected state after it
      const v = tf.tidy(() => tf.variable(tf.tensor1d(w1)));
      const opt = new Adam([v]);
      opt.setState(s1);
      const ema = new Ema([v], config.emaDecay);
      ema.setValues([e1], 1);
      const ref: StepState = { config, optimizer: opt, ema, lossHistory: [0.5], step: 1, pending: new PendingSteps() };
      applyStepGradients(ref, [tf.tensor1d([0.1, 0.1])], tf.scalar(0.25));
      await readSteps(ref);
      expect(w2).to.deep.equal(Array.from(v.dataSync()));
      const [sa, sb] = [await state.optimizer.getState(), await opt.getState()];
      expect(Array.from(sa.m[0])).to.deep.equal(Array.from(sb.m[0]));
      expect(Array.from(sa.v[0])).to.deep.equal(Array.from(sb.v[0]));
      expect(Array.from((await state.ema.values())[0])).to.deep.equal(Array.from((await ema.values())[0]));
      opt.dispose();
      ema.dispose();
      ref.pending.dispose();
      v.dispose();
      // the flag was reset: the next step trains again
      applyStepGradients(state, [tf.tensor1d([0.1, 0.1])], tf.scalar(0.5));
      expect((await readSteps(state))[0]).to.include({ step: 2, loss: 0.5 });
      expect(Array.from(w.dataSync())).to.not.deep.equal(w2);
      expect(tf.memory().numTensors).to.equal(before);
    });
  }

  it('a NaN at the very first step leaves everything at its initial value', async () => {
    applyStepGradients(state, [tf.tensor1d([1, 1])], tf.scalar(NaN));
    let err: unknown;
    try { await readSteps(state); } catch (e) { err = e; }
    expect(String(err)).to.match(/NonFiniteError.*training loss is NaN at step 0/);
    expect(Array.from(w.dataSync())).to.deep.equal([1, -2]);
    expect(Array.from((await state.ema.values())[0])).to.deep.equal([1, -2]);
    expect(Array.from((await state.optimizer.getState()).m[0])).to.deep.equal([0, 0]);
    expect(state).to.include({ step: 0 });
    expect(state.optimizer.step).to.equal(0);
    expect(state.lossHistory).to.deep.equal([]);
  });
});
