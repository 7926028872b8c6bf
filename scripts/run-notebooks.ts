/**
 * npm run notebooks -- [files…] [--fast] [--out DIR] [--cell-timeout SECONDS]
 *
 * Executes each notebook top to bottom on the tslab kernel and writes the executed copy to DIR (default out/),
 * at the notebook's path relative to the repository (out/solutions/01-forward-process.ipynb …); sources are never
 * overwritten. Without files: every notebook in solutions/ and notebooks/. --fast sets DIFFUSION_FAST=1.
 * Exit status 1 when any notebook fails; the failing cell's number and its real error text are printed.
 */
import * as fs from 'fs';
import * as path from 'path';
import { formatFailures, runNotebook } from '../lib/notebook/run';

const ROOT = path.resolve(__dirname, '..');

interface Args { files: string[]; fast: boolean; out: string; cellTimeout?: number; }

function usage(message: string): never {
  console.error(`${message}\nusage: npm run notebooks -- [files…] [--fast] [--out DIR] [--cell-timeout SECONDS]`);
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const args: Args = { files: [], fast: false, out: path.join(ROOT, 'out') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--fast') args.fast = true;
    else if (a === '--out') args.out = path.resolve(argv[++i] ?? usage('--out needs a folder'));
    else if (a === '--cell-timeout') {
      const s = Number(argv[++i]);
      if (!(s > 0)) usage('--cell-timeout needs a positive number of seconds');
      args.cellTimeout = s;
    } else if (a === '-h' || a === '--help') usage('Runs notebooks headlessly on the tslab kernel.');
    else if (a.startsWith('--')) usage(`unknown option ${a}`);
    else args.files.push(a);
  }
  return args;
}

export function defaultNotebooks(): string[] {
  return ['solutions', 'notebooks'].flatMap((dir) => {
    const d = path.join(ROOT, dir);
    if (!fs.existsSync(d)) return [];
    return fs.readdirSync(d).filter((f) => f.endsWith('.ipynb')).sort().map((f) => path.join(d, f));
  });
}

/** out/<path relative to the repository>; a notebook outside the repository keeps only its name. */
function outPathFor(file: string, outDir: string): string {
  const rel = path.relative(ROOT, path.resolve(file));
  return path.join(outDir, rel.startsWith('..') || path.isAbsolute(rel) ? path.basename(file) : rel);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const files = args.files.length > 0 ? args.files : defaultNotebooks();
  if (files.length === 0) usage('no notebooks found');
  const summary: string[] = [];
  let failed = 0;
  const t0 = Date.now();
  for (const file of files) {
    const name = path.relative(process.cwd(), path.resolve(file));
    process.stdout.write(`▶ ${name}${args.fast ? ' (fast mode)' : ''}\n`);
    try {
      const r = await runNotebook(file, {
        outFile: outPathFor(file, args.out),
        fast: args.fast,
        cellTimeoutSeconds: args.cellTimeout,
        onCell: (c, n, total) => {
          const mark = c.status === 'ok' ? 'ok' : c.tolerated ? 'not implemented (allowed)' : c.status.toUpperCase();
          process.stdout.write(`  code cell ${n}/${total}  ${c.seconds.toFixed(1)} s  ${mark}\n`);
        },
      });
      const line = `${r.ok ? 'PASS' : 'FAIL'}  ${name}  ${r.seconds.toFixed(1)} s (kernel start ${r.kernelStartSeconds.toFixed(1)} s) → ${path.relative(process.cwd(), r.outFile)}`;
      if (!r.ok) {
        failed++;
        console.log(formatFailures(r));
      }
      console.log(line);
      summary.push(line);
    } catch (e) {
      failed++;
      const line = `FAIL  ${name}  ${(e as Error).name}: ${(e as Error).message}`;
      console.log(line);
      summary.push(line);
    }
  }
  console.log(`\n${summary.join('\n')}\n${files.length - failed}/${files.length} notebooks passed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  process.exit(failed > 0 ? 1 : 0);
}

if (require.main === module) void main();
