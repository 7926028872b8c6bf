import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { NonFiniteError } from '../../lib/errors';
import { Adam, applyStepGradients, DEFAULT_TRAIN, Ema, type StepState } from '../../lib/train';

/** applyStepGradients, the step tail shared by lib/train's Trainer and lib/parallel's ParallelCourseTrainer. */
describe('train: applyStepGradients', () => {
  const config = { ...DEFAULT_TRAIN, lr: 0.4, warmupSteps: 4, gradClip: 1, emaDecay: 0.999 };
  let w: tf.Variable;
  let state: StepState;
  beforeEach(() => {
    w = tf.variable(tf.tensor1d([1, -2]), true, `step-test-w-${Math.random()}`);
    state = { config, optimizer: new Adam([w]), ema: new Ema([w], config.emaDecay), lossHistory: [], step: 0 };
  });
  afterEach(() => {
    state.optimizer.dispose();
    state.ema.dispose();
    w.dispose();
  });

  it('clips, warms up the lr, applies Adam and the EMA, records the loss and advances the step (hand-computed)', () => {
    const before = tf.memory().numTensors;
    const r = applyStepGradients(state, [tf.tensor1d([3, -4])], 0.75);
    // |g| = 5 > clip 1 → g = (0.6, −0.8); Adam's first bias-corrected step is lr·g/|g| per weight = lr·sign(g);
    // warm-up: lr · (0 + 1)/4 = 0.1. EMA warm-up decay min(0.999, (1 + 0)/(10 + 0)) = 0.1: 0.1·w0 + 0.9·w1.
    expect(r).to.deep.equal({ step: 0, loss: 0.75, gradNorm: 5, lr: 0.1 });
    const w1 = Array.from(w.dataSync());
    expect(w1[0]).to.be.closeTo(0.9, 1e-6);
    expect(w1[1]).to.be.closeTo(-1.9, 1e-6);
    const e = state.ema.values()[0];
    expect(e[0]).to.be.closeTo(0.1 * 1 + 0.9 * 0.9, 1e-6);
    expect(e[1]).to.be.closeTo(0.1 * -2 + 0.9 * -1.9, 1e-6);
    expect(state.step).to.equal(1);
    expect(state.lossHistory).to.deep.equal([0.75]);
    expect(state.optimizer.step).to.equal(1);
    expect(tf.memory().numTensors).to.equal(before); // the gradient handed in (made after 'before') is disposed
  });

  for (const [what, grad, loss, re] of [
    ['a NaN loss', [1, 1], NaN, /training loss is NaN at step 0/],
    ['an infinite gradient', [Infinity, 1], 0.5, /gradient norm is Infinity at step 0/],
  ] as const) {
    it(`${what} throws NonFiniteError, disposes the gradients and changes no weight, moment, EMA, history or step`, () => {
      const before = tf.memory().numTensors;
      const g = tf.tensor1d([...grad]);
      expect(() => applyStepGradients(state, [g], loss)).to.throw(NonFiniteError, re);
      expect(g.isDisposed).to.equal(true);
      expect(tf.memory().numTensors).to.equal(before);
      expect(Array.from(w.dataSync())).to.deep.equal([1, -2]);
      expect(Array.from(state.ema.values()[0])).to.deep.equal([1, -2]);
      expect(state.optimizer.step).to.equal(0);
      expect(Array.from(state.optimizer.getState().m[0])).to.deep.equal([0, 0]);
      expect(state).to.include({ step: 0 });
      expect(state.lossHistory).to.deep.equal([]);
    });
  }
});
