import { expect } from 'chai';
import { expectRejects } from '../math/helpers';
import * as tf from '@tensorflow/tfjs';
import {
  compileVegaLite,
  gridPoints,
  histogram,
  histogramBins,
  histogramSpec,
  lineChart,
  lineChartSpec,
  renderVegaLite,
  scatter2d,
  scatter2dSpec,
  smoothEma,
  vectorField,
  vectorFieldSpec,
} from '../../lib/viz/charts';
import { InvalidArgumentError, NonFiniteError, ShapeMismatchError } from '../../lib/errors';
import { decodePng } from './png';

type Mark = { type: string; from?: { data?: string } };
/** Mark types of a compiled vega spec (nested groups included). */
function markTypes(spec: unknown): string[] {
  const out: string[] = [];
  const walk = (node: { marks?: Mark[] }): void => {
    for (const m of node.marks ?? []) {
      out.push(m.type);
      walk(m as { marks?: Mark[] });
    }
  };
  walk(spec as never);
  return out;
}
const nonWhite = (d: { px: Uint8ClampedArray }) => {
  let n = 0;
  for (let i = 0; i < d.px.length; i += 4) if (d.px[i] < 200 || d.px[i + 1] < 200 || d.px[i + 2] < 200) n++;
  return n;
};

describe('viz/charts', function () {
  this.timeout(30000);

  it('histogramBins: counts and densities match a direct count', () => {
    const values = [0, 0.1, 0.2, 0.5, 0.9, 1, 1, 5];
    const bins = histogramBins(values, 4, [0, 1]);
    expect(bins.map((b) => b.count)).to.deep.equal([3, 0, 1, 3]); // 1.0 lands in the last bin, 5 is outside
    expect(bins[0].x0).to.equal(0);
    expect(bins[3].x1).to.equal(1);
    // density · width sums to the fraction inside the range.
    expect(bins.reduce((a, b) => a + b.density * (b.x1 - b.x0), 0)).to.be.closeTo(7 / 8, 1e-12);
    expect(histogramBins([2, 2, 2], 3).reduce((a, b) => a + b.count, 0)).to.equal(3);
  });

  it('every helper produces a spec that compiles to the intended marks', () => {
    const before = tf.memory().numTensors;
    const pts = [[0, 0], [1, 1], [2, 0]];
    expect(markTypes(compileVegaLite(lineChartSpec([{ name: 'a', y: [3, 2, 1] }, { name: 'b', x: [0, 5, 9], y: [1, 2, 3] }])))).to.include('line');
    const h = compileVegaLite(histogramSpec([0, 1, 2], { density: 'normal' }));
    expect(markTypes(h)).to.include.members(['rect', 'line']);
    expect(markTypes(compileVegaLite(scatter2dSpec(pts, { groups: [0, 1, 1] })))).to.include('symbol');
    const vf = compileVegaLite(vectorFieldSpec(pts, [[1, 0], [0, 1], [0, 0]], { background: [[0, 1]] }));
    expect(markTypes(vf)).to.include.members(['rule', 'symbol']);
    expect(tf.memory().numTensors).to.equal(before);
    // the specs take arrays; a tensor goes to the async renderer, which reads it
    const t = tf.tensor2d(pts);
    expect(() => scatter2dSpec(t as unknown as number[][])).to.throw(ShapeMismatchError, /pass it to the async renderer/);
    expect(() => histogramSpec(t as unknown as number[])).to.throw(InvalidArgumentError, /async histogram/);
    t.dispose();
  });

  it('vectorField arrows end at point + arrowScale · vector; the default scale fits the point spacing', () => {
    const spec = vectorFieldSpec([[0, 0], [1, 2]], [[2, -1], [0, 0.5]], { arrowScale: 0.5 }) as unknown as {
      layer: { data: { values: { x: number; y: number; x2: number; y2: number }[] } }[];
    };
    expect(spec.layer[0].data.values).to.deep.include({ x: 0, y: 0, x2: 1, y2: -0.5, norm: Math.hypot(2, 1) });
    expect(spec.layer[0].data.values[1]).to.include({ x2: 1, y2: 2.25 });
    const g = gridPoints(-1, 1, 5);
    const v = tf.mul(g, 10) as tf.Tensor2D;
    const auto = vectorFieldSpec(g.arraySync(), v.arraySync()) as unknown as typeof spec;
    const longest = Math.max(...auto.layer[0].data.values.map((a) => Math.hypot(a.x2 - a.x, a.y2 - a.y)));
    expect(longest).to.be.closeTo(0.9 * 0.5, 1e-6); // spacing of a 5×5 grid over [-1, 1]² is 0.5
    tf.dispose([g, v]);
  });

  it('smoothEma: bias-corrected EMA; lineChart draws it next to the raw values', () => {
    // a = 0.5: m = 0.5, 1.25, 1.625 → divided by 1 − 0.5, 1 − 0.25, 1 − 0.125.
    const got = smoothEma([1, 2, 2], 0.5);
    [1, 1.25 / 0.75, 1.625 / 0.875].forEach((want, i) => expect(got[i]).to.be.closeTo(want, 1e-12));
    expect(smoothEma([3, 3, 3], 0.9).every((v) => Math.abs(v - 3) < 1e-12)).to.equal(true); // a constant stays put
    expect(smoothEma([1, 5], 0)).to.deep.equal([1, 5]);
    const spec = lineChartSpec({ name: 'loss', y: [1, 2, 2] }, { smooth: 0.5 }) as unknown as {
      data: { values: { y: number; kind: string }[] };
    };
    expect(spec.data.values.filter((v) => v.kind === 'smoothed').map((v) => v.y)).to.deep.equal(got);
    expect(spec.data.values.filter((v) => v.kind === 'raw').map((v) => v.y)).to.deep.equal([1, 2, 2]);
    expect(markTypes(compileVegaLite(spec as never))).to.include('line');
    expect(() => lineChartSpec({ y: [1] }, { smooth: 1 })).to.throw(InvalidArgumentError, /smooth/);
  });

  it('lineChart: log x axis, markers and labelled vertical reference lines', async () => {
    const series = [{ name: 'a', x: [10, 25, 50], y: [90, 92, 91] }, { name: 'one point', x: [9], y: [93] }];
    const spec = lineChartSpec(series, { logX: true, points: true, xRules: [{ x: 1000, label: 'DDPM: 1000 calls' }] });
    const marks = markTypes(compileVegaLite(spec));
    expect(marks).to.include.members(['line', 'symbol', 'rule', 'text']);
    const layers = (spec as unknown as { layer: { encoding: { x: { scale: { type?: string } } } }[] }).layer;
    expect(layers.map((l) => l.encoding.x.scale.type)).to.deep.equal(['log', 'log', 'log']);
    expect(markTypes(compileVegaLite(lineChartSpec(series, { logX: true })))).not.to.include('rule');
    const d = await decodePng(await lineChart(series, { logX: true, points: true, xRules: [{ x: 1000, label: 'DDPM' }] }));
    expect(nonWhite(d)).to.be.greaterThan(200);
    expect(() => lineChartSpec({ y: [1, 2] }, { logX: true })).to.throw(InvalidArgumentError, /x values > 0.*default x starts at 0/);
    expect(() => lineChartSpec({ x: [0, 1], y: [1, 2] }, { logX: true })).to.throw(InvalidArgumentError, /x values > 0/);
    expect(() => lineChartSpec({ x: [1, 2], y: [1, 2] }, { logX: true, xRules: [{ x: 0, label: 'zero' }] })).to.throw(InvalidArgumentError, /xRules\[0\]/);
    expect(() => lineChartSpec({ y: [1, 2] }, { xRules: [{ x: NaN, label: 'nan' }] })).to.throw(InvalidArgumentError, /finite/);
  });

  it('gridPoints covers the square row by row', () => {
    const g = gridPoints(-2, 2, 3);
    expect(g.arraySync()).to.deep.equal([[-2, -2], [0, -2], [2, -2], [-2, 0], [0, 0], [2, 0], [-2, 2], [0, 2], [2, 2]]);
    g.dispose();
  });

  it('renders each chart to a PNG with a white background and visible marks', async () => {
    const n = tf.randomNormal([2000], 0, 1, 'float32', 5);
    const corners = tf.tensor2d([[0, 0], [1, 0], [0, 1], [1, 1]]);
    const pngs = [
      await lineChart({ name: 'loss', y: [1, 0.5, 0.3, 0.2, 0.25, 0.1] }, { logY: true, title: 'loss', smooth: 0.6 }),
      await histogram(n, { density: 'normal' }),
      await scatter2d([[0, 0], [1, 1]], { width: 200, height: 150 }),
      await vectorField(corners, [[1, 0], [0, 1], [-1, 0], [0, -1]], { background: corners }),
    ];
    // tensors and arrays draw the same picture
    const two = tf.tensor2d([[0, 0], [1, 1]]);
    expect((await scatter2d(two, { width: 200, height: 150 })).equals(pngs[2])).to.equal(true);
    two.dispose();
    expect((await histogram(Array.from(n.dataSync()), { density: 'normal' })).equals(pngs[1])).to.equal(true);
    corners.dispose();
    for (const png of pngs) {
      const d = await decodePng(png);
      expect(d.width).to.be.within(200, 800);
      expect(Array.from(d.px.subarray(0, 4))).to.deep.equal([255, 255, 255, 255]);
      expect(nonWhite(d)).to.be.greaterThan(200);
    }
    // scale 2 doubles the pixel size.
    const big = await decodePng(await renderVegaLite(scatter2dSpec([[0, 0], [1, 1]], { width: 200, height: 150 }), { scale: 2 }));
    const small = await decodePng(pngs[2]);
    expect(big.width).to.equal(2 * small.width);
    n.dispose();
  });

  it('rejects bad input with named errors', async () => {
    expect(() => lineChartSpec([])).to.throw(InvalidArgumentError, /no series/);
    expect(() => lineChartSpec({ y: [] })).to.throw(InvalidArgumentError, /empty/);
    expect(() => lineChartSpec({ x: [1, 2], y: [1] })).to.throw(ShapeMismatchError, /2 x values and 1 y values/);
    expect(() => lineChartSpec({ y: [1, NaN] })).to.throw(NonFiniteError, /1 of 2/);
    expect(() => lineChartSpec({ y: [1, 0] }, { logY: true })).to.throw(InvalidArgumentError, /log axis/);
    expect(() => histogramSpec([])).to.throw(InvalidArgumentError, /no values/);
    expect(() => histogramSpec([1, Infinity])).to.throw(NonFiniteError);
    expect(() => histogramSpec([1, 2], { bins: 0 })).to.throw(InvalidArgumentError, /bins/);
    expect(() => scatter2dSpec([[1, 2, 3]])).to.throw(ShapeMismatchError, /\[N, 2\]/);
    expect(() => scatter2dSpec([])).to.throw(InvalidArgumentError, /no points/);
    const r3 = tf.zeros([2, 3]) as tf.Tensor2D;
    await expectRejects(() => scatter2d(r3), ShapeMismatchError, /\[2, 3\]/);
    r3.dispose();
    expect(() => vectorFieldSpec([[0, 0]], [[1, 1], [2, 2]])).to.throw(ShapeMismatchError, /1 points but 2 vectors/);
    expect(() => compileVegaLite({ mark: 'nonsense' } as never)).to.throw(InvalidArgumentError, /does not compile/);
    expect(() => gridPoints(1, 0, 5)).to.throw(InvalidArgumentError);
  });
});
