import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../../lib/errors';
import { loadBaseline, readCheckpointFile } from '../../lib/train';
import { runTrainBaseline } from '../../scripts/train-baseline';

describe('train: npm run train-baseline, in-process (fast mode: batch 8)', function () {
  let dir: string;
  const log = console.log;
  const fast = process.env.DIFFUSION_FAST;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baseline-cli-'));
    console.log = () => undefined;
    process.env.DIFFUSION_FAST = '1';
  });
  after(() => {
    console.log = log;
    if (fast === undefined) delete process.env.DIFFUSION_FAST;
    else process.env.DIFFUSION_FAST = fast;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const kind of ['vae', 'gan']) {
    it(`${kind}: writes a checkpoint + provenance, --resume continues to the step asked for, the result samples`, async () => {
      const out = path.join(dir, kind);
      await runTrainBaseline([`configs/${kind}-mnist.json`, '--steps', '2', '--seed', '3', '--out', out, '--quiet']);
      const prov = JSON.parse(fs.readFileSync(path.join(out, 'provenance.json'), 'utf8'));
      expect(prov).to.include({ steps: 2, seed: 3, name: `${kind}-mnist`, dataset: 'mnist', batchSize: 8 });
      expect(prov.command).to.equal(`npm run train-baseline -- configs/${kind}-mnist.json --steps 2 --seed 3 --out ${out} --quiet`);
      for (const k of ['gitCommit', 'gitDirty', 'wallTimeSec', 'cpuTimeSec', 'backend', 'loadAverage', 'paramCount', 'lossNote']) expect(prov, k).to.have.property(k);
      expect(prov).to.have.property(kind === 'gan' ? 'generatorLoss' : 'negElbo');
      await runTrainBaseline([`configs/${kind}-mnist.json`, '--steps', '3', '--seed', '3', '--out', out, '--resume', '--quiet']);
      const ck = readCheckpointFile(path.join(out, 'checkpoint.bin'));
      expect(ck.header).to.include({ step: 3, dataset: 'mnist', kind: 'baseline' });
      expect((ck.header.lossHistory as number[]).length).to.equal(kind === 'gan' ? 6 : 3);
      const before = tf.memory().numTensors;
      const { model } = loadBaseline(out);
      const img = model.sample(2, 1);
      expect(img.shape).to.deep.equal([2, 28, 28, 1]);
      tf.dispose(img);
      model.dispose();
      expect(tf.memory().numTensors).to.equal(before);
    });
  }

  it('bad arguments and a mismatched resume are named errors', async () => {
    const fails = async (argv: string[], re: RegExp) => {
      let err: unknown;
      try { await runTrainBaseline(argv); } catch (e) { err = e; }
      expect(err, argv.join(' ')).to.be.instanceOf(InvalidArgumentError);
      expect((err as Error).message).to.match(re);
    };
    await fails(['configs/gan-mnist.json', '--steps', '-1'], /--steps must be an integer ≥ 0/);
    await fails(['configs/gan-mnist.json', '--bogus'], /unknown option --bogus/);
    await fails([], /usage: npm run train-baseline/);
    await fails(['configs/gan-mnist.json', '--resume', '--out', path.join(dir, 'none')], /no checkpoint at/);
    await fails(['configs/gan-fashion-mnist.json', '--resume', '--out', path.join(dir, 'gan')], /trained on mnist, but fashion-mnist was asked for/);
  });
});
