import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { readRawSamples } from '../../lib/eval/raw-samples';
import { InvalidArgumentError } from '../../lib/errors';
import { parseRunConfig, readCheckpointFile, readRunConfig } from '../../lib/train';
import { parseSampleArgs, resolveClass, runSample } from '../../scripts/sample';
import { samplerSpecFromArgs } from '../../scripts/sampler-args';
import { runTrain } from '../../scripts/train';
import { runExportWeights } from '../../scripts/export-weights';
import { CorruptFileError } from '../../lib/errors';
import { loadModel } from '../../lib/train/state';
import { failure } from '../math/helpers';

describe('train: CLIs (npm run train / npm run sample), in-process', function () {
  let dir: string;
  const log = console.log;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-'));
    console.log = () => undefined; // keep the test report readable
  });
  after(() => {
    console.log = log;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('train writes a checkpoint + provenance, --resume continues, sample writes a grid and raw samples', async () => {
    const out = path.join(dir, 'tiny');
    await runTrain(['configs/tiny-test.json', '--steps', '2', '--out', out, '--quiet']);
    expect(readCheckpointFile(path.join(out, 'checkpoint.bin')).header.step).to.equal(2);
    const prov = JSON.parse(fs.readFileSync(path.join(out, 'provenance.json'), 'utf8'));
    expect(prov).to.include({ steps: 2, seed: 0, name: 'tiny-test' });
    expect(prov.command).to.match(/^npm run train -- configs\/tiny-test\.json --steps 2/);
    for (const k of ['gitCommit', 'wallTimeSec', 'backend', 'finalLoss', 'paramCount']) expect(prov, k).to.have.property(k);

    await runTrain(['configs/tiny-test.json', '--steps', '3', '--out', out, '--resume', '--quiet']);
    const ck = readCheckpointFile(path.join(out, 'checkpoint.bin'));
    expect(ck.header.step).to.equal(3);
    expect((ck.header.lossHistory as number[]).length).to.equal(3);

    const before = tf.memory().numTensors;
    const png = path.join(dir, 'grid.png');
    const raw = path.join(dir, 'raw.bin');
    await runSample(['--checkpoint', out, '--class', '3', '--n', '3', '--steps', '2', '--seed', '1', '--out', png, '--raw', raw, '--quiet']);
    expect(tf.memory().numTensors).to.equal(before);
    expect(fs.readFileSync(png).subarray(1, 4).toString()).to.equal('PNG');
    const r = readRawSamples(raw);
    expect(r.count).to.equal(3);
    expect(Array.from(r.labels)).to.deep.equal([3, 3, 3]);
    expect(r.meta).to.include({ sampler: 'ddim', steps: 2, seed: 1, modelCalls: 2, dataset: 'mnist' });
    // same seed → same pixels
    const raw2 = path.join(dir, 'raw2.bin');
    await runSample(['--checkpoint', out, '--class', '3', '--n', '3', '--steps', '2', '--seed', '1', '--raw', raw2, '--quiet']);
    expect(Array.from(readRawSamples(raw2).pixels)).to.deep.equal(Array.from(r.pixels));
  });

  it('every sampler end to end: --calls picks the steps (Heun 2N − 1), the JSON records calls, steps and time per 64 images', async () => {
    const out = path.join(dir, 'tiny');
    if (!fs.existsSync(path.join(out, 'checkpoint.bin'))) await runTrain(['configs/tiny-test.json', '--steps', '2', '--out', out, '--quiet']);
    const before = tf.memory().numTensors;
    const want: Record<string, { steps: number; modelCalls: number }> = {
      ddpm: { steps: 3, modelCalls: 3 }, ddim: { steps: 3, modelCalls: 3 }, 'dpm++2m': { steps: 3, modelCalls: 3 },
      euler: { steps: 3, modelCalls: 3 }, heun: { steps: 2, modelCalls: 3 },
    };
    for (const [sampler, w] of Object.entries(want)) {
      const json = path.join(dir, `${sampler}.json`);
      const extra = sampler === 'heun' ? ['--sigma-max', '20', '--rho', '5'] : sampler === 'ddim' ? ['--eta', '0.5'] : [];
      await runSample(['--checkpoint', out, '--n', '3', '--class', '7', '--sampler', sampler, '--calls', '3', '--batch', '2', '--json', json, '--quiet', ...extra]);
      const run = JSON.parse(fs.readFileSync(json, 'utf8'));
      expect(run, sampler).to.include({ sampler, ...w, n: 3, batchSize: 2, dataset: 'mnist', guidance: 2 });
      expect(run.secondsPer64Images).to.be.closeTo((run.wallSeconds * 64) / 3, 1e-9);
      expect(run.classes).to.deep.equal([7, 7, 7]);
      if (sampler === 'heun') expect(run).to.include({ sigmaMax: 20, rho: 5 });
      if (sampler === 'ddim') expect(run).to.include({ eta: 0.5 });
    }
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('sampler arguments: --steps or --calls, options of another sampler and unknown flags are named errors', async () => {
    const T = 1000;
    expect(samplerSpecFromArgs({}, { T })).to.deep.equal({ sampler: 'ddim', steps: 50, calls: 50 });
    expect(samplerSpecFromArgs({ sampler: 'ddpm' }, { T })).to.deep.equal({ sampler: 'ddpm', steps: 1000, calls: 1000 });
    expect(samplerSpecFromArgs({ sampler: 'heun' }, { T })).to.deep.equal({ sampler: 'heun', steps: 25, calls: 49 });
    expect(samplerSpecFromArgs({ sampler: 'heun', calls: '10' }, { T })).to.deep.equal({ sampler: 'heun', steps: 5, calls: 9 });
    expect(samplerSpecFromArgs({ sampler: 'heun', steps: '13' }, { T })).to.deep.equal({ sampler: 'heun', steps: 13, calls: 25 });
    expect(samplerSpecFromArgs({ sampler: 'dpm++2m', calls: '25' }, { T })).to.deep.equal({ sampler: 'dpm++2m', steps: 25, calls: 25 });
    expect(samplerSpecFromArgs({ sampler: 'euler', 'sigma-max': '80', rho: '7' }, { T, calls: 10 })).to.deep.equal({ sampler: 'euler', steps: 10, calls: 10, sigmaMax: 80, rho: 7 });
    expect(samplerSpecFromArgs({ sampler: 'ddim', eta: '1' }, { T })).to.include({ eta: 1 });
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ sampler: 'plms' }, /unknown sampler "plms": expected one of ddpm, ddim, dpm\+\+2m, euler, heun/],
      [{ steps: '10', calls: '10' }, /--steps or --calls, not both/],
      [{ sampler: 'heun', eta: '0' }, /--eta applies to --sampler ddim only, not heun/],
      [{ sampler: 'dpm++2m', eta: '0.5' }, /--eta applies to --sampler ddim only/],
      [{ sampler: 'ddim', rho: '7' }, /--rho applies to --sampler euler or heun only, not ddim/],
      [{ sampler: 'ddpm', 'sigma-max': '80' }, /--sigma-max applies to --sampler euler or heun only/],
      [{ sampler: 'ddim', eta: '2' }, /--eta must lie in \[0, 1\]/],
      [{ sampler: 'heun', rho: '-1' }, /--rho must be positive/],
      [{ calls: '0' }, /--calls must be a positive integer/],
      [{ steps: '2.5' }, /--steps must be a positive integer/],
      [{ steps: '1001' }, /1001 steps exceed the schedule's T = 1000/],
    ];
    for (const [values, re] of bad) {
      expect(() => samplerSpecFromArgs(values, { T }), JSON.stringify(values)).to.throw(InvalidArgumentError, re);
    }
    // the CLI's own flags, checked before any checkpoint is read
    expect(parseSampleArgs(['--checkpoint', 'x', '--sampler', 'heun', '--calls', '25', '--class', 'Sneaker']))
      .to.include({ checkpoint: 'x', cls: 'Sneaker', n: 16, out: 'samples.png' });
    for (const [argv, re] of [
      [['--checkpoint', 'x', '--sampler', 'euler', '--eta', '0.1'], /--eta applies to --sampler ddim only, not euler/],
      [['--checkpoint', 'x', '--temperature', '2'], /Unknown option '--temperature'/],
      [['--checkpoint', 'x', '--steps'], /--steps.*argument missing/],
      [['--sampler', 'ddim'], /--checkpoint is required/],
      [['--checkpoint', 'x', '--guidance', 'lots'], /--guidance must be a number/],
      [['--checkpoint', 'x', '--weights', 'best'], /--weights must be ema or params/],
    ] as Array<[string[], RegExp]>) {
      const err = await failure(() => runSample(argv));
      expect(err, argv.join(' ')).to.be.instanceOf(InvalidArgumentError);
      expect(err.message, argv.join(' ')).to.match(re);
    }
    const fashion = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
    expect(resolveClass('ankle BOOT', fashion)).to.equal(9);
    expect(resolveClass(3, fashion)).to.equal(3);
    expect(() => resolveClass('Hat', fashion)).to.throw(InvalidArgumentError, /"Hat" is none of 'T-shirt\/top'/);
    expect(() => resolveClass(10, fashion)).to.throw(InvalidArgumentError, /0 … 9/);
  });

  it('Fashion-MNIST runs: the config names the data set, the checkpoint records it, a resume must match it', async () => {
    const cfg = JSON.parse(fs.readFileSync('configs/tiny-test.json', 'utf8'));
    const fashionCfg = path.join(dir, 'tiny-fashion.json');
    fs.writeFileSync(fashionCfg, JSON.stringify({ ...cfg, name: 'tiny-fashion', data: { dataset: 'fashion-mnist', split: 'train' } }));
    const out = path.join(dir, 'tiny-fashion');
    await runTrain([fashionCfg, '--steps', '1', '--out', out, '--quiet']);
    expect(readCheckpointFile(path.join(out, 'checkpoint.bin')).header.dataset).to.equal('fashion-mnist');
    expect(JSON.parse(fs.readFileSync(path.join(out, 'provenance.json'), 'utf8'))).to.include({ dataset: 'fashion-mnist' });
    const err = await failure(() => runTrain(['configs/tiny-test.json', '--steps', '2', '--out', out, '--resume', '--quiet']));
    expect(err).to.be.instanceOf(InvalidArgumentError);
    expect(err.message).to.match(/was trained on fashion-mnist, but the run config asks for mnist/);
    const png = path.join(dir, 'fashion.png');
    await runSample(['--checkpoint', out, '--class', 'sneaker', '--n', '2', '--steps', '2', '--out', png, '--raw', path.join(dir, 'f.bin'), '--quiet']);
    const r = readRawSamples(path.join(dir, 'f.bin'));
    expect(Array.from(r.labels)).to.deep.equal([7, 7]);
    expect(r.meta).to.include({ dataset: 'fashion-mnist' });
  });

  it('export-weights: an EMA-only checkpoint (a quarter of the size) that samples like the training one, with provenance', async () => {
    const out = path.join(dir, 'tiny');
    if (!fs.existsSync(path.join(out, 'checkpoint.bin'))) await runTrain(['configs/tiny-test.json', '--steps', '2', '--out', out, '--quiet']);
    const shipped = path.join(dir, 'shipped');
    const file = await runExportWeights(['--checkpoint', out, '--out', shipped], () => undefined);
    expect(fs.statSync(file).size).to.be.below(0.3 * fs.statSync(path.join(out, 'checkpoint.bin')).size);
    const a = loadModel(out, 'ema');
    const b = loadModel(shipped, 'ema');
    expect(b.header).to.include({ step: a.header.step, dataset: 'mnist' });
    const [va, vb] = [a.model.params.variables(), b.model.params.variables()];
    va.forEach((v, i) => expect(Array.from(vb[i].dataSync())).to.deep.equal(Array.from(v.dataSync())));
    a.model.dispose();
    b.model.dispose();
    expect(() => loadModel(shipped, 'params')).to.throw(CorruptFileError, /params/);
    const prov = JSON.parse(fs.readFileSync(path.join(shipped, 'provenance.json'), 'utf8'));
    expect(prov).to.include({ name: 'tiny-test' });
    expect(prov.export).to.include({ contents: 'EMA weights only (weights-only checkpoint: samples, cannot resume)' });
    // --with-raw: the raw weights too (notebook 06's raw-vs-EMA comparison), still no Adam moments
    const withRaw = path.join(dir, 'shipped-raw');
    const rawFile = await runExportWeights(['--checkpoint', out, '--out', withRaw, '--with-raw'], () => undefined);
    const size = fs.statSync(rawFile).size;
    expect(size).to.be.above(1.5 * fs.statSync(file).size).and.below(0.6 * fs.statSync(path.join(out, 'checkpoint.bin')).size);
    const [rawTrain, rawShipped] = [loadModel(out, 'params'), loadModel(withRaw, 'params')];
    const [ra, rb] = [rawTrain.model.params.variables(), rawShipped.model.params.variables()];
    ra.forEach((v, i) => expect(Array.from(rb[i].dataSync())).to.deep.equal(Array.from(v.dataSync())));
    rawTrain.model.dispose();
    rawShipped.model.dispose();
    expect(JSON.parse(fs.readFileSync(path.join(withRaw, 'provenance.json'), 'utf8')).export.contents).to.match(/^EMA and raw weights, no Adam/);
    expect((await failure(() => runExportWeights(['--checkpoint', out, '--out', out]))).message).to.match(/would overwrite the training checkpoint/);
    expect((await failure(() => runExportWeights([]))).message).to.match(/--checkpoint is required/);
  });

  it('run configs: the shipped ones parse; fast overrides apply; bad fields are named', () => {
    const shipped = readRunConfig('configs/unet-cond-mnist.json');
    expect(shipped.model.kind).to.equal('unet');
    expect(shipped.data.dataset).to.equal('mnist');
    expect(readRunConfig('configs/unet-cond-fashion-mnist.json').data.dataset).to.equal('fashion-mnist');
    const fast = readRunConfig('configs/tiny-test.json', true);
    expect(fast.train.batchSize).to.equal(8);
    const base = { name: 'x', model: { kind: 'unet' }, schedule: { kind: 'linear', T: 10 } };
    expect(() => parseRunConfig({ ...base, name: 'a/b' }, 'cfg')).to.throw(InvalidArgumentError, /name must be a simple file name/);
    expect(() => parseRunConfig({ ...base, schedule: { kind: 'sqrt', T: 10 } }, 'cfg')).to.throw(InvalidArgumentError, /schedule.kind/);
    expect(() => parseRunConfig({ ...base, train: { batchSize: 0 } }, 'cfg')).to.throw(InvalidArgumentError, /batchSize/);
    expect(parseRunConfig(base, 'cfg').data).to.deep.equal({ dataset: 'mnist', split: 'train' });
    expect(() => parseRunConfig({ ...base, data: { dataset: 'cifar10' } }, 'cfg')).to.throw(InvalidArgumentError, /data.dataset must be one of 'mnist', 'fashion-mnist', got "cifar10"/);
    expect(() => parseRunConfig({ ...base, data: { dataset: 'mnist', split: 'test' } }, 'cfg')).to.throw(InvalidArgumentError, /data.split must be 'train'/);
  });

  it('bad arguments are named errors', async () => {
    let err: unknown;
    try { await runSample(['--checkpoint', 'x', '--sampler', 'lms']); } catch (e) { err = e; }
    expect(err).to.be.instanceOf(InvalidArgumentError);
    expect((err as Error).message).to.match(/unknown sampler "lms"/);
    err = undefined;
    try { await runTrain(['configs/tiny-test.json', '--steps', '-1']); } catch (e) { err = e; }
    expect((err as Error).message).to.match(/--steps must be an integer ≥ 0/);
  });
});
