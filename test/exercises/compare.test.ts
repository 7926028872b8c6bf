import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { compareValues, formatNumber } from '../../lib/exercises/compare';

const tol = { atol: 1e-5, rtol: 1e-4 };

describe('exercises/compare', () => {
  let before = 0;
  beforeEach(() => (before = tf.memory().numTensors));
  afterEach(() => expect(tf.memory().numTensors).to.equal(before));

  it('accepts equal tensors and reports the max abs error', () => {
    const a = tf.tensor2d([[1, 2], [3, 4]]);
    const b = tf.tensor2d([[1, 2], [3, 4.00001]]);
    const c = compareValues(b, a, tol);
    expect(c.ok).to.equal(true);
    // |4.00001 − 4| in float32 is ≈ 1.0e-5 (float32 spacing near 4 is 4.8e-7)
    expect(c.maxAbsError).to.be.closeTo(1e-5, 5e-7);
    expect(c.elements).to.equal(4);
    tf.dispose([a, b]);
  });

  it('names the worst element, expected vs got, and the tolerance', () => {
    const e = tf.tensor([0, 0, 0, 0, 0, 0, 0, 0], [2, 2, 2, 1]);
    const g = tf.tensor([0, 0.5, 0, 0, 0, 0, 2, 0], [2, 2, 2, 1]);
    const c = compareValues(g, e, tol);
    expect(c.ok).to.equal(false);
    expect(c.message).to.contain('2 of 8 elements outside tolerance');
    expect(c.message).to.contain('result[1,1,0,0]: expected 0, got 2');
    tf.dispose([e, g]);
  });

  it('applies atol + rtol·|expected| exactly at the boundary', () => {
    const t = { atol: 0, rtol: 0.5 };
    expect(compareValues(15, 10, t).ok).to.equal(true); // |5| <= 0.5·10
    expect(compareValues(15.01, 10, t).ok).to.equal(false);
    expect(compareValues(0.5, 0, { atol: 0.5, rtol: 10 }).ok).to.equal(true);
  });

  it('reports shape and dtype mismatches', () => {
    const e = tf.zeros([2, 3]);
    const g1 = tf.zeros([3, 2]);
    const g2 = tf.zeros([2, 3], 'int32');
    const g3 = tf.zeros([6]);
    expect(compareValues(g1, e, tol).message).to.contain('shape: expected [2,3], got [3,2]');
    expect(compareValues(g3, e, tol).message).to.contain('same number of elements');
    expect(compareValues(g2, e, tol).message).to.contain('dtype: expected float32, got int32');
    // an int32 reference accepts float32 results with the same values
    const ei = tf.tensor1d([1, 2], 'int32');
    const gf = tf.tensor1d([1, 2]);
    expect(compareValues(gf, ei, tol).ok).to.equal(true);
    tf.dispose([e, g1, g2, g3, ei, gf]);
  });

  it('detects NaN and Infinity and counts them', () => {
    const e = tf.tensor1d([1, 2, 3]);
    const g = tf.tensor1d([1, NaN, NaN]);
    const c = compareValues(g, e, tol);
    expect(c.ok).to.equal(false);
    expect(c.message).to.contain('result[1]: got NaN, expected 2 (2 of 3 elements are NaN/Infinity)');
    expect(compareValues(Infinity, 1, tol).message).to.contain('got Infinity');
    // NaN expected matches NaN only
    expect(compareValues(NaN, NaN, tol).ok).to.equal(true);
    expect(compareValues(1, NaN, tol).ok).to.equal(false);
    expect(compareValues(-Infinity, -Infinity, tol).ok).to.equal(true);
    tf.dispose([e, g]);
  });

  it('walks arrays and objects and names the path', () => {
    const exp = { mean: [1, 2, 3], flags: [true, false], name: 'x' };
    expect(compareValues({ mean: [1, 2, 3], flags: [true, false], name: 'x', extra: 1 }, exp, tol).ok).to.equal(true);
    expect(compareValues({ mean: [1, 2.5, 3], flags: [true, false], name: 'x' }, exp, tol).message).to.contain('result.mean[1]: expected 2, got 2.5');
    expect(compareValues({ mean: [1, 2, 3], flags: [true, true], name: 'x' }, exp, tol).message).to.contain('result.flags[1]');
    expect(compareValues({ flags: [true, false], name: 'x' }, exp, tol).message).to.contain("missing key 'mean'");
    expect(compareValues([1, 2], [1, 2, 3], tol).message).to.contain('length 3, got length 2');
    expect(compareValues([[1], [2]], [[1], [3]], tol).message).to.contain('result[1][0]');
  });

  it('explains wrong kinds of results', () => {
    const s = tf.scalar(3);
    expect(compareValues(undefined, 3, tol).message).to.contain('forget to return');
    expect(compareValues(s, 3, tol).message).to.contain('dataSync()[0]');
    expect(compareValues([1, 2], s, tol).message).to.contain('tf.tensor');
    expect(compareValues(Promise.resolve(1), 1, tol).message).to.contain('Promise');
    expect(compareValues(new Map(), 1, tol).message).to.contain('instance of Map');
    const d = tf.scalar(1);
    d.dispose();
    expect(compareValues(d, s, tol).message).to.contain('disposed');
    s.dispose();
  });

  it('formats numbers compactly', () => {
    expect(formatNumber(0.123456789)).to.equal('0.12346');
    expect(formatNumber(1e-7)).to.equal('1.000e-7');
    expect(formatNumber(42)).to.equal('42');
  });
});
