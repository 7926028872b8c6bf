/**
 * npm run bench times the diffusion run configs in configs/: the reference network once, every other diffusion config
 * whose network differs, and nothing else — notebook 10's VAE/GAN run configs and study configs sit in the same folder
 * and must be skipped with a reason, not crash the bench (they have no schedule).
 */
import * as path from 'path';
import { expect } from 'chai';
import { benchModels } from '../../scripts/bench-models';

describe('tools: npm run bench picks its models from configs/', () => {
  it('the reference, each other network once; the shipped reference-size models, repeated networks, VAE/GAN and study configs skipped with reasons', () => {
    const { models, skipped } = benchModels(undefined, path.join(__dirname, '..', '..', 'configs'));
    // the three 60-minute experiments share one (scale-shift) network: timed once
    expect(models.map((m) => m.name)).to.deep.equal(['reference', 'unet-cond-mnist-hour-ss-lr3', 'unet-cond-mnist-small']);
    for (const other of ['unet-cond-mnist-hour-ss', 'unet-cond-mnist-hour-ss-minsnr']) {
      expect(skipped).to.include(`${other}: the same network at the same batch as unet-cond-mnist-hour-ss-lr3 (timed once, as 'unet-cond-mnist-hour-ss-lr3')`);
    }
    for (const f of ['vae-mnist.json', 'gan-mnist.json', 'why-diffusion-mnist.json']) {
      expect(skipped.some((s) => s.startsWith(`${f}: not a diffusion run config`)), f).to.equal(true);
    }
    expect(skipped.some((s) => s.startsWith('unet-cond-mnist: the reference network'))).to.equal(true);
    expect(benchModels(['unet-cond-mnist'], path.join(__dirname, '..', '..', 'configs')).models.map((m) => m.name)).to.deep.equal(['unet-cond-mnist']);
  });
});
