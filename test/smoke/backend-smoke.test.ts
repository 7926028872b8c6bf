import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';

describe('smoke', () => {
  it('adds two tensors on the selected backend', () => {
    const before = tf.memory().numTensors;
    const s = tf.tidy(() => tf.add(tf.tensor1d([1, 2]), tf.tensor1d([3, 4])).arraySync());
    expect(s).to.deep.equal([4, 6]);
    expect(tf.memory().numTensors).to.equal(before);
  });
});
