import { expect } from 'chai';
import { InvalidArgumentError } from '../../lib/errors';
import { makeRng, normal, seedStream, shuffle } from '../../lib/random';
import { seedStream as samplerSeedStream } from '../../lib/samplers/loop';

describe('lib/random', () => {
  it('makeRng: the same seed gives the same floats in [0, 1), another seed other floats', () => {
    const a = Array.from({ length: 1000 }, makeRng(7));
    expect(Array.from({ length: 1000 }, makeRng(7))).to.deep.equal(a);
    expect(Array.from({ length: 1000 }, makeRng(8))).to.not.deep.equal(a);
    expect(Math.min(...a)).to.be.at.least(0);
    expect(Math.max(...a)).to.be.below(1);
    // uniform: mean 1/2 ± 3 standard errors (1/√12/√1000 ≈ 0.0091)
    expect(a.reduce((s, v) => s + v, 0) / a.length).to.be.closeTo(0.5, 0.028);
  });

  it('normal: mean 0 and variance 1 within sampling error', () => {
    const rng = makeRng(3);
    const x = Array.from({ length: 20000 }, () => normal(rng));
    const mean = x.reduce((s, v) => s + v, 0) / x.length;
    const variance = x.reduce((s, v) => s + (v - mean) ** 2, 0) / (x.length - 1);
    expect(mean).to.be.closeTo(0, 0.03); // 3 / √20000 ≈ 0.021
    expect(variance).to.be.closeTo(1, 0.04); // sd of the estimate √(2/20000) = 0.01
  });

  it('shuffle: a seeded permutation, in place', () => {
    const items = Array.from({ length: 50 }, (_, i) => i);
    const out = shuffle(items, makeRng(1));
    expect(out).to.equal(items);
    expect([...out].sort((p, q) => p - q)).to.deep.equal(Array.from({ length: 50 }, (_, i) => i));
    expect(out).to.not.deep.equal(Array.from({ length: 50 }, (_, i) => i));
    expect(shuffle(Array.from({ length: 50 }, (_, i) => i), makeRng(1))).to.deep.equal(out);
  });

  describe('seedStream', () => {
    it('reproduces its integer seeds in [0, 2^32) from one seed and reports that seed', () => {
      const take = (seed: number, n: number) => {
        const s = seedStream(seed);
        return { seed: s.seed, draws: Array.from({ length: n }, s.next) };
      };
      const a = take(42, 100);
      expect(a.seed).to.equal(42);
      expect(take(42, 100).draws).to.deep.equal(a.draws);
      expect(take(43, 100).draws).to.not.deep.equal(a.draws);
      for (const v of a.draws) expect(Number.isInteger(v) && v >= 0 && v < 2 ** 32, String(v)).to.equal(true);
      expect(new Set(a.draws).size).to.equal(100);
      // the stream is makeRng scaled to 32 bits: independent of how the draws are consumed elsewhere
      const rng = makeRng(42);
      expect(a.draws.slice(0, 3)).to.deep.equal([0, 1, 2].map(() => Math.floor(rng() * 2 ** 32)));
    });

    it('without a seed picks one, reports it, and that seed replays the stream', () => {
      const s = seedStream();
      expect(Number.isInteger(s.seed) && s.seed >= 0 && s.seed < 2 ** 32).to.equal(true);
      const draws = [s.next(), s.next()];
      const again = seedStream(s.seed);
      expect([again.next(), again.next()]).to.deep.equal(draws);
    });

    it('rejects a seed that is not a finite number', () => {
      expect(() => seedStream(NaN)).to.throw(InvalidArgumentError, /seed must be a finite number, got NaN/);
      expect(() => seedStream(Infinity)).to.throw(InvalidArgumentError);
      expect(() => seedStream('7' as unknown as number)).to.throw(InvalidArgumentError);
    });

    it('is the one the samplers use (lib/samplers/loop re-exports it)', () => {
      expect(samplerSeedStream).to.equal(seedStream);
    });
  });
});
