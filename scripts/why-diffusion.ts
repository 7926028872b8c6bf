/**
 * npm run why-diffusion -- configs/why-diffusion-<dataset>.json [--out DIR] [--runs DIR] [--quiet]
 * npm run why-diffusion -- configs/why-diffusion-<dataset>.json --reproduce <unet|vae|gan>:<seed>
 *
 * Notebook 10's study (lib/compare/study.ts): the course's conditional U-Net, the VAE and the GAN, each trained from
 * scratch for the config's wall-clock budget with every seed, run one after the other (seed by seed, the three models in
 * turn), then judged by the data set's classifier. Writes <out>/results.json after every run (an interrupted study
 * resumes where it stopped) and the first seed's EMA weights to <out>/<kind>/checkpoint.bin + provenance.json;
 * every run's weights go to <runs>/ (git-ignored). Default <out>: checkpoints/<name>; fast mode (DIFFUSION_FAST=1)
 * defaults to out/<name>-fast so that it never overwrites the committed results.
 * --reproduce kind:seed re-trains that run for the steps the results recorded and prints how far its EMA weights are
 * from the saved ones (0 when the backend and its kernels are the same).
 * Sharing the machine changes what a wall-clock budget buys: the results record the load average at every run.
 */
import * as path from 'node:path';
import { initBackend } from '../lib/backend';
import { MODEL_KINDS, type ModelKind } from '../lib/compare/generators';
import { readStudyConfig, reproduceRun, runStudy } from '../lib/compare/study';
import { isFastMode } from '../lib/env';
import { DiffusionError, InvalidArgumentError } from '../lib/errors';
import { ArgList } from './cli-args';
import { gitState } from './provenance';

interface Args { config: string; out?: string; runs?: string; quiet: boolean; reproduce?: { kind: ModelKind; seed: number } }

function parseArgs(argv: string[]): Args {
  const a: Args = { config: '', quiet: false };
  const args = new ArgList(argv);
  for (let k = args.next(); k !== undefined; k = args.next()) {
    if (k === '--quiet') a.quiet = true;
    else if (k === '--out') a.out = args.value(k);
    else if (k === '--runs') a.runs = args.value(k);
    else if (k === '--reproduce') {
      const v = args.value(k);
      const [kind, seed] = v.split(':');
      if (!(MODEL_KINDS as readonly string[]).includes(kind) || !/^\d+$/.test(seed ?? '')) throw new InvalidArgumentError(`--reproduce must be <unet|vae|gan>:<seed>, got ${v}`);
      a.reproduce = { kind: kind as ModelKind, seed: Number(seed) };
    } else if (k.startsWith('--')) throw new InvalidArgumentError(`unknown option ${k}; expected --out DIR, --runs DIR, --reproduce KIND:SEED, --quiet`);
    else if (!a.config) a.config = k;
    else throw new InvalidArgumentError(`unexpected argument ${k}`);
  }
  if (!a.config) throw new InvalidArgumentError('usage: npm run why-diffusion -- configs/why-diffusion-<dataset>.json [--out DIR] [--runs DIR] [--reproduce KIND:SEED]');
  return a;
}

/** The CLI as a function (tests call it in-process); argv excludes node and the script. */
export async function runWhyDiffusion(argv: string[]): Promise<string> {
  const args = parseArgs(argv);
  const fast = isFastMode();
  const { config } = readStudyConfig(args.config, fast);
  const base = fast ? path.join('out', `${config.name}-fast`) : undefined;
  const outDir = args.out ?? base ?? path.join('checkpoints', config.name);
  const runDir = args.runs ?? path.join(base ?? path.join('out', config.name), 'runs');
  const backend = await initBackend();
  const log = (s: string) => { if (!args.quiet) console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`); };
  if (args.reproduce) {
    const r = await reproduceRun(args.config, args.reproduce.kind, args.reproduce.seed, { outDir, runDir, fast, log });
    console.log(`${args.reproduce.kind} seed ${args.reproduce.seed}: ${r.steps} steps re-trained → ${r.file}; max |Δ| of the EMA weights vs the saved run: ${r.maxAbsDiff}`);
    return r.file;
  }
  await runStudy(args.config, {
    outDir, runDir, fast, log, progress: !args.quiet, backend: backend.line, git: gitState(),
    command: ['npm run why-diffusion --', ...argv].join(' '),
  });
  log(`results: ${path.join(outDir, 'results.json')}`);
  return outDir;
}

if (require.main === module) {
  runWhyDiffusion(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof DiffusionError ? `${e.name}: ${e.message}` : e);
    process.exit(1);
  });
}
