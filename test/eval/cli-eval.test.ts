// npm run evaluate and npm run quality-table, in-process, on a tiny checkpoint trained here (fast mode sizes): the data
// set comes from the checkpoint, the sampler flags reach the samplers, the JSON records calls / steps / time per 64
// images, and the quality table resumes a row from its next batch with the same samples as an uninterrupted run.
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadDataset } from '../../lib/data/datasets';
import { CorruptFileError, InvalidArgumentError } from '../../lib/errors';
import { DigitClassifier } from '../../lib/eval/classifier';
import { saveClassifier } from '../../lib/eval/classifier-io';
import { FULL_REFERENCE_AT, MIN_REFERENCE_PER_CLASS, referenceSplit } from '../../lib/eval/evaluate';
import { readRawSamples } from '../../lib/eval/raw-samples';
import { parseEvaluateArgs, runEvaluate } from '../../scripts/evaluate';
import { formatTable, parseQualityArgs, parseRows, runQualityTable, type QualityTable } from '../../scripts/quality-vs-calls';
import { runTrain } from '../../scripts/train';
import { parseClassifierArgs, RECIPES, runTrainClassifier } from '../../scripts/train-classifier';
import { failure } from '../math/helpers';

const SMALL = { channels: [4, 8, 8] as [number, number, number], hidden: 16, numClasses: 10, dropout: 0.3 };

describe('eval: CLIs (npm run evaluate, npm run quality-table), in-process', function () {
  this.timeout(600000);
  let dir: string;
  let mnist: string;
  let fashion: string;
  let fashionClassifier: string;
  const quiet = () => undefined;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-eval-'));
    const log = console.log;
    console.log = quiet;
    try {
      mnist = path.join(dir, 'tiny');
      await runTrain(['configs/tiny-test.json', '--steps', '2', '--out', mnist, '--quiet']);
      const cfg = JSON.parse(fs.readFileSync('configs/tiny-test.json', 'utf8'));
      const fashionCfg = path.join(dir, 'tiny-fashion.json');
      fs.writeFileSync(fashionCfg, JSON.stringify({ ...cfg, name: 'tiny-fashion', data: { dataset: 'fashion-mnist', split: 'train' } }));
      fashion = path.join(dir, 'tiny-fashion');
      await runTrain([fashionCfg, '--steps', '1', '--out', fashion, '--quiet']);
    } finally {
      console.log = log;
    }
    // an untrained stand-in judge for Fashion-MNIST (the test needs its data set, not its skill)
    fashionClassifier = path.join(dir, 'clf-fashion');
    const c = DigitClassifier.create(SMALL, 0);
    await saveClassifier(c, fashionClassifier, { dataset: 'fashion-mnist' });
    c.dispose();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('referenceSplit: the whole test split from 2,000 samples on, else a class-balanced subset ≥ 2× the samples per class', () => {
    const test = loadDataset('mnist', 'test');
    expect(referenceSplit(test, FULL_REFERENCE_AT)).to.equal(test);
    const small = referenceSplit(test, 30);
    expect(small.countsPerClass()).to.deep.equal(new Array(10).fill(MIN_REFERENCE_PER_CLASS));
    expect(referenceSplit(test, 1990).countsPerClass()).to.deep.equal(new Array(10).fill(796));
    expect(referenceSplit(test, 1990, 0).labels).to.deep.equal(referenceSplit(test, 1990, 0).labels);
    expect(() => referenceSplit(test, 0)).to.throw(InvalidArgumentError);
  });

  it('evaluate: sampler flags, model calls and time per 64 images in the JSON; the checkpoint\'s data set picks the judge', async () => {
    const json = path.join(dir, 'eval.json');
    const raw = path.join(dir, 'eval.bin');
    const lines: string[] = [];
    const before = tf.memory().numTensors;
    const out = await runEvaluate(['--checkpoint', mnist, '--sampler', 'heun', '--calls', '3', '--rho', '5', '--n', '20', '--batch', '8',
      '--guidance', '1', '--json', json, '--save-raw', raw, '--quiet'], (l) => lines.push(l));
    expect(tf.memory().numTensors).to.equal(before);
    expect(out.settings).to.include({ sampler: 'heun', steps: 2, modelCalls: 3, rho: 5, nPerClass: 2, batchSize: 8, guidance: 1, dataset: 'mnist' });
    expect(out.dataset).to.equal('mnist');
    expect(out.fid.sampleCount).to.equal(20);
    expect(out.reference).to.deep.equal({ images: 10 * MIN_REFERENCE_PER_CLASS, wholeTestSplit: false });
    expect(out.secondsPer64Images).to.be.closeTo((out.generationSeconds * 64) / 20, 1e-9);
    expect(JSON.parse(fs.readFileSync(json, 'utf8')).settings.modelCalls).to.equal(3);
    expect(readRawSamples(raw).meta).to.include({ sampler: 'heun', modelCalls: 3 });
    expect(lines.join('\n')).to.match(/Heun 2 steps \(3 calls\)[\s\S]*per class {2}0: [\s\S]*floor[\s\S]*s per 64 images, 3 model calls/);

    // the raw samples evaluate the same way (data set from their meta)
    const again = await runEvaluate(['--raw', raw], quiet);
    expect(again.accuracy.overall).to.equal(out.accuracy.overall);
    expect(again.fid.fid).to.be.closeTo(out.fid.fid, 1e-9);

    // Fashion-MNIST: names in the output, its own classifier; a digit classifier is refused
    const f = await runEvaluate(['--checkpoint', fashion, '--sampler', 'dpm++2m', '--steps', '2', '--n-per-class', '1', '--classifier', fashionClassifier, '--quiet'], (l) => lines.push(l));
    expect(f.dataset).to.equal('fashion-mnist');
    expect(f.classNames[9]).to.equal('Ankle boot');
    expect(lines.join('\n')).to.match(/Sneaker: .* %/);
    const err = await failure(() => runEvaluate(['--checkpoint', fashion, '--steps', '2', '--n-per-class', '1'].concat(['--classifier', path.join('checkpoints', 'classifier-mnist')]), quiet));
    expect(err).to.be.instanceOf(InvalidArgumentError);
    expect(err.message).to.match(/classifier of mnist, but one of fashion-mnist/);
  });

  it('evaluate: argument errors are named before anything is loaded', async () => {
    for (const [argv, re] of [
      [['--steps', '5'], /exactly one of --checkpoint/],
      [['--checkpoint', 'x', '--raw', 'y'], /exactly one of/],
      [['--checkpoint', 'x', '--sampler', 'ddpm', '--eta', '0.3'], /--eta applies to --sampler ddim only, not ddpm/],
      [['--checkpoint', 'x', '--sampler', 'dpm++2m', '--sigma-max', '10'], /--sigma-max applies to --sampler euler or heun only/],
      [['--checkpoint', 'x', '--steps', '5', '--calls', '5'], /--steps or --calls, not both/],
      [['--checkpoint', 'x', '--n', '20', '--n-per-class', '2'], /--n-per-class or --n/],
      [['--raw', 'y', '--sampler', 'heun'], /--sampler applies to --checkpoint only/],
      [['--baseline', 'real', '--dataset', 'cifar10'], /unknown data set "cifar10"/],
      [['--baseline', 'fake'], /--baseline must be real or noise/],
      [['--checkpoint', 'x', '--colour'], /Unknown option '--colour'/],
    ] as Array<[string[], RegExp]>) {
      const err = await failure(() => parseEvaluateArgs(argv));
      expect(err, argv.join(' ')).to.be.instanceOf(InvalidArgumentError);
      expect(err.message, argv.join(' ')).to.match(re);
    }
    const err = await failure(() => runEvaluate(['--checkpoint', mnist, '--n', '25'], quiet));
    expect(err.message).to.match(/--n must be a multiple of the 10 classes/);
  });

  it('quality table: rows, the floor once, Markdown; an interrupted row resumes from its next batch with the same samples', async () => {
    const argv = (out: string) => ['--checkpoint', mnist, '--rows', 'ddim:2,heun:3', '--n', '20', '--batch', '8', '--out', out, '--guidance', '2'];
    const whole = path.join(dir, 'q-whole');
    const before = tf.memory().numTensors;
    const t = await runQualityTable(argv(whole), quiet);
    expect(tf.memory().numTensors).to.equal(before);
    expect(t.rows.map((r) => [r.spec.sampler, r.spec.steps, r.calls])).to.deep.equal([['ddim', 2, 2], ['heun', 2, 3]]);
    for (const r of t.rows) {
      expect(r.fidOverFloor).to.be.closeTo(r.fid / t.floor, 1e-12);
      expect(r.secondsPer64Images).to.be.closeTo((r.sampleSeconds * 64) / 20, 1e-12);
      expect(r.accuracy).to.be.within(0, 1);
    }
    expect(t.settings).to.include({ n: 20, nPerClass: 2, batchSize: 8, guidance: 2, dataset: 'mnist' });
    const md = fs.readFileSync(path.join(whole, 'table.md'), 'utf8');
    expect(md).to.match(/\| sampler \| steps \| model calls \| accuracy \| FID \| floor \| FID\/floor \| s per 64 images \|/);
    expect(md).to.match(/\| Heun \| 2 \| 3 \|/);
    expect(md).to.not.match(/fastai/); // MNIST: fastai published Fashion-MNIST figures only

    // interrupted after the first batch of the second row (the logger throws), then run again
    const cut = path.join(dir, 'q-cut');
    let thrown = false;
    const stopper = (line: string) => {
      if (!thrown && /^ {2}batch 1\/3/.test(line) && fs.existsSync(path.join(cut, 'rows', 'heun-3calls-w2.partial.bin'))) {
        thrown = true;
        throw new Error('interrupted');
      }
    };
    expect((await failure(() => runQualityTable(argv(cut), stopper))).message).to.equal('interrupted');
    expect(tf.memory().numTensors).to.equal(before);
    const partial = JSON.parse(fs.readFileSync(path.join(cut, 'table.json'), 'utf8')) as QualityTable;
    expect(partial.rows.map((r) => r.id)).to.deep.equal(['ddim-2calls-w2']);
    const lines: string[] = [];
    const resumed = await runQualityTable(argv(cut), (l) => lines.push(l));
    expect(lines.join('\n')).to.match(/ddim-2calls-w2: done before[\s\S]*resuming after batch 1/);
    expect(resumed.rows[1].sessions).to.equal(2);
    const a = readRawSamples(path.join(whole, 'rows', 'heun-3calls-w2.bin'));
    const b = readRawSamples(path.join(cut, 'rows', 'heun-3calls-w2.bin'));
    expect(Array.from(b.labels)).to.deep.equal(Array.from(a.labels));
    expect(Array.from(b.pixels)).to.deep.equal(Array.from(a.pixels));
    expect(resumed.rows[1].fid).to.equal(t.rows[1].fid);
    expect(resumed.floor).to.equal(t.floor);

    // other settings in the same folder are refused
    const err = await failure(() => runQualityTable([...argv(cut).slice(0, -2), '--guidance', '3'], quiet));
    expect(err).to.be.instanceOf(InvalidArgumentError);
    expect(err.message).to.match(/use another --out/);
  });

  it('quality table: --w-sweep over the weights with one sampler; Fashion-MNIST rows carry fastai\'s ratios', async () => {
    const sweep = await runQualityTable(['--checkpoint', mnist, '--w-sweep', '--ws', '0,1,2', '--sampler', 'dpm++2m', '--calls', '2',
      '--n', '10', '--batch', '10', '--out', path.join(dir, 'sweep')], quiet);
    expect(sweep.mode).to.equal('w-sweep');
    expect(sweep.rows.map((r) => [r.guidance, r.spec.sampler, r.calls])).to.deep.equal([[0, 'dpm++2m', 2], [1, 'dpm++2m', 2], [2, 'dpm++2m', 2]]);
    expect(formatTable(sweep)).to.match(/\| w \| sampler \|[\s\S]*\| 2 \| DPM-Solver\+\+ 2M \| 2 \| 2 \|/);

    // --record: the table lands in the checkpoint's provenance.json as metrics.KEY, other fields kept; a re-run only records
    const provFile = path.join(mnist, 'provenance.json');
    const before = JSON.parse(fs.readFileSync(provFile, 'utf8'));
    const argv = ['--checkpoint', mnist, '--w-sweep', '--ws', '0,1,2', '--sampler', 'dpm++2m', '--calls', '2', '--n', '10', '--batch', '10',
      '--out', path.join(dir, 'sweep'), '--record', 'guidanceSweep'];
    const again = await runQualityTable(argv, quiet);
    expect(again.rows).to.deep.equal(sweep.rows); // nothing sampled again
    const prov = JSON.parse(fs.readFileSync(provFile, 'utf8'));
    expect(prov).to.include({ name: before.name, command: before.command, gitCommit: before.gitCommit });
    const m = prov.metrics.guidanceSweep;
    expect(m).to.include({ mode: 'w-sweep', n: 10, weights: 'ema', step: 2 });
    expect(m.judge.classifier, 'a path relative to the repository').to.equal(path.join('checkpoints', 'classifier-mnist'));
    expect(m.command).to.equal(`npm run quality-table -- ${argv.join(' ')}`);
    expect(m.rows.map((r: { w: number; calls: number }) => [r.w, r.calls])).to.deep.equal([[0, 2], [1, 2], [2, 2]]);
    expect(m.rows[1].accuracy).to.be.closeTo(sweep.rows[1].accuracy, 1e-4);
    expect(m.rows[1].fidOverFloor).to.be.closeTo(sweep.rows[1].fid / sweep.floor, 1e-3);
    // only the rows the recorded command makes: --ws 1 in the same folder records one row, not the folder's three
    const one = ['--checkpoint', mnist, '--w-sweep', '--ws', '1', '--sampler', 'dpm++2m', '--calls', '2', '--n', '10', '--batch', '10',
      '--out', path.join(dir, 'sweep'), '--record', 'w1'];
    await runQualityTable(one, quiet);
    const w1 = JSON.parse(fs.readFileSync(provFile, 'utf8')).metrics;
    expect(w1.w1.rows.map((r: { w: number }) => r.w)).to.deep.equal([1]);
    expect(w1.guidanceSweep, 'earlier keys stay').to.deep.equal(m);
    // a provenance.json that is not JSON: a named error, the file left as it was
    const good = fs.readFileSync(provFile, 'utf8');
    fs.writeFileSync(provFile, '{ half');
    const bad = await failure(() => runQualityTable(one, quiet));
    expect(bad).to.be.instanceOf(CorruptFileError);
    expect(bad.message).to.match(/provenance\.json is not JSON/);
    expect(fs.readFileSync(provFile, 'utf8')).to.equal('{ half');
    fs.writeFileSync(provFile, good);
    const err = await failure(() => parseQualityArgs(['--checkpoint', mnist, '--record', '../x']));
    expect(err).to.be.instanceOf(InvalidArgumentError);
    expect(err.message).to.match(/--record must be a key/);

    const f = await runQualityTable(['--checkpoint', fashion, '--rows', 'ddim:25', '--n', '10', '--batch', '10', '--classifier', fashionClassifier,
      '--out', path.join(dir, 'qf')], quiet);
    expect(f.rows[0].fastaiFidOverFloor).to.be.closeTo(16.77 / 1.91, 1e-12);
    expect(formatTable(f)).to.match(/fastai FID\/floor[\s\S]*\| 8\.78 \|[\s\S]*fastai \(course22p2/);
  });

  it('train-classifier: per-data-set recipes, flags override them; a fast run selects on validation and scores the test split once', async () => {
    const f = parseClassifierArgs(['--dataset', 'fashion-mnist', '--epochs', '3', '--no-flip', '--channels', '8,16,16', '--out', 'x']);
    expect(f).to.include({ dataset: 'fashion-mnist', epochs: 3, flip: false, out: 'x', maxShift: RECIPES['fashion-mnist'].maxShift });
    expect(f.config).to.deep.equal({ ...RECIPES['fashion-mnist'].config, channels: [8, 16, 16] });
    expect(parseClassifierArgs([]).dataset).to.equal('mnist');
    expect(RECIPES.mnist.flip, 'a mirrored digit is another digit').to.equal(false);
    for (const [argv, re] of [
      [['--dataset', 'cifar10'], /unknown data set "cifar10"/],
      [['--flip', '--no-flip'], /--flip or --no-flip/],
      [['--channels', '8,16'], /--channels must be three positive integers/],
      [['--dropout', '1'], /--dropout must be in \[0, 1\)/],
      [['--epochs', '0'], /--epochs must be a positive integer/],
      [['--lr', 'fast'], /--lr must be a positive number/],
      [['--augment'], /Unknown option '--augment'/],
    ] as Array<[string[], RegExp]>) {
      const err = await failure(() => parseClassifierArgs(argv));
      expect(err, argv.join(' ')).to.be.instanceOf(InvalidArgumentError);
      expect(err.message, argv.join(' ')).to.match(re);
    }
    const fast = process.env.DIFFUSION_FAST;
    process.env.DIFFUSION_FAST = '1'; // 5 steps per epoch
    try {
      const out = path.join(dir, 'clf-run');
      const before = tf.memory().numTensors;
      const acc = await runTrainClassifier(['--dataset', 'fashion-mnist', '--epochs', '2', '--channels', '4,8,8', '--hidden', '16', '--out', out], quiet);
      expect(tf.memory().numTensors).to.equal(before);
      const prov = JSON.parse(fs.readFileSync(path.join(out, 'provenance.json'), 'utf8'));
      expect(prov).to.include({ dataset: 'fashion-mnist', testAccuracy: acc, testExamples: 10000, trainExamples: 55000, epochsRun: 2, fastMode: true });
      expect(prov.validation).to.include({ examples: 5000, perClass: 500 });
      expect(prov.selectedEpoch).to.be.oneOf([1, 2]);
      expect(prov.augmentation).to.equal('random shift ±2 px, random horizontal flip');
      expect(prov.loadAverage.cores).to.be.a('number');
      expect(prov.command).to.match(/^npm run train-classifier -- --dataset fashion-mnist/);
    } finally {
      if (fast === undefined) delete process.env.DIFFUSION_FAST;
      else process.env.DIFFUSION_FAST = fast;
    }
  });

  it('quality table: argument errors are named', async () => {
    for (const [argv, re] of [
      [['--rows', 'ddim:10'], /--checkpoint is required/],
      [['--checkpoint', 'x', '--sampler', 'heun'], /--sampler is for --w-sweep/],
      [['--checkpoint', 'x', '--w-sweep', '--rows', 'ddim:3'], /--rows is for the calls table/],
      [['--checkpoint', 'x', '--w-sweep', '--guidance', '2'], /drop --guidance/],
      [['--checkpoint', 'x', '--w-sweep', '--sampler', 'euler', '--eta', '1'], /--eta applies to --sampler ddim only/],
      [['--checkpoint', 'x', '--ws', '1,2'], /--ws is for --w-sweep/],
      [['--checkpoint', 'x', '--w-sweep', '--ws', '1,two'], /--ws must be comma-separated numbers/],
      [['--checkpoint', 'x', '--resume'], /Unknown option '--resume'/],
    ] as Array<[string[], RegExp]>) {
      const err = await failure(() => parseQualityArgs(argv));
      expect(err, argv.join(' ')).to.be.instanceOf(InvalidArgumentError);
      expect(err.message, argv.join(' ')).to.match(re);
    }
    expect(parseRows('ddpm:T,heun:10,dpm++2m:25', 1000, 1).map((r) => [r.id, r.spec.steps, r.calls]))
      .to.deep.equal([['ddpm-1000calls-w1', 1000, 1000], ['heun-9calls-w1', 5, 9], ['dpm++2m-25calls-w1', 25, 25]]);
    expect(() => parseRows('ddim', 1000, 1)).to.throw(InvalidArgumentError, /sampler:calls/);
    expect(() => parseRows('lms:10', 1000, 1)).to.throw(InvalidArgumentError, /unknown sampler "lms"/);
    expect(() => parseRows('ddim:2000', 1000, 1)).to.throw(InvalidArgumentError, /exceed the schedule's T = 1000/);
  });
});
