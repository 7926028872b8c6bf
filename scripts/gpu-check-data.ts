/**
 * Writes the MNIST digits the GPU check trains on (scripts/gpu-check.ts reads them on the device, which has no
 * dataset cache): "MNSB", uint32 LE count, count × 784 pixel bytes, count label bytes.
 *
 *   node -r ts-node/register scripts/gpu-check-data.ts OUT_FILE [COUNT]   (default 10000: 7.9 MB, ~2 MB with xz)
 */
import * as fs from 'node:fs';
import { loadMnist } from '../lib/data/mnist';
import { InvalidArgumentError } from '../lib/errors';

const [file, countArg] = process.argv.slice(2);
if (!file) throw new InvalidArgumentError('usage: scripts/gpu-check-data.ts OUT_FILE [COUNT]');
const train = loadMnist('train');
const count = Math.min(train.size, countArg ? Number(countArg) : 10000);
if (!(Number.isInteger(count) && count > 0)) throw new InvalidArgumentError(`COUNT must be a positive integer, got ${countArg}`);
const head = Buffer.alloc(8);
head.write('MNSB', 0, 'latin1');
head.writeUInt32LE(count, 4);
fs.writeFileSync(file, Buffer.concat([head, train.images.subarray(0, count * 784), train.labels.subarray(0, count)]));
console.log(`[gpu-check-data] ${count} training digits → ${file}`);
