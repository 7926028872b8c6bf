/**
 * The program that runs ONE learner exercise inside the sandbox (see sandbox.ts). It is not a file there: the grader
 * sends it as `node -e` code together with its helpers (lib/exercises codec, call, cell, policy), so nothing of the
 * grader is on the sandbox's disk.
 *
 * Input (stdin, read to the end before the cell is loaded): { functionName, exportName, code (the compiled cell),
 * libRoot, lib (the exercise's lib view: module key -> code), cases (codec JSON of each case's arguments, in an order
 * the grader shuffled with a seed the child never sees; no names, nothing says which cases are hidden), limits }.
 *
 * Output (fd 3, one JSON object per line):
 *   {e:'ready'} {e:'loaded'} | {e:'import-error',error,ni} | {e:'no-function',got}
 *   {e:'start',i} {e:'result',i,ok:true,value} | {e:'result',i,ok:false,error,ni}   (ni: the TODO stub threw)
 *   {e:'done'} | {e:'output-limit'}
 * These are raw outputs of the learner's function, nothing else: the expected values, the comparison, the score and
 * the report exist only in the grader. Learner code runs in this process and can write to fd 3 as well; what it can
 * write there is what its function could have returned, and the grader reads the channel as untrusted data.
 */
import * as fs from 'fs';
import { decodeValue, describeValue, disposeValue, encodeValue, type Json } from '../exercises/codec';
import { callIsolated, describeError, isNotImplemented } from '../exercises/call';
import { cellFileName, evaluateModule, LibView } from '../exercises/cell';

export const RESULT_FD = 3;

export interface ChildInput {
  functionName: string;
  exportName: string;
  code: string;
  libRoot: string;
  lib: Record<string, string>;
  cases: Json[];
  maxResultChars: number;
  maxOutputBytes: number;
}

export async function main(): Promise<void> {
  // Taken before the learner's code runs: it may replace globals and module functions afterwards.
  const writeSync = fs.writeSync;
  const stringify = JSON.stringify;
  const exit = process.exit.bind(process);
  const emit = (o: object) => {
    try {
      writeSync(RESULT_FD, stringify(o) + '\n');
    } catch {
      exit(5); // the grader is gone or the channel is broken
    }
  };
  try {
    const input = JSON.parse(fs.readFileSync(0, 'utf8')) as ChildInput;
    // tfjs greets Node users on stdout; keep the learner's output clean.
    const { log, warn } = console;
    console.log = console.warn = () => undefined;
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const tf = require('@tensorflow/tfjs');
    await tf.setBackend('cpu'); // deterministic, complete kernels, small inputs
    await tf.ready();
    tf.tensor([0]).dispose(); // the greeting comes with the first tensor
    console.log = log;
    console.warn = warn;
    limitOutput(input.maxOutputBytes, () => {
      emit({ e: 'output-limit' });
      exit(4);
    });
    emit({ e: 'ready' });

    // A promise the learner's code lets reject in the background must not end the run (a notebook would only print it).
    process.on('unhandledRejection', () => undefined);
    const view = new LibView(input.libRoot, input.lib, require);
    let fn: unknown;
    try {
      const exports = evaluateModule(input.code, cellFileName(input.libRoot), view.requireFrom(undefined), tf);
      fn = exports[input.exportName];
    } catch (e) {
      emit({ e: 'import-error', error: describeError(e), ni: isNotImplemented(e) });
      return;
    }
    if (typeof fn !== 'function') {
      emit({ e: 'no-function', got: describeValue(fn) });
      return;
    }
    emit({ e: 'loaded' });

    for (let i = 0; i < input.cases.length; i++) {
      emit({ e: 'start', i });
      const args = decodeValue(input.cases[i], { host: true }) as unknown[];
      const out = await callIsolated(fn as (...a: unknown[]) => unknown, args);
      if (!out.ok) {
        const ni = isNotImplemented(out.error);
        emit({ e: 'result', i, ok: false, error: describeError(out.error), ni });
        if (ni) break; // every case would throw the same
        continue;
      }
      let value: Json;
      try {
        value = encodeValue(out.value, { lenient: true });
      } catch (e) {
        value = { __unsupported: `a value that cannot be sent back (${(e as Error).message})` };
      }
      const text = stringify(value);
      if (text.length > input.maxResultChars) {
        emit({ e: 'result', i, ok: false, error: `the result is too large to check (${text.length} characters of JSON)`, ni: false });
      } else {
        emit({ e: 'result', i, ok: true, value });
      }
      disposeValue(out.value);
    }
    emit({ e: 'done' });
  } catch (e) {
    emit({ e: 'runner-error', error: String(e && (e as Error).stack ? (e as Error).stack : e) });
    exit(3);
  }
}

/**
 * Count what the learner prints here too: a short burst followed by process exit can outrun the grader's pipe counter.
 */
function limitOutput(maxBytes: number, over: () => void): void {
  let printed = 0;
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream) as (...a: unknown[]) => boolean;
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      printed += typeof chunk === 'string' ? Buffer.byteLength(chunk) : (chunk as Uint8Array).length ?? 0;
      if (printed > maxBytes) over();
      return write(chunk, ...rest);
    }) as typeof stream.write;
  }
}

/** Entry point of the `node -e` program: run, then exit once output is flushed (open handles must not keep it alive). */
export function start(): void {
  const exit = process.exit.bind(process);
  main().then(() => process.stdout.write('', () => process.stderr.write('', () => exit(0))));
}
