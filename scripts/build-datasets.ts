/**
 * Build or validate the data set caches (datasets/cache/): MNIST and Fashion-MNIST. Idempotent, and quick when the caches
 * are valid (reads and checks their SHA-256); prints one line per data set.
 * Run by scripts/setup.sh; by hand: `node -r ts-node/register scripts/build-datasets.ts [mnist|fashion-mnist …]`.
 */
import { ensureDatasetCache } from '../lib/data/cache';
import { checkDatasetName, DATASET_NAMES } from '../lib/data/sources';

let failed = false;
const names = process.argv.length > 2 ? process.argv.slice(2) : [...DATASET_NAMES];
for (const arg of names) {
  try {
    const name = checkDatasetName(arg);
    const r = ensureDatasetCache(name);
    const h = r.header;
    const why = r.reason ? ` (was invalid: ${r.reason})` : '';
    console.log(
      `datasets: ${name} cache ${r.status}${why}: ${h.counts.train} train / ${h.counts.test} test, ` +
        `sha256 ${h.sections.train.sha256.slice(0, 12)}… ${h.sections.test.sha256.slice(0, 12)}…, ${r.ms} ms, ${r.dir}`,
    );
  } catch (e) {
    console.error(`datasets: FAILED to build the ${arg} cache: ${(e as Error).name}: ${(e as Error).message}`);
    failed = true;
  }
}
if (failed) process.exit(1);
