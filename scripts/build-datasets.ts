/**
 * Build or validate the dataset cache (datasets/cache/). Idempotent and fast when the cache is valid; prints one line.
 * Run by scripts/setup.sh; by hand: `node -r ts-node/register scripts/build-datasets.ts`.
 */
import { ensureMnistCache } from '../lib/data/mnist-cache';

try {
  const r = ensureMnistCache();
  const h = r.data.header;
  const why = r.reason ? ` (was invalid: ${r.reason})` : '';
  console.log(
    `datasets: MNIST cache ${r.status}${why}: ${h.counts.train} train / ${h.counts.test} test, ` +
      `sha256 ${h.sha256.slice(0, 12)}…, ${r.ms} ms, ${r.dir}`,
  );
} catch (e) {
  console.error(`datasets: FAILED to build the MNIST cache: ${(e as Error).message}`);
  process.exit(1);
}
