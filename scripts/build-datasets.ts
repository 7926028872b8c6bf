/**
 * Build or validate the data set caches (datasets/cache/): MNIST and Fashion-MNIST. Idempotent, and quick when the caches
 * are valid (reads them and checks each split's SHA-256, ≈ 75 ms per data set); prints one line per data set.
 * Run by scripts/setup.sh; by hand: `node -r ts-node/register scripts/build-datasets.ts [mnist|fashion-mnist …]`.
 *
 * MNIST is required (every notebook uses it): a failure exits 1. Fashion-MNIST is optional for set-up (no notebook needs
 * it yet, and outside Debian its package may be absent): a failure is a warning with the reason, exit 0, unless it was
 * named on the command line.
 */
import { ensureDatasetCache } from '../lib/data/cache';
import { checkDatasetName, DATASET_NAMES } from '../lib/data/sources';
import type { DatasetName } from '../lib/data/sources';

const REQUIRED: readonly DatasetName[] = ['mnist'];
const named = process.argv.length > 2;
let failed = false;
for (const arg of named ? process.argv.slice(2) : DATASET_NAMES) {
  try {
    const name = checkDatasetName(arg);
    try {
      const r = ensureDatasetCache(name);
      const h = r.header;
      const why = r.reason ? ` (was invalid: ${r.reason})` : '';
      console.log(
        `datasets: ${name} cache ${r.status}${why}: ${h.counts.train} train / ${h.counts.test} test, ` +
          `sha256 ${h.sections.train.sha256.slice(0, 12)}… / ${h.sections.test.sha256.slice(0, 12)}…, ${r.ms} ms, ${r.dir}`,
      );
    } catch (e) {
      const msg = `${(e as Error).name}: ${(e as Error).message}`;
      if (named || REQUIRED.includes(name)) throw e;
      console.warn(`datasets: WARNING ${name} cache not built (optional): ${msg}`);
    }
  } catch (e) {
    console.error(`datasets: FAILED to build the ${arg} cache: ${(e as Error).name}: ${(e as Error).message}`);
    failed = true;
  }
}
if (failed) process.exit(1);
