/**
 * Train the MNIST digit classifier that judges generated samples, and ship it:
 *
 *   node -r ts-node/register scripts/train-classifier.ts [--epochs 12] [--batch 64] [--lr 0.002] [--shift 2]
 *        [--seed 0] [--out checkpoints/classifier]
 *
 * Trains on the 9,000-digit train split, reports accuracy on the 1,000-digit test split after every epoch, saves the
 * weights (lib/eval/classifier-io) and writes provenance.json beside them.
 */
import { execSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { parseArgs } from 'util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { loadMnist } from '../lib/data/mnist';
import { fastOr } from '../lib/env';
import { InvalidArgumentError } from '../lib/errors';
import { DEFAULT_CLASSIFIER_CONFIG, DigitClassifier } from '../lib/eval/classifier';
import { DEFAULT_CLASSIFIER_DIR, saveClassifier } from '../lib/eval/classifier-io';
import { trainClassifier } from '../lib/eval/train-classifier';

function numberArg(values: Record<string, string | undefined>, name: string, fallback: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v)) throw new InvalidArgumentError(`--${name} must be a number, got ${JSON.stringify(raw)}`);
  return v;
}

/** HEAD's commit, and whether the working tree differed from it (then the commit alone does not reproduce the run). */
function gitState(): { commit: string; dirty: boolean | 'unknown' } {
  const git = (args: string) =>
    execSync(`git ${args}`, { cwd: path.join(__dirname, '..'), stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  try {
    return { commit: git('rev-parse HEAD'), dirty: git('status --porcelain -- lib scripts package.json') !== '' };
  } catch {
    return { commit: 'unknown', dirty: 'unknown' };
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      epochs: { type: 'string' },
      batch: { type: 'string' },
      lr: { type: 'string' },
      shift: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const epochs = numberArg(values, 'epochs', fastOr(1, 12));
  const batchSize = numberArg(values, 'batch', 64);
  const learningRate = numberArg(values, 'lr', 2e-3);
  const maxShift = numberArg(values, 'shift', 2);
  const seed = numberArg(values, 'seed', 0);
  const out = values.out ?? DEFAULT_CLASSIFIER_DIR;

  const backend = await initBackend(); // on wasm it registers the course's gradient kernels that conv training needs

  const train = loadMnist('train');
  const test = loadMnist('test');
  const testAll = test.batch(Array.from({ length: test.size }, (_, i) => i));
  const testLabels = Array.from(await testAll.y.data());

  const model = DigitClassifier.create(DEFAULT_CLASSIFIER_CONFIG, seed);
  console.log(`classifier: ${model.parameterCount()} parameters, ${epochs} epochs, batch ${batchSize}, lr ${learningRate}, shift ±${maxShift}, seed ${seed}`);
  const git = gitState(); // read at the start: the code that runs is the code of this moment
  const started = Date.now();
  const accuracies: number[] = [];
  const history = await trainClassifier(model, train, {
    epochs,
    batchSize,
    learningRate,
    maxShift,
    seed,
    maxStepsPerEpoch: fastOr(5, undefined),
    onEpoch: async (e) => {
      const acc = await model.accuracy(testAll.x, testLabels);
      accuracies.push(acc);
      console.log(`epoch ${e.epoch + 1}/${epochs}: loss ${e.meanLoss.toFixed(4)}, test accuracy ${(100 * acc).toFixed(2)} %, ${e.seconds.toFixed(1)} s`);
    },
  });
  const wallSeconds = (Date.now() - started) / 1000;
  const testAccuracy = accuracies[accuracies.length - 1];

  await saveClassifier(model, out);
  const provenance = {
    command: `node -r ts-node/register scripts/train-classifier.ts ${process.argv.slice(2).join(' ')}`.trim(),
    gitCommit: git.commit,
    gitDirty: git.dirty,
    date: new Date().toISOString(),
    backend: backend.name,
    seed,
    epochs,
    batchSize,
    learningRate,
    learningRateSchedule: 'cosine to 2 % of peak',
    augmentation: `random shift ±${maxShift} px`,
    config: model.config,
    parameters: model.parameterCount(),
    trainDigits: train.size,
    testDigits: test.size,
    testAccuracy,
    wallSeconds,
    history: history.map((h, i) => ({ ...h, testAccuracy: accuracies[i] })),
    fastMode: fastOr(true, false),
  };
  fs.writeFileSync(path.join(out, 'provenance.json'), JSON.stringify(provenance, null, 2) + '\n');
  console.log(`saved ${out}: test accuracy ${(100 * testAccuracy).toFixed(2)} % after ${wallSeconds.toFixed(0)} s`);
  tf.dispose([testAll.x, testAll.y]);
  model.dispose();
}

main().catch((e) => {
  console.error(e instanceof Error ? `${e.name}: ${e.message}` : e);
  process.exit(1);
});
