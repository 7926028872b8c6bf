import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { readScalar, readValues } from '../../lib/read';

describe('lib/read: awaited reads for notebooks and scripts', () => {
  it('reads the tensor f returns, frees it and everything f made', async () => {
    const x = tf.tensor1d([3, -1, 2]);
    const before = tf.memory().numTensors;
    expect(await readValues(() => tf.mul(tf.abs(x), 2))).to.deep.equal([6, 2, 4]);
    expect(await readScalar(() => tf.max(x))).to.equal(3);
    expect(await readValues(() => tf.tensor1d([1, 0], 'int32'))).to.deep.equal([1, 0]);
    expect(tf.memory().numTensors).to.equal(before);
    x.dispose();
  });
});
