/**
 * Where pictures and live text go: inline in a tslab notebook, else (CLI scripts, tests) nowhere or to a file.
 *
 * tslab detection: tslab's kernel stores the current cell's output writer in `tslab/dist/jupyter`'s
 * `lastWriteDisplayData` before running any cell (tslab 1.0.22, pinned exactly in package.json); outside a kernel it
 * is null and `tslab.display.*` throws "Not ready". So "a writer is set" ⇔ "code runs inside a tslab cell".
 * The module is looked up among the modules already loaded (not resolved from this file), so the kernel's own copy
 * is found even when it is not the tslab under this repository's node_modules (a global install), and the display
 * functions come from that same copy.
 *
 * Notebook imports: tslab resolves only file paths, not folder indexes — `import … from './lib/viz/index'`.
 */
import * as fs from 'fs';
import * as path from 'path';

/** The part of tslab's Display that lib uses (also the shape of test doubles). */
export interface DisplaySink {
  png(bytes: Uint8Array): void;
  text(s: string): void;
}

interface TslabModule {
  display: DisplaySink;
  newDisplay(): DisplaySink;
}

const JUPYTER_MODULE = path.join('tslab', 'dist', 'jupyter.js');

/** A display_data message as tslab's writer takes it: one entry per MIME type. */
type DisplayWriter = (msg: { data: Record<string, string>; metadata: object; transient: object }, update: boolean) => void;

/** The running kernel's tslab copy and its current cell's writer, or undefined outside a tslab cell. */
function kernel(): { dir: string; writer: DisplayWriter } | undefined {
  for (const [file, mod] of Object.entries(require.cache)) {
    if (!file.endsWith(JUPYTER_MODULE)) continue;
    const writer = (mod?.exports as { lastWriteDisplayData?: unknown } | undefined)?.lastWriteDisplayData;
    if (typeof writer === 'function') return { dir: path.dirname(file), writer: writer as DisplayWriter };
  }
  return undefined; // no kernel loaded (plain node, mocha, scripts)
}

function loadTslab(): TslabModule | undefined {
  const k = kernel();
  return k ? (require(path.join(k.dir, 'public.js')) as TslabModule) : undefined;
}

/** True when running inside a tslab notebook cell. */
export function inTslab(): boolean {
  return loadTslab() !== undefined;
}

/** A display that replaces its own previous output on each call (tslab.newDisplay()), or undefined outside tslab. */
export function newTslabDisplay(): DisplaySink | undefined {
  return loadTslab()?.newDisplay();
}

export interface ShowOptions {
  /** Also write the PNG here (folders are created). Outside a notebook this is the only effect. */
  path?: string;
}

/**
 * Show PNG bytes inline in a tslab notebook; outside one, write them to `opts.path` if given, else do nothing.
 * Returns nothing, so that `show(…)` as a cell's last expression prints nothing either.
 */
export function show(png: Uint8Array, opts: ShowOptions = {}): void {
  if (opts.path) {
    fs.mkdirSync(path.dirname(path.resolve(opts.path)), { recursive: true });
    fs.writeFileSync(opts.path, png);
  }
  loadTslab()?.display.png(png);
}

/**
 * Show one output with several representations (MIME type → content, e.g. text/html and its text/plain fallback): the
 * front end picks the richest it can render (a console or an untrusted notebook falls back to text/plain). Returns
 * false outside tslab, where nothing is shown (the caller decides what to print instead).
 */
export function showBundle(data: Record<string, string>): boolean {
  const k = kernel();
  if (!k) return false;
  k.writer({ data, metadata: {}, transient: {} }, false);
  return true;
}
