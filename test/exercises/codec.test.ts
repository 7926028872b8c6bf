import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { cloneArgs, decodeValue, disposeValue, encodeValue, HostTensor, readValue, toTensor, UnsupportedValue } from '../../lib/exercises/codec';
import { compareValues } from '../../lib/exercises/compare';
import { InvalidArgumentError } from '../../lib/errors';

describe('exercises/codec', () => {
  let before = 0;
  beforeEach(() => (before = tf.memory().numTensors));
  afterEach(() => expect(tf.memory().numTensors).to.equal(before));

  it('round-trips nested values with tensors of every dtype through JSON text', () => {
    const v = {
      x: tf.tensor([1.5, -2, NaN, Infinity], [2, 2]),
      t: tf.tensor1d([0, 9], 'int32'),
      m: tf.tensor1d([1, 0], 'bool'),
      s: tf.tensor1d(['a', 'b'], 'string'),
      list: [1, -Infinity, NaN, 'str', true, null, [2, 3]],
    };
    const text = JSON.stringify(encodeValue(v));
    const back = decodeValue(JSON.parse(text)) as Record<string, tf.Tensor>;
    expect(back.x.shape).to.deep.equal([2, 2]);
    expect(back.t.dtype).to.equal('int32');
    expect(back.m.dtype).to.equal('bool');
    expect(Array.from(back.x.dataSync())).to.deep.equal([1.5, -2, NaN, Infinity]);
    expect(back.s.dataSync()).to.deep.equal(['a', 'b']);
    expect(compareValues(back, v, { atol: 0, rtol: 0 }).ok).to.equal(true);
    disposeValue(back);
    disposeValue(v);
  });

  it('float32 data survives exactly', () => {
    const x = tf.randomNormal([100], 0, 1, 'float32', 7);
    const y = decodeValue(JSON.parse(JSON.stringify(encodeValue(x)))) as tf.Tensor;
    expect(Array.from(y.dataSync())).to.deep.equal(Array.from(x.dataSync()));
    tf.dispose([x, y]);
  });

  it('rejects non-values unless lenient, and describes them when lenient', () => {
    expect(() => encodeValue({ a: undefined })).to.throw(InvalidArgumentError, 'value.a is undefined');
    expect(() => encodeValue({ __tensor: 1 })).to.throw(InvalidArgumentError, 'reserved key');
    const back = decodeValue(encodeValue([() => 1], { lenient: true }));
    expect((back as unknown[])[0]).to.be.instanceOf(UnsupportedValue);
    expect(((back as unknown[])[0] as UnsupportedValue).description).to.equal('a function');
  });

  it('rejects malformed tensors with a clear message', () => {
    expect(() => decodeValue({ __tensor: { shape: [2], dtype: 'float32', data: [1] } })).to.throw(InvalidArgumentError, '2 elements');
    expect(() => decodeValue({ __tensor: { shape: [1], dtype: 'float64', data: [1] } })).to.throw(InvalidArgumentError, 'dtype');
  });

  it('readValue reads every tensor with await data() into HostTensors (no tensor kept), which compare and encode like tensors', async () => {
    const v = { x: tf.tensor([1, 2, 3, 4], [2, 2]), list: [tf.scalar(5, 'int32'), 7] };
    const h = (await readValue(v)) as { x: HostTensor; list: [HostTensor, number] };
    expect(h.x).to.be.instanceOf(HostTensor);
    expect(h.x.shape).to.deep.equal([2, 2]);
    expect(Array.from(h.x.values as Float32Array)).to.deep.equal([1, 2, 3, 4]);
    expect(h.list[0].dtype).to.equal('int32');
    expect(compareValues(h, v, { atol: 0, rtol: 0 }).ok).to.equal(true);
    expect(JSON.stringify(encodeValue(h))).to.equal(JSON.stringify(encodeValue(v)));
    disposeValue(v);
    // a disposed tensor becomes a description, not a throw
    const gone = tf.scalar(1);
    gone.dispose();
    expect(await readValue(gone)).to.be.instanceOf(UnsupportedValue);
  });

  it('decodes to HostTensors without making tensors (the grader), with float32 rounding applied', () => {
    const tensors = tf.memory().numTensors;
    const h = decodeValue({ __tensor: { shape: [2], dtype: 'float32', data: [0.1, 'NaN'] } }, { host: true }) as unknown as HostTensor;
    expect(tf.memory().numTensors).to.equal(tensors);
    expect(h.values[0]).to.equal(Math.fround(0.1));
    expect(Number.isNaN(h.values[1])).to.equal(true);
    const t = toTensor(h);
    expect(Array.from(t.dataSync())).to.deep.equal(Array.from(h.values as Float32Array));
    t.dispose();
  });

  it('cloneArgs copies arrays and objects but shares tensors', () => {
    const t = tf.scalar(1);
    const a = [[1, 2], { k: [3] }, t];
    const c = cloneArgs(a);
    (c[0] as number[]).push(9);
    expect(a[0]).to.deep.equal([1, 2]);
    expect(c[2]).to.equal(t);
    t.dispose();
  });
});
