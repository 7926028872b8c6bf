/**
 * Train the classifier that judges samples of one data set, and ship it:
 *
 *   npm run train-classifier -- --dataset mnist|fashion-mnist [--epochs N] [--batch 64] [--lr 0.002] [--shift 2]
 *        [--flip|--no-flip] [--patience N] [--channels 32,64,64] [--hidden 128] [--dropout 0.3]
 *        [--val-per-class 500] [--seed 0] [--out checkpoints/classifier-<dataset>]
 *
 * Trains on the canonical training split minus a seeded, stratified validation hold-out (lib/data's validationSplit,
 * 500 per class: 55,000 / 5,000), keeps the weights of the epoch with the best validation accuracy (and stops after
 * --patience epochs without one), then reports the accuracy on the 10,000 test images once, at the end. Saves the
 * weights (lib/eval/classifier-io, header { dataset }) and provenance.json beside them (command, commit, seed, epochs,
 * wall time, backend, load average, validation history, test accuracy).
 * Defaults per data set are in RECIPES below; flags override them.
 */
import { gitState } from './provenance';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { DATASETS, loadDataset, validationSplit, VALIDATION_PER_CLASS, VALIDATION_SEED } from '../lib/data/datasets';
import { checkDatasetName, type DatasetName } from '../lib/data/sources';
import { fastOr, isFastMode } from '../lib/env';
import { DiffusionError, InvalidArgumentError } from '../lib/errors';
import { DigitClassifier, type ClassifierConfig } from '../lib/eval/classifier';
import { classifierDir, saveClassifier } from '../lib/eval/classifier-io';
import { trainClassifier } from '../lib/eval/train-classifier';

export interface ClassifierRecipe {
  config: ClassifierConfig;
  epochs: number;
  batchSize: number;
  learningRate: number;
  maxShift: number;
  flip: boolean;
  patience: number;
}

/**
 * The shipped recipes. Flips only for Fashion-MNIST (mirrored articles keep their class, mirrored digits do not); the
 * wider Fashion network because its classes (shirt / T-shirt / pullover / coat) are harder to tell apart.
 */
export const RECIPES: Record<DatasetName, ClassifierRecipe> = {
  mnist: {
    config: { channels: [32, 64, 64], hidden: 128, numClasses: 10, dropout: 0.3 },
    epochs: 10, batchSize: 64, learningRate: 2e-3, maxShift: 2, flip: false, patience: 3,
  },
  'fashion-mnist': {
    config: { channels: [32, 64, 128], hidden: 256, numClasses: 10, dropout: 0.3 },
    epochs: 18, batchSize: 64, learningRate: 2e-3, maxShift: 2, flip: true, patience: 3,
  },
};

function num(raw: string | undefined, name: string, fallback: number, check: (v: number) => boolean, what: string): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (raw.trim() === '' || !check(v)) throw new InvalidArgumentError(`--${name} must be ${what}, got ${JSON.stringify(raw)}`);
  return v;
}
const posInt = (v: number) => Number.isInteger(v) && v >= 1;

export interface ClassifierArgs extends ClassifierRecipe {
  dataset: DatasetName;
  seed: number;
  valPerClass: number;
  out: string;
}

/** The command line → a full recipe (the data set's defaults, then the flags); bad values are InvalidArgumentErrors. */
export function parseClassifierArgs(argv: string[]): ClassifierArgs {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        dataset: { type: 'string' }, epochs: { type: 'string' }, batch: { type: 'string' }, lr: { type: 'string' },
        shift: { type: 'string' }, flip: { type: 'boolean' }, 'no-flip': { type: 'boolean' }, patience: { type: 'string' },
        channels: { type: 'string' }, hidden: { type: 'string' }, dropout: { type: 'string' },
        'val-per-class': { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' },
      },
    }));
  } catch (e) {
    throw new InvalidArgumentError(`${(e as Error).message}. usage: npm run train-classifier -- --dataset mnist|fashion-mnist [--epochs N] …`);
  }
  const s = (k: string) => values[k] as string | undefined;
  const dataset = checkDatasetName(s('dataset') ?? 'mnist');
  const r = RECIPES[dataset];
  if (values.flip && values['no-flip']) throw new InvalidArgumentError('give --flip or --no-flip, not both');
  let channels = r.config.channels;
  if (s('channels') !== undefined) {
    const parts = s('channels')!.split(',').map(Number);
    if (parts.length !== 3 || !parts.every(posInt)) throw new InvalidArgumentError(`--channels must be three positive integers a,b,c, got ${JSON.stringify(s('channels'))}`);
    channels = parts as [number, number, number];
  }
  return {
    dataset,
    config: {
      channels,
      hidden: num(s('hidden'), 'hidden', r.config.hidden, posInt, 'a positive integer'),
      numClasses: 10,
      dropout: num(s('dropout'), 'dropout', r.config.dropout, (v) => v >= 0 && v < 1, 'in [0, 1)'),
    },
    epochs: num(s('epochs'), 'epochs', fastOr(1, r.epochs), posInt, 'a positive integer'),
    batchSize: num(s('batch'), 'batch', r.batchSize, posInt, 'a positive integer'),
    learningRate: num(s('lr'), 'lr', r.learningRate, (v) => v > 0 && Number.isFinite(v), 'a positive number'),
    maxShift: num(s('shift'), 'shift', r.maxShift, (v) => Number.isInteger(v) && v >= 0 && v < 28, 'an integer in 0…27'),
    flip: values.flip ? true : values['no-flip'] ? false : r.flip,
    patience: num(s('patience'), 'patience', r.patience, posInt, 'a positive integer'),
    seed: num(s('seed'), 'seed', 0, (v) => Number.isInteger(v) && v >= 0, 'an integer ≥ 0'),
    valPerClass: num(s('val-per-class'), 'val-per-class', VALIDATION_PER_CLASS, posInt, 'a positive integer'),
    out: s('out') ?? classifierDir(dataset),
  };
}

/** The CLI as a function (tests call it in-process); argv excludes node and the script. Returns the test accuracy. */
export async function runTrainClassifier(argv: string[], log: (line: string) => void = console.log): Promise<number> {
  const a = parseClassifierArgs(argv);
  const backend = await initBackend(); // on wasm it registers the course's gradient kernels that conv training needs
  const full = loadDataset(a.dataset, 'train');
  const { train, validation } = validationSplit(full, { perClass: a.valPerClass, seed: VALIDATION_SEED });
  const test = loadDataset(a.dataset, 'test');

  const model = DigitClassifier.create(a.config, a.seed);
  log(`classifier for ${a.dataset}: ${model.parameterCount()} parameters; ${train.size} train / ${validation.size} validation / ` +
    `${test.size} test; ≤ ${a.epochs} epochs (patience ${a.patience}), batch ${a.batchSize}, lr ${a.learningRate}, ` +
    `shift ±${a.maxShift}${a.flip ? ', flips' : ''}, seed ${a.seed}${isFastMode() ? ' (fast mode)' : ''}`);
  const git = gitState(); // read at the start: the code that runs is the code of this moment
  const loadStart = os.loadavg();
  const started = Date.now();
  try {
    const history = await trainClassifier(model, train, {
      epochs: a.epochs,
      batchSize: a.batchSize,
      learningRate: a.learningRate,
      maxShift: a.maxShift,
      flip: a.flip,
      seed: a.seed,
      validation,
      patience: a.patience,
      maxStepsPerEpoch: fastOr(5, undefined),
      onEpoch: (e) => log(`epoch ${e.epoch + 1}/${a.epochs}: loss ${e.meanLoss.toFixed(4)}, validation accuracy ` +
        `${(100 * (e.validationAccuracy ?? NaN)).toFixed(2)} %, ${e.seconds.toFixed(1)} s (load average ${os.loadavg()[0].toFixed(1)})`),
    });
    const trainSeconds = (Date.now() - started) / 1000;
    const selected = history.find((h) => h.selected)!;
    // the test split is scored once, with the weights chosen on the validation split
    const all = test.batch(Array.from({ length: test.size }, (_, i) => i));
    let testAccuracy: number;
    try {
      testAccuracy = await model.accuracy(all.x, test.labels);
    } finally {
      tf.dispose([all.x, all.y]);
    }
    const wallSeconds = (Date.now() - started) / 1000;
    await saveClassifier(model, a.out, { dataset: a.dataset });
    const provenance = {
      command: `npm run train-classifier -- ${argv.join(' ')}`.trim(),
      gitCommit: git.commit,
      gitDirty: git.dirty,
      date: new Date().toISOString(),
      backend: backend.line,
      dataset: a.dataset,
      classNames: DATASETS[a.dataset].classNames,
      seed: a.seed,
      epochsPlanned: a.epochs,
      epochsRun: history.length,
      selectedEpoch: selected.epoch + 1,
      selection: `best validation accuracy (stop after ${a.patience} epochs without a better one)`,
      batchSize: a.batchSize,
      learningRate: a.learningRate,
      learningRateSchedule: 'cosine to 2 % of peak over the planned epochs',
      augmentation: [`random shift ±${a.maxShift} px`, ...(a.flip ? ['random horizontal flip'] : [])].join(', '),
      config: model.config,
      parameters: model.parameterCount(),
      trainExamples: train.size,
      validation: { examples: validation.size, perClass: a.valPerClass, seed: VALIDATION_SEED, accuracy: selected.validationAccuracy },
      testExamples: test.size,
      testAccuracy,
      trainSeconds,
      wallSeconds,
      loadAverage: { start: loadStart.map((v) => Number(v.toFixed(2))), end: os.loadavg().map((v) => Number(v.toFixed(2))), cores: os.cpus().length },
      history: history.map((h) => ({ epoch: h.epoch + 1, steps: h.steps, meanLoss: h.meanLoss, seconds: h.seconds, validationAccuracy: h.validationAccuracy })),
      fastMode: isFastMode(),
    };
    fs.writeFileSync(path.join(a.out, 'provenance.json'), JSON.stringify(provenance, null, 2) + '\n');
    log(`saved ${a.out}: epoch ${selected.epoch + 1} selected (validation ${(100 * selected.validationAccuracy!).toFixed(2)} %); ` +
      `TEST accuracy ${(100 * testAccuracy).toFixed(2)} % on ${test.size}; ${wallSeconds.toFixed(0)} s`);
    return testAccuracy;
  } finally {
    model.dispose();
  }
}

if (require.main === module) {
  runTrainClassifier(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof DiffusionError ? `${e.name}: ${e.message}` : e);
    process.exit(1);
  });
}
