/**
 * The program that runs ONE learner exercise inside the sandboxed child process (see sandbox.ts).
 * The grader transpiles this file to plain JS in a temp folder; it therefore imports only Node built-ins and loads
 * everything else by absolute path. Usage: node <permission flags> runner.js <libDir> <workDir>
 *
 * Reads <workDir>/input.json ({ functionName, exportName, cases: [{ name, args }] } with args in codec JSON) and
 * <workDir>/cell.js (the compiled cell); appends one JSON line per event to <workDir>/results.jsonl:
 *   {event:'ready'} {event:'loaded'} | {event:'import-error',error} | {event:'no-function',got}
 *   {event:'start',case} {event:'result',case,ok:true,value} | {event:'result',case,ok:false,error,notImplemented}
 *   {event:'done'}
 * Inputs and outputs are the only things that cross: expected values never reach this process.
 */
import * as fs from 'fs';
import * as path from 'path';

interface Input {
  functionName: string;
  exportName: string;
  cases: { name: string; args: unknown }[];
  maxResultChars: number;
  maxOutputBytes: number;
}

const [libDir, workDir] = process.argv.slice(2);
const resultFile = path.join(workDir, 'results.jsonl');
const emit = (o: object) => fs.appendFileSync(resultFile, JSON.stringify(o) + '\n');

/**
 * Let require() load lib's .ts files that a cell imports (transpile only, no file lookups beyond the module itself).
 * TypeScript is loaded on the first such import: cells that import nothing from lib start faster.
 */
function installTsHook(): void {
  let tsModule: typeof import('typescript') | undefined;
  (require as unknown as { extensions: Record<string, unknown> }).extensions['.ts'] = (
    module: { _compile(code: string, file: string): void },
    filename: string,
  ) => {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const ts = (tsModule ??= require('typescript') as typeof import('typescript'));
    const options = { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true };
    const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), { compilerOptions: options, fileName: filename });
    module._compile(out.outputText, filename);
  };
}

/**
 * Count what the learner prints here too: a short burst followed by process exit can outrun the grader's pipe counter.
 */
function limitOutput(maxBytes: number): void {
  let printed = 0;
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream) as (...a: unknown[]) => boolean;
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      printed += typeof chunk === 'string' ? Buffer.byteLength(chunk) : (chunk as Uint8Array).length ?? 0;
      if (printed > maxBytes) {
        emit({ event: 'output-limit' });
        process.exit(4);
      }
      return write(chunk, ...rest);
    }) as typeof stream.write;
  }
}

async function main(): Promise<void> {
  const input = JSON.parse(fs.readFileSync(path.join(workDir, 'input.json'), 'utf8')) as Input;
  installTsHook();
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
  /* eslint-disable @typescript-eslint/no-var-requires */
  // The grader's own helpers, precompiled beside this file (see Sandbox): same code as lib's, no TypeScript needed.
  const codec = require(path.join(__dirname, 'lib', 'exercises', 'codec'));
  const sc = require(path.join(__dirname, 'lib', 'exercises', 'selfcheck'));
  /* eslint-enable @typescript-eslint/no-var-requires */
  limitOutput(input.maxOutputBytes);
  (globalThis as Record<string, unknown>).tf = tf; // cells may use the `tf` an earlier notebook cell imported
  emit({ event: 'ready' });

  let fn: unknown;
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    fn = require(path.join(workDir, 'cell.js'))[input.exportName];
  } catch (e) {
    emit({ event: 'import-error', error: sc.describeError(e), notImplemented: sc.isNotImplemented(e) });
    return;
  }
  if (typeof fn !== 'function') {
    emit({ event: 'no-function', got: codec.describeValue(fn) });
    return;
  }
  emit({ event: 'loaded' });

  for (let i = 0; i < input.cases.length; i++) {
    emit({ event: 'start', case: i });
    const args = codec.decodeValue(input.cases[i].args);
    const out = sc.callIsolated(fn, args);
    if (!out.ok) {
      const notImplemented = sc.isNotImplemented(out.error);
      emit({ event: 'result', case: i, ok: false, error: sc.describeError(out.error), notImplemented });
      codec.disposeValue(args);
      if (notImplemented) break; // every case would throw the same
      continue;
    }
    let text: string;
    try {
      text = JSON.stringify(codec.encodeValue(out.value, { lenient: true }));
    } catch (e) {
      text = JSON.stringify({ __unsupported: `a value that cannot be sent back (${(e as Error).message})` });
    }
    if (text.length > input.maxResultChars) {
      emit({ event: 'result', case: i, ok: false, error: `the result is too large to check (${text.length} characters of JSON)`, notImplemented: false });
    } else {
      fs.appendFileSync(resultFile, `{"event":"result","case":${i},"ok":true,"value":${text}}\n`);
    }
    codec.disposeValue(out.value);
    codec.disposeValue(args);
  }
  emit({ event: 'done' });
}

if (require.main === module) {
  main().then(
    // Exit once the output is flushed: timers or handles the learner left open must not keep the process waiting.
    () => process.stdout.write('', () => process.stderr.write('', () => process.exit(0))),
    (e) => {
      try {
        emit({ event: 'runner-error', error: String(e && (e as Error).stack ? (e as Error).stack : e) });
      } finally {
        process.exit(3);
      }
    },
  );
}
