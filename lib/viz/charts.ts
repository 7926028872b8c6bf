/**
 * Charts as PNG: vega-lite specs compiled and rendered by vega's node-canvas renderer (vega 5 / vega-lite 5: the
 * CommonJS builds that tslab can require). Each helper has a `…Spec` twin that returns the vega-lite spec, so
 * notebooks can tweak it and pass it to `renderVegaLite`.
 *
 * One API for data: every renderer (lineChart, histogram, scatter2d, vectorField) is async and accepts tensors, which
 * it reads with awaited reads; the `…Spec` functions are synchronous and take plain arrays only.
 *
 *   show(await lineChart({ name: 'loss', y: losses }, { yLabel: 'MSE', logY: true }));
 */
import * as tf from '@tensorflow/tfjs';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';
import { InvalidArgumentError, NonFiniteError, ShapeMismatchError } from '../errors';

type Numbers = ArrayLike<number>;
/** Points [N, 2]: rows of numbers, or (renderers only) a tensor, read back asynchronously. */
type Points = tf.Tensor2D | number[][];

export interface ChartOptions {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  /** Plot size in pixels, excluding axes (defaults 400 × 260). */
  width?: number;
  height?: number;
}

export interface RenderOptions {
  /** Pixel density of the PNG (default 1; 2 for crisp HiDPI output). */
  scale?: number;
}

/** vega-lite → vega, with a clear error for a spec that does not compile. */
export function compileVegaLite(spec: TopLevelSpec): vega.Spec {
  try {
    return vl.compile(spec).spec as vega.Spec;
  } catch (e) {
    throw new InvalidArgumentError(`vega-lite spec does not compile: ${(e as Error).message}`);
  }
}

/** Render any vega-lite spec to PNG bytes on a white background. */
export async function renderVegaLite(spec: TopLevelSpec, opts: RenderOptions = {}): Promise<Buffer> {
  const scale = opts.scale ?? 1;
  if (!(scale > 0 && Number.isFinite(scale))) throw new InvalidArgumentError(`scale must be a number > 0, got ${scale}`);
  const view = new vega.View(vega.parse(compileVegaLite({ background: 'white', ...spec } as TopLevelSpec)), {
    renderer: 'none',
  });
  try {
    const canvas = (await view.toCanvas(scale)) as unknown as { toBuffer(mime: 'image/png'): Buffer };
    return canvas.toBuffer('image/png');
  } finally {
    view.finalize(); // release timers and listeners
  }
}

function toRows(points: number[][], what: string): number[][] {
  if (!Array.isArray(points) || points.some((r) => !Array.isArray(r) || r.length !== 2)) {
    const shape = Array.isArray(points) ? `${points.length} rows` : `[${(points as unknown as tf.Tensor).shape?.join(', ')}] (a tensor: pass it to the async renderer)`;
    throw new ShapeMismatchError(`${what}: expected points [N, 2], got ${shape}`);
  }
  if (points.length === 0) throw new InvalidArgumentError(`${what}: no points to plot`);
  return points;
}

/** Points as rows: a tensor [N, 2] is read back (awaited); arrays pass through to toRows' checks. */
async function readRows(points: Points, what: string): Promise<number[][]> {
  if (Array.isArray(points)) return points;
  if (points.rank !== 2 || points.shape[1] !== 2) throw new ShapeMismatchError(`${what}: expected points [N, 2], got [${points.shape.join(', ')}]`);
  return (await points.array()) as number[][];
}

/** Duck-typed (not instanceof) so a tensor from another tfjs copy is accepted too. */
function isTensorLike(v: unknown): v is tf.Tensor {
  return typeof v === 'object' && v !== null && typeof (v as tf.Tensor).data === 'function' && Array.isArray((v as tf.Tensor).shape);
}

function finiteOrThrow(values: Numbers, what: string): void {
  let bad = 0;
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) bad++;
  if (bad > 0) throw new NonFiniteError(`${what}: ${bad} of ${values.length} values are NaN or ±Infinity`);
}

const size = (o: ChartOptions, w = 400, h = 260) => ({ width: o.width ?? w, height: o.height ?? h });
const schema = 'https://vega.github.io/schema/vega-lite/v5.json';

// ---------------------------------------------------------------------------------------------------------------- line

export interface LineSeries {
  name?: string;
  /** x values (default 0, 1, 2 …). */
  x?: Numbers;
  y: Numbers;
}

/** A vertical reference line across the plot (e.g. another method's cost), labelled at its top. */
export interface XRule {
  x: number;
  label: string;
}

export interface LineOptions extends ChartOptions {
  /** Logarithmic y axis (losses). Non-positive values are then rejected. */
  logY?: boolean;
  /** Logarithmic x axis (costs spanning decades). Non-positive x values (and rules) are then rejected. */
  logX?: boolean;
  /** Draw a marker at every point (measured values; a one-point series is then visible too). */
  points?: boolean;
  /** Vertical dashed reference lines with labels, drawn behind the series. */
  xRules?: XRule[];
  /**
   * Smoothing factor in [0, 1) for noisy curves (minibatch losses): each series is drawn faint as recorded and bold as
   * its bias-corrected exponential moving average (see `smoothEma`). 0 = off (default).
   */
  smooth?: number;
}

/**
 * Bias-corrected exponential moving average, as loss plots use: m_i = a·m_{i−1} + (1−a)·y_i, m_{−1} = 0, shown as
 * m_i / (1 − a^{i+1}) so the first points are not pulled towards 0.
 */
export function smoothEma(y: Numbers, a: number): number[] {
  if (!(a >= 0 && a < 1)) throw new InvalidArgumentError(`smooth must be in [0, 1), got ${a}`);
  const out: number[] = [];
  let m = 0;
  let decay = 1;
  for (let i = 0; i < y.length; i++) {
    m = a * m + (1 - a) * y[i];
    decay *= a;
    out.push(m / (1 - decay));
  }
  return out;
}

export function lineChartSpec(series: LineSeries | LineSeries[], opts: LineOptions = {}): TopLevelSpec {
  const list = Array.isArray(series) ? series : [series];
  if (list.length === 0) throw new InvalidArgumentError('lineChart: no series given');
  const smooth = opts.smooth ?? 0;
  if (!(smooth >= 0 && smooth < 1)) throw new InvalidArgumentError(`lineChart: smooth must be in [0, 1), got ${smooth}`);
  const values: { x: number; y: number; series: string; kind: 'raw' | 'smoothed' }[] = [];
  list.forEach((s, k) => {
    const name = s.name ?? `series ${k + 1}`;
    if (s.y.length === 0) throw new InvalidArgumentError(`lineChart: series "${name}" is empty`);
    if (s.x && s.x.length !== s.y.length) {
      throw new ShapeMismatchError(`lineChart: series "${name}" has ${s.x.length} x values and ${s.y.length} y values`);
    }
    finiteOrThrow(s.y, `lineChart: series "${name}"`);
    if (opts.logY && Array.from(s.y).some((v) => v <= 0)) {
      throw new InvalidArgumentError(`lineChart: series "${name}" has values ≤ 0, which a log axis cannot show`);
    }
    if (opts.logX && (!s.x || Array.from(s.x).some((v) => !(v > 0)))) {
      throw new InvalidArgumentError(`lineChart: series "${name}" needs x values > 0 for a log x axis${s.x ? '' : ' (its default x starts at 0)'}`);
    }
    const xAt = (i: number) => (s.x ? s.x[i] : i);
    for (let i = 0; i < s.y.length; i++) values.push({ x: xAt(i), y: s.y[i], series: name, kind: 'raw' });
    if (smooth > 0) smoothEma(s.y, smooth).forEach((y, i) => values.push({ x: xAt(i), y, series: name, kind: 'smoothed' }));
  });
  const rules = opts.xRules ?? [];
  rules.forEach((r, i) => {
    if (!Number.isFinite(r.x) || (opts.logX && !(r.x > 0))) throw new InvalidArgumentError(`lineChart: xRules[${i}].x must be a finite number${opts.logX ? ' > 0 (log x axis)' : ''}, got ${r.x}`);
  });
  // With markers, keep them off the plot's edges (padding in pixels); a log x axis is not rounded out to a whole decade.
  const pad = opts.points ? { padding: 10 } : {};
  const x = { field: 'x', type: 'quantitative', title: opts.xLabel ?? 'step', scale: opts.logX ? { type: 'log', nice: false, ...pad } : { zero: false, ...pad } };
  const lines = {
    data: { values },
    mark: { type: 'line', clip: true, ...(opts.points ? { point: true } : {}) },
    encoding: {
      x,
      y: { field: 'y', type: 'quantitative', title: opts.yLabel ?? 'value', scale: opts.logY ? { type: 'log', ...pad } : { zero: false, ...pad } },
      color: { field: 'series', type: 'nominal', title: null, legend: list.length > 1 ? {} : null },
      // One line per (series, kind); the recorded values fade behind their smoothed curve.
      detail: { field: 'kind', type: 'nominal' },
      opacity: smooth > 0 ? { field: 'kind', type: 'ordinal', scale: { domain: ['raw', 'smoothed'], range: [0.3, 1] }, legend: null } : { value: 1 },
    },
  };
  const top = { $schema: schema, title: opts.title, ...size(opts) };
  if (rules.length === 0) return { ...top, ...lines } as TopLevelSpec;
  const ruleData = { values: rules.map((r) => ({ x: r.x, label: r.label })) };
  return {
    ...top,
    layer: [
      { data: ruleData, mark: { type: 'rule', strokeDash: [4, 4], color: '#888888' }, encoding: { x } },
      {
        data: ruleData,
        mark: { type: 'text', align: 'right', baseline: 'top', dx: -4, dy: 4, color: '#555555' },
        encoding: { x, y: { value: 0 }, text: { field: 'label', type: 'nominal' } },
      },
      lines,
    ],
  } as TopLevelSpec;
}

export function lineChart(series: LineSeries | LineSeries[], opts: LineOptions & RenderOptions = {}): Promise<Buffer> {
  return renderVegaLite(lineChartSpec(series, opts), opts);
}

// ----------------------------------------------------------------------------------------------------------- histogram

export interface HistogramOptions extends ChartOptions {
  /** Number of equal-width bins (default 40). */
  bins?: number;
  /** Bin range (default [min, max] of the values). Values outside it are left out. */
  range?: [number, number];
  /** y as a density (area 1, comparable with a pdf; default) or as counts. */
  normalize?: boolean;
  /** Overlay a density curve: 'normal' = N(0, 1), or any pdf. Implies normalize. */
  density?: 'normal' | ((x: number) => number);
  densityLabel?: string;
}

export interface HistogramBin {
  x0: number;
  x1: number;
  count: number;
  /** count / (n · width): integrates to the fraction of values inside the range. */
  density: number;
}

/** Equal-width bins; the last bin includes its right edge. */
export function histogramBins(values: Numbers, bins: number, range?: [number, number]): HistogramBin[] {
  if (!Number.isInteger(bins) || bins <= 0) throw new InvalidArgumentError(`bins must be a positive integer, got ${bins}`);
  if (values.length === 0) throw new InvalidArgumentError('histogram: no values');
  finiteOrThrow(values, 'histogram');
  let [lo, hi] = range ?? [Infinity, -Infinity];
  if (!range) for (let i = 0; i < values.length; i++) (lo = Math.min(lo, values[i])), (hi = Math.max(hi, values[i]));
  if (!(hi >= lo)) throw new InvalidArgumentError(`histogram: range [${lo}, ${hi}] is empty`);
  if (hi === lo) (lo -= 0.5), (hi += 0.5); // all values equal: one visible bar
  const width = (hi - lo) / bins;
  const counts = new Array<number>(bins).fill(0);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < lo || v > hi) continue;
    counts[Math.min(bins - 1, Math.floor((v - lo) / width))]++;
  }
  return counts.map((count, k) => ({ x0: lo + k * width, x1: lo + (k + 1) * width, count, density: count / (values.length * width) }));
}

const standardNormalPdf = (x: number) => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);

export function histogramSpec(values: Numbers, opts: HistogramOptions = {}): TopLevelSpec {
  if (isTensorLike(values)) throw new InvalidArgumentError('histogramSpec takes numbers; pass a tensor to the async histogram()');
  const bins = histogramBins(values, opts.bins ?? 40, opts.range);
  const normalize = opts.normalize ?? true;
  const yField = normalize || opts.density ? 'density' : 'count';
  const bars = {
    data: { values: bins },
    mark: { type: 'bar', color: '#4c78a8', opacity: 0.75 },
    encoding: {
      x: { field: 'x0', type: 'quantitative', bin: { binned: true }, title: opts.xLabel ?? 'value' },
      x2: { field: 'x1' },
      y: { field: yField, type: 'quantitative', title: opts.yLabel ?? yField },
    },
  };
  const layers: object[] = [bars];
  if (opts.density) {
    const pdf = opts.density === 'normal' ? standardNormalPdf : opts.density;
    const lo = bins[0].x0;
    const hi = bins[bins.length - 1].x1;
    const curve = Array.from({ length: 201 }, (_, i) => {
      const x = lo + ((hi - lo) * i) / 200;
      return { x, density: pdf(x) };
    });
    finiteOrThrow(curve.map((p) => p.density), 'histogram: density curve');
    const label = opts.densityLabel ?? (opts.density === 'normal' ? 'N(0, 1)' : 'density');
    layers.push({
      data: { values: curve.map((p) => ({ ...p, curve: label })) },
      mark: { type: 'line', strokeWidth: 2 },
      encoding: {
        x: { field: 'x', type: 'quantitative' },
        y: { field: 'density', type: 'quantitative' },
        color: { field: 'curve', type: 'nominal', title: null, scale: { range: ['#e45756'] } },
      },
    });
  }
  return { $schema: schema, title: opts.title, ...size(opts), layer: layers } as TopLevelSpec;
}

/** A histogram of numbers or of a tensor's values (read back, awaited). */
export async function histogram(values: Numbers | tf.Tensor, opts: HistogramOptions & RenderOptions = {}): Promise<Buffer> {
  const data = isTensorLike(values) ? await values.data() : values;
  return renderVegaLite(histogramSpec(data, opts), opts);
}

// -------------------------------------------------------------------------------------------------------- scatter / field

export interface ScatterOptions extends ChartOptions {
  /** A class / group per point, shown as colour. */
  groups?: ArrayLike<number | string>;
  /** Same fixed domain for both axes, e.g. [-3, 3] (default: fitted to the data). */
  domain?: [number, number];
  pointSize?: number;
  opacity?: number;
}

function axis(field: string, title: string, domain?: [number, number]) {
  return { field, type: 'quantitative', title, scale: domain ? { domain } : { zero: false } };
}

function scatterLayer(rows: number[][], opts: ScatterOptions): object {
  if (opts.groups && opts.groups.length !== rows.length) {
    throw new ShapeMismatchError(`scatter2d: ${opts.groups.length} groups for ${rows.length} points`);
  }
  return {
    data: { values: rows.map(([x, y], i) => ({ x, y, group: opts.groups ? String(opts.groups[i]) : '' })) },
    mark: { type: 'circle', size: opts.pointSize ?? 12, opacity: opts.opacity ?? 0.6, clip: true },
    encoding: {
      x: axis('x', opts.xLabel ?? 'x₁', opts.domain),
      y: axis('y', opts.yLabel ?? 'x₂', opts.domain),
      ...(opts.groups ? { color: { field: 'group', type: 'nominal', title: null } } : { color: { value: '#4c78a8' } }),
    },
  };
}

export function scatter2dSpec(points: number[][], opts: ScatterOptions = {}): TopLevelSpec {
  const rows = toRows(points, 'scatter2d');
  finiteOrThrow(rows.flat(), 'scatter2d');
  return { $schema: schema, title: opts.title, ...size(opts, 320, 320), ...scatterLayer(rows, opts) } as TopLevelSpec;
}

export async function scatter2d(points: Points, opts: ScatterOptions & RenderOptions = {}): Promise<Buffer> {
  return renderVegaLite(scatter2dSpec(await readRows(points, 'scatter2d'), opts), opts);
}

export interface VectorFieldOptions extends ChartOptions {
  /** Arrow length = vector · scale (default: the longest arrow spans 90 % of the typical spacing between points). */
  arrowScale?: number;
  /** Points drawn underneath (e.g. samples of the data), grey. */
  background?: Points;
  domain?: [number, number];
}

/** An n × n grid of points over [lo, hi]², float32 [n², 2] (row-major, y outer), for evaluating a field. */
export function gridPoints(lo: number, hi: number, n: number): tf.Tensor2D {
  if (!Number.isInteger(n) || n < 2) throw new InvalidArgumentError(`gridPoints: n must be an integer ≥ 2, got ${n}`);
  if (!(hi > lo)) throw new InvalidArgumentError(`gridPoints: need lo < hi, got [${lo}, ${hi}]`);
  const out = new Float32Array(2 * n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      out[2 * (i * n + j)] = lo + ((hi - lo) * j) / (n - 1);
      out[2 * (i * n + j) + 1] = lo + ((hi - lo) * i) / (n - 1);
    }
  return tf.tensor2d(out, [n * n, 2]);
}

/** vectorFieldSpec's options: as VectorFieldOptions, with the background as rows. */
export type VectorFieldSpecOptions = Omit<VectorFieldOptions, 'background'> & { background?: number[][] };

/** Quiver plot: a segment from each point along its vector, with a dot at the head. */
export function vectorFieldSpec(points: number[][], vectors: number[][], opts: VectorFieldSpecOptions = {}): TopLevelSpec {
  const p = toRows(points, 'vectorField points');
  const v = toRows(vectors, 'vectorField vectors');
  if (p.length !== v.length) throw new ShapeMismatchError(`vectorField: ${p.length} points but ${v.length} vectors`);
  finiteOrThrow(p.flat(), 'vectorField points');
  finiteOrThrow(v.flat(), 'vectorField vectors');
  let scale = opts.arrowScale;
  if (scale === undefined) {
    const xs = p.map((r) => r[0]);
    const ys = p.map((r) => r[1]);
    // Typical spacing of points spread over their bounding box (exact for an n × n grid).
    const area = (Math.max(...xs) - Math.min(...xs) || 1) * (Math.max(...ys) - Math.min(...ys) || 1);
    const spacing = Math.sqrt(area) / Math.max(1, Math.sqrt(p.length) - 1);
    const longest = Math.max(...v.map(([a, b]) => Math.hypot(a, b)));
    scale = longest > 0 ? (0.9 * spacing) / longest : 1;
  }
  if (!(Number.isFinite(scale) && scale > 0)) throw new InvalidArgumentError(`arrowScale must be a number > 0, got ${scale}`);
  const arrows = p.map(([x, y], i) => ({ x, y, x2: x + scale! * v[i][0], y2: y + scale! * v[i][1], norm: Math.hypot(v[i][0], v[i][1]) }));
  const x = axis('x', opts.xLabel ?? 'x₁', opts.domain);
  const y = axis('y', opts.yLabel ?? 'x₂', opts.domain);
  const layers: object[] = [];
  if (opts.background) {
    const bg = toRows(opts.background, 'vectorField background');
    layers.push({
      data: { values: bg.map(([a, b]) => ({ x: a, y: b })) },
      mark: { type: 'circle', size: 8, opacity: 0.35, color: '#999999', clip: true },
      encoding: { x, y },
    });
  }
  layers.push(
    {
      data: { values: arrows },
      mark: { type: 'rule', strokeWidth: 1.2, clip: true },
      encoding: { x, y, x2: { field: 'x2' }, y2: { field: 'y2' }, color: { field: 'norm', type: 'quantitative', title: '|v|' } },
    },
    {
      data: { values: arrows },
      mark: { type: 'point', filled: true, size: 18, clip: true },
      encoding: { x: { ...x, field: 'x2' }, y: { ...y, field: 'y2' }, color: { field: 'norm', type: 'quantitative', title: '|v|' } },
    },
  );
  return { $schema: schema, title: opts.title, ...size(opts, 360, 360), layer: layers } as TopLevelSpec;
}

export async function vectorField(points: Points, vectors: Points, opts: VectorFieldOptions & RenderOptions = {}): Promise<Buffer> {
  const [p, v, background] = await Promise.all([
    readRows(points, 'vectorField points'),
    readRows(vectors, 'vectorField vectors'),
    opts.background === undefined ? undefined : readRows(opts.background, 'vectorField background'),
  ]);
  return renderVegaLite(vectorFieldSpec(p, v, { ...opts, background }), opts);
}
