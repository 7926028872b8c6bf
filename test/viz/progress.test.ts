import { expect } from 'chai';
import { formatDuration, formatProgress, progressBar } from '../../lib/viz/progress';
import { InvalidArgumentError } from '../../lib/errors';
import { fakeKernel } from './fake-kernel';

function fakeStream(isTTY: boolean) {
  const chunks: string[] = [];
  return { chunks, isTTY, write: (s: string) => void chunks.push(s) };
}
function fakeClock() {
  let t = 1000;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

describe('viz/progress', () => {
  it('formats step, metrics, it/s and ETA', () => {
    const st = { label: 'train', step: 25, total: 100, elapsedMs: 5000, metrics: { loss: 0.123456 }, width: 10, finished: false };
    // 25 steps in 5 s = 5 it/s; 75 left → 15 s.
    expect(formatProgress(st)).to.equal('train [███░░░░░░░] 25/100  loss 0.1235  5.0 it/s  ETA 0:15');
    expect(formatProgress({ ...st, step: 1, elapsedMs: 4000, metrics: { loss: 2e-5 } })).to.equal(
      'train [░░░░░░░░░░] 1/100  loss 2.00e-5  4.0 s/it  ETA 6:36',
    );
    expect(formatProgress({ ...st, step: 100, elapsedMs: 3725000, finished: true, metrics: {} })).to.match(/\[█{10}\] 100\/100 .* took 1:02:05$/);
    expect(formatProgress({ ...st, step: 0, elapsedMs: 0, metrics: { loss: NaN } })).to.equal('train [░░░░░░░░░░] 0/100  loss NaN');
    expect([formatDuration(59.6), formatDuration(61), formatDuration(Infinity)]).to.deep.equal(['1:00', '1:01', '?']);
  });

  it('a resumed run (initial = steps already done): rate and ETA count only the steps made since the bar started', () => {
    const s = fakeStream(false);
    const c = fakeClock();
    const bar = progressBar({ total: 10000, initial: 2500, label: 'x', stream: s, now: c.now, mode: 'lines' });
    c.advance(200000);
    bar.update(2600); // 100 steps in 200 s = 0.5 it/s → 2.0 s/it; 7,400 left → 4:06:40
    expect(bar.text).to.include('2600/10000').and.include('2.0 s/it').and.include('ETA 4:06:40');
    expect(() => progressBar({ total: 10, initial: 11, stream: s })).to.throw(InvalidArgumentError, /initial must be an integer from 0 to total/);
    expect(() => progressBar({ total: 10, initial: -1, stream: s })).to.throw(InvalidArgumentError, /initial/);
  });

  it('terminal: redraws in place with \\r, throttled, and ends the line on done()', () => {
    const s = fakeStream(true);
    const c = fakeClock();
    const bar = progressBar({ total: 10, label: 'x', stream: s, now: c.now, minIntervalMs: 100 });
    bar.update(1, { loss: 1 });
    c.advance(10);
    bar.update(2, { loss: 0.5 }); // within 100 ms: not drawn
    c.advance(200);
    bar.update(3);
    expect(s.chunks).to.have.length(2);
    expect(s.chunks.every((x) => x.startsWith('\r') && !x.includes('\n'))).to.equal(true);
    expect(s.chunks[1]).to.include('3/10').and.include('loss 0.5'); // metrics persist between updates
    bar.done();
    expect(s.chunks).to.have.length(3);
    expect(s.chunks[2].endsWith('\n')).to.equal(true);
    expect(s.chunks[2]).to.include('took');
    bar.update(4); // after done: ignored
    expect(s.chunks).to.have.length(3);
  });

  it('not a TTY (CI logs): whole lines at each 10 %, never \\r', () => {
    const s = fakeStream(false);
    const c = fakeClock();
    const bar = progressBar({ total: 100, stream: s, now: c.now });
    for (let i = 1; i <= 100; i++) {
      c.advance(1);
      bar.update(i);
    }
    bar.done();
    expect(s.chunks.join('')).to.not.include('\r');
    expect(s.chunks.every((x) => x.endsWith('\n'))).to.equal(true);
    // Steps 1 (0 %), 10, 20, … 100, plus the final line.
    expect(s.chunks.length).to.equal(12);
    // A slow loop still prints at least every 30 s.
    const slow = fakeStream(false);
    const bar2 = progressBar({ total: 1000, stream: slow, now: c.now });
    bar2.update(1);
    c.advance(31000);
    bar2.update(2);
    expect(slow.chunks).to.have.length(2);
  });

  it('inside tslab: one display, updated in place (same display_id, update flag after the first)', () => {
    const k = fakeKernel();
    try {
      const c = fakeClock();
      const bar = progressBar({ total: 4, label: 'sample', now: c.now });
      for (let i = 1; i <= 4; i++) {
        c.advance(300);
        bar.update(i, { loss: i });
      }
      bar.done();
      expect(k.messages).to.have.length(5);
      const ids = new Set(k.messages.map((m) => m.msg.transient.display_id));
      expect(ids.size).to.equal(1);
      expect(k.messages.map((m) => Boolean(m.update))).to.deep.equal([false, true, true, true, true]);
      expect(k.messages[4].msg.data['text/plain']).to.include('4/4').and.include('took');
    } finally {
      k.restore();
    }
  });

  it('rejects bad arguments', () => {
    expect(() => progressBar({ total: 0 })).to.throw(InvalidArgumentError, /total/);
    expect(() => progressBar({ total: 2.5 })).to.throw(InvalidArgumentError, /total/);
    expect(() => progressBar({ total: 5, mode: 'fancy' as never })).to.throw(InvalidArgumentError, /mode/);
    expect(() => progressBar({ total: 5, mode: 'notebook' })).to.throw(InvalidArgumentError, /tslab/);
    const bar = progressBar({ total: 5, mode: 'silent' });
    expect(() => bar.update(-1)).to.throw(InvalidArgumentError, /step/);
    expect(() => bar.update(NaN)).to.throw(InvalidArgumentError, /step/);
    expect(() => bar.update(1, { loss: 'x' as never })).to.throw(InvalidArgumentError, /loss/);
    bar.update(2, { loss: 0.25 });
    expect(bar.text).to.include('2/5').and.include('loss 0.25');
  });
});
