/**
 * One progress bar for notebooks and scripts:
 *
 *   const bar = progressBar({ total: steps, label: 'train' });
 *   for (let s = 1; s <= steps; s++) { …; bar.update(s, { loss }); }
 *   bar.done();
 *
 * Where it draws (mode 'auto'):
 *   - inside a tslab cell: one output line that each update REPLACES (tslab.newDisplay());
 *   - on a terminal: stderr, redrawn in place with '\r';
 *   - stderr not a TTY (CI logs, pipes): plain lines at every 10 % and at least every 30 s, so logs stay short.
 * Updates are throttled (a bar must never slow a training loop); done() always draws the final state.
 * In a notebook, output leaves the kernel only when the cell's code yields to the event loop: a long synchronous loop
 * should `await` now and then (any awaited data or tensor read does it) for the line to move.
 */
import { InvalidArgumentError } from '../errors';
import { DisplaySink, inTslab, newTslabDisplay } from './display';

export type ProgressMode = 'auto' | 'notebook' | 'tty' | 'lines' | 'silent';

export interface ProgressOptions {
  total: number;
  label?: string;
  mode?: ProgressMode;
  /** Terminal modes write here (default process.stderr). */
  stream?: { write(s: string): unknown; isTTY?: boolean };
  /** Notebook mode draws here (default tslab.newDisplay()); tests pass a double. */
  display?: Pick<DisplaySink, 'text'>;
  /** Minimum time between redraws in tty / notebook mode (default 100 / 250 ms). */
  minIntervalMs?: number;
  /** Clock in ms (tests inject one). */
  now?: () => number;
  /** Bar width in characters (default 24). */
  width?: number;
  /** Steps already done when the bar starts (a resumed run): the rate and ETA count only the steps made since. */
  initial?: number;
}

export interface ProgressBar {
  update(step: number, metrics?: Record<string, number>): void;
  done(metrics?: Record<string, number>): void;
  /** The most recent line (drawn or not). */
  readonly text: string;
}

export interface ProgressState {
  label: string;
  step: number;
  total: number;
  elapsedMs: number;
  metrics: Record<string, number>;
  width: number;
  finished: boolean;
  /** Steps done before elapsedMs started counting (default 0). */
  initial?: number;
}

/** m:ss or h:mm:ss. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

function formatMetric(v: number): string {
  if (!Number.isFinite(v)) return String(v); // NaN / Infinity shown as such: the trainer decides what to do
  if (v !== 0 && Math.abs(v) < 1e-3) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

/** The bar as one line of text (pure, so tests can check it). */
export function formatProgress(st: ProgressState): string {
  const frac = Math.min(1, Math.max(0, st.step / st.total));
  const filled = Math.round(frac * st.width);
  const bar = '█'.repeat(filled) + '░'.repeat(st.width - filled);
  const parts = [`${st.label ? st.label + ' ' : ''}[${bar}] ${st.step}/${st.total}`];
  for (const [k, v] of Object.entries(st.metrics)) parts.push(`${k} ${formatMetric(v)}`);
  const secs = st.elapsedMs / 1000;
  const made = st.step - (st.initial ?? 0);
  if (made > 0 && secs > 0) {
    const rate = made / secs;
    parts.push(rate >= 1 ? `${rate.toFixed(1)} it/s` : `${(1 / rate).toFixed(1)} s/it`);
    parts.push(st.finished ? `took ${formatDuration(secs)}` : `ETA ${formatDuration((st.total - st.step) / rate)}`);
  } else if (st.finished) {
    parts.push(`took ${formatDuration(secs)}`);
  }
  return parts.join('  ');
}

function resolveMode(opts: ProgressOptions): Exclude<ProgressMode, 'auto'> {
  const mode = opts.mode ?? 'auto';
  if (mode !== 'auto') return mode;
  if (opts.display) return 'notebook';
  if (!opts.stream && inTslab()) return 'notebook';
  return (opts.stream ?? process.stderr).isTTY ? 'tty' : 'lines';
}

export function progressBar(opts: ProgressOptions): ProgressBar {
  const { total } = opts;
  if (!Number.isInteger(total) || total <= 0) throw new InvalidArgumentError(`progressBar: total must be a positive integer, got ${total}`);
  const valid: ProgressMode[] = ['auto', 'notebook', 'tty', 'lines', 'silent'];
  if (opts.mode !== undefined && !valid.includes(opts.mode)) {
    throw new InvalidArgumentError(`progressBar: mode must be one of ${valid.join(', ')}, got ${opts.mode}`);
  }
  const now = opts.now ?? Date.now;
  const mode = resolveMode(opts);
  const stream = opts.stream ?? process.stderr;
  const display = mode === 'notebook' ? (opts.display ?? newTslabDisplay()) : undefined;
  if (mode === 'notebook' && !display) {
    throw new InvalidArgumentError("progressBar: mode 'notebook' needs a tslab kernel (or a display option)");
  }
  const minInterval = opts.minIntervalMs ?? (mode === 'notebook' ? 250 : 100);
  const initial = opts.initial ?? 0;
  if (!(Number.isInteger(initial) && initial >= 0 && initial <= total)) {
    throw new InvalidArgumentError(`progressBar: initial must be an integer from 0 to total (${total}), got ${opts.initial}`);
  }
  const start = now();
  const state: ProgressState = {
    label: opts.label ?? '',
    step: initial,
    total,
    initial,
    elapsedMs: 0,
    metrics: {},
    width: opts.width ?? 24,
    finished: false,
  };
  let text = formatProgress(state);
  let lastDraw = -Infinity;
  let lastDecile = -1;
  let prevLen = 0;

  const draw = (final: boolean) => {
    const t = now();
    if (mode === 'silent') return;
    if (mode === 'lines') {
      const decile = Math.floor((10 * state.step) / total);
      if (!final && decile === lastDecile && t - lastDraw < 30000) return;
      lastDecile = decile;
      lastDraw = t;
      stream.write(text + '\n');
      return;
    }
    if (!final && t - lastDraw < minInterval) return;
    lastDraw = t;
    if (mode === 'notebook') {
      display!.text(text);
    } else {
      // Pad with spaces so a shorter line fully covers the previous one.
      stream.write('\r' + text + ' '.repeat(Math.max(0, prevLen - text.length)) + (final ? '\n' : ''));
      prevLen = text.length;
    }
  };

  const setMetrics = (metrics?: Record<string, number>) => {
    if (!metrics) return;
    for (const [k, v] of Object.entries(metrics)) {
      if (typeof v !== 'number') throw new InvalidArgumentError(`progressBar: metric "${k}" must be a number, got ${typeof v}`);
      state.metrics[k] = v;
    }
  };

  return {
    update(step: number, metrics?: Record<string, number>) {
      if (state.finished) return;
      if (!(Number.isFinite(step) && step >= 0)) {
        throw new InvalidArgumentError(`progressBar.update: step must be a finite number ≥ 0, got ${step}`);
      }
      state.step = step;
      state.elapsedMs = now() - start;
      setMetrics(metrics);
      text = formatProgress(state);
      draw(false);
    },
    done(metrics?: Record<string, number>) {
      if (state.finished) return;
      setMetrics(metrics);
      state.finished = true;
      state.elapsedMs = now() - start;
      text = formatProgress(state);
      draw(true);
    },
    get text() {
      return text;
    },
  };
}
