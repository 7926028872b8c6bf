import { expect } from 'chai';
import { InvalidArgumentError } from '../../lib/errors';
import { entropy, klFromUniform, modeCoverage, tvFromUniform } from '../../lib/eval/coverage';

describe('eval: mode coverage (class histogram vs uniform)', () => {
  it('hand values: uniform, one class, two of four, a skewed three', () => {
    const u = modeCoverage([0, 1, 2, 3, 0, 1, 2, 3], 4);
    expect(u.counts).to.deep.equal([2, 2, 2, 2]);
    expect(u.entropy).to.be.closeTo(Math.log(4), 1e-12);
    expect(u.entropyRatio).to.be.closeTo(1, 1e-12);
    expect(u.effectiveClasses).to.be.closeTo(4, 1e-12);
    expect(u.klFromUniform).to.be.closeTo(0, 1e-12);
    expect(u.tvFromUniform).to.equal(0);
    expect(u.rareClasses).to.deep.equal([]);

    const one = modeCoverage([5, 5, 5], 10);
    expect(one.entropy).to.equal(0);
    expect(one.effectiveClasses).to.equal(1);
    expect(one.klFromUniform).to.be.closeTo(Math.log(10), 1e-12);
    expect(one.tvFromUniform).to.be.closeTo(0.9, 1e-12); // ½ (0.9 + 9 · 0.1)
    expect(one.rareClasses).to.deep.equal([0, 1, 2, 3, 4, 6, 7, 8, 9]);

    // p = (½, ½, 0, 0): H = ln 2, TV = ½ (¼ + ¼ + ¼ + ¼) = ½, KL = ln 4 − ln 2 = ln 2
    const two = modeCoverage([0, 1, 0, 1], 4);
    expect(two.entropy).to.be.closeTo(Math.LN2, 1e-12);
    expect(two.tvFromUniform).to.be.closeTo(0.5, 1e-12);
    expect(two.klFromUniform).to.be.closeTo(Math.LN2, 1e-12);
    expect(two.entropyRatio).to.be.closeTo(0.5, 1e-12);

    // p = (0.7, 0.2, 0.1): KL(p‖U) written out term by term
    const p = [0.7, 0.2, 0.1];
    const kl = p.reduce((s, v) => s + v * Math.log(3 * v), 0);
    expect(klFromUniform(p)).to.be.closeTo(kl, 1e-12);
    expect(entropy(p)).to.be.closeTo(-(0.7 * Math.log(0.7) + 0.2 * Math.log(0.2) + 0.1 * Math.log(0.1)), 1e-12);
    expect(tvFromUniform(p)).to.be.closeTo(0.5 * (0.7 - 1 / 3 + 1 / 3 - 0.2 + 1 / 3 - 0.1), 1e-12);
    // rare: below half of 1/3 = 0.1667 → class 2 (0.1) only
    expect(modeCoverage([0, 0, 0, 0, 0, 0, 0, 1, 1, 2], 3).rareClasses).to.deep.equal([2]);
  });

  it('bad input is a named error', () => {
    expect(() => modeCoverage([], 10)).to.throw(InvalidArgumentError, /no predictions/);
    expect(() => modeCoverage([0, 10], 10)).to.throw(InvalidArgumentError, /label 1 is 10/);
    expect(() => entropy([0.5, 0.6])).to.throw(InvalidArgumentError, /sum to 1/);
    expect(() => tvFromUniform([1])).to.throw(InvalidArgumentError, /≥ 2 classes/);
    expect(() => entropy([NaN, 1])).to.throw(InvalidArgumentError, /finite/);
  });
});
