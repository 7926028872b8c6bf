/**
 * npm run export-weights -- --checkpoint out/train/unet-cond-mnist [--out checkpoints/unet-cond-mnist] [--with-raw]
 *
 * A training checkpoint holds the weights, their EMA and Adam's two moments (4× the model: 19 MB for the 1.18 M-parameter
 * U-Net) so that a run can resume. What sampling and the notebooks need is the EMA alone: this writes
 * <out>/checkpoint.bin with the EMA weights, the model config, schedule, step, data set, loss history and meta (a
 * weights-only checkpoint, lib/train's saveTrainer { weightsOnly }: it samples, it cannot resume), and copies
 * provenance.json beside it with an `export` record. Without --out it writes <checkpoint>/export/. --with-raw keeps the
 * raw weights too (half the training file: notebook 06 compares raw and EMA samples of the shipped model).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../lib/backend';
import { DiffusionError, InvalidArgumentError } from '../lib/errors';
import { readCheckpointFile } from '../lib/train/checkpoint';
import { CHECKPOINT_FILE, checkpointDataset, checkpointPath, resumeTrainer, saveTrainer } from '../lib/train/state';

/** The CLI as a function (tests call it in-process). Returns the file written. */
export async function runExportWeights(argv: string[], log: (line: string) => void = console.log): Promise<string> {
  let values: { checkpoint?: string; out?: string; 'with-raw'?: boolean };
  try {
    ({ values } = parseArgs({ args: argv, options: { checkpoint: { type: 'string' }, out: { type: 'string' }, 'with-raw': { type: 'boolean' } }, strict: true }));
  } catch (e) {
    throw new InvalidArgumentError(`${(e as Error).message}. usage: npm run export-weights -- --checkpoint DIR [--out DIR] [--with-raw]`);
  }
  if (!values.checkpoint) throw new InvalidArgumentError('--checkpoint is required. usage: npm run export-weights -- --checkpoint DIR [--out DIR]');
  await initBackend();
  const src = checkpointPath(values.checkpoint);
  const srcDir = path.dirname(src);
  const outDir = values.out ?? path.join(srcDir, 'export');
  const file = path.join(outDir, CHECKPOINT_FILE);
  if (path.resolve(file) === path.resolve(src)) throw new InvalidArgumentError(`--out ${outDir} would overwrite the training checkpoint ${src} itself`);
  const { header } = readCheckpointFile(src);
  const trainer = resumeTrainer(src);
  try {
    await saveTrainer(file, trainer, { weightsOnly: true, keepRaw: values['with-raw'], dataset: checkpointDataset(header), meta: header.meta as Record<string, unknown> | undefined });
  } finally {
    trainer.dispose();
    trainer.model.dispose();
  }
  const provSrc = path.join(srcDir, 'provenance.json');
  const prov = fs.existsSync(provSrc) ? JSON.parse(fs.readFileSync(provSrc, 'utf8')) : {};
  prov.export = {
    command: `npm run export-weights -- ${argv.join(' ')}`,
    from: src,
    contents: values['with-raw']
      ? 'EMA and raw weights, no Adam moments (weights-only checkpoint: samples either set, cannot resume)'
      : 'EMA weights only (weights-only checkpoint: samples, cannot resume)',
    bytes: fs.statSync(file).size,
    date: new Date().toISOString(),
  };
  fs.writeFileSync(path.join(outDir, 'provenance.json'), `${JSON.stringify(prov, null, 2)}\n`);
  log(`wrote ${file} (${(fs.statSync(file).size / 1e6).toFixed(1)} MB, ${values['with-raw'] ? 'EMA and raw' : 'EMA'} weights of step ${header.step}; from ${(fs.statSync(src).size / 1e6).toFixed(1)} MB)`);
  return file;
}

if (require.main === module) {
  runExportWeights(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof DiffusionError ? `${e.name}: ${e.message}` : e);
    process.exit(1);
  });
}
