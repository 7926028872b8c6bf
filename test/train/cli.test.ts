import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { readRawSamples } from '../../lib/eval/raw-samples';
import { InvalidArgumentError } from '../../lib/errors';
import { parseRunConfig, readCheckpointFile, readRunConfig } from '../../lib/train';
import { runSample } from '../../scripts/sample';
import { runTrain } from '../../scripts/train';

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
    expect(r.meta).to.include({ sampler: 'ddim', steps: 2, seed: 1 });
    // same seed → same pixels
    const raw2 = path.join(dir, 'raw2.bin');
    await runSample(['--checkpoint', out, '--class', '3', '--n', '3', '--steps', '2', '--seed', '1', '--raw', raw2, '--quiet']);
    expect(Array.from(readRawSamples(raw2).pixels)).to.deep.equal(Array.from(r.pixels));
  });

  it('run configs: the shipped one parses; fast overrides apply; bad fields are named', () => {
    const shipped = readRunConfig('configs/unet-cond-mnist.json');
    expect(shipped.model.kind).to.equal('unet');
    const fast = readRunConfig('configs/tiny-test.json', true);
    expect(fast.train.batchSize).to.equal(8);
    const base = { name: 'x', model: { kind: 'unet' }, schedule: { kind: 'linear', T: 10 } };
    expect(() => parseRunConfig({ ...base, name: 'a/b' }, 'cfg')).to.throw(InvalidArgumentError, /name must be a simple file name/);
    expect(() => parseRunConfig({ ...base, schedule: { kind: 'sqrt', T: 10 } }, 'cfg')).to.throw(InvalidArgumentError, /schedule.kind/);
    expect(() => parseRunConfig({ ...base, train: { batchSize: 0 } }, 'cfg')).to.throw(InvalidArgumentError, /batchSize/);
  });

  it('bad arguments are named errors', async () => {
    let err: unknown;
    try { await runSample(['--checkpoint', 'x', '--sampler', 'euler']); } catch (e) { err = e; }
    expect(err).to.be.instanceOf(InvalidArgumentError);
    expect((err as Error).message).to.match(/--sampler must be ddim or ddpm/);
    err = undefined;
    try { await runTrain(['configs/tiny-test.json', '--steps', '-1']); } catch (e) { err = e; }
    expect((err as Error).message).to.match(/--steps must be an integer ≥ 0/);
  });
});
