/**
 * npm run generate-notebooks [-- --check] [files…]
 *
 * solutions/*.ipynb (the source) → notebooks/*.ipynb (learner versions: solution regions replaced by a stub,
 * outputs stripped). Also normalizes the solution files themselves (outputs stripped, stable JSON).
 * --check writes nothing and exits 1 when any file differs from what would be written (used by the tests/CI).
 */
import * as fs from 'fs';
import * as path from 'path';
import { orphanLearnerNotebooks, planGeneration } from '../lib/notebook/plan';

function main(): void {
  const argv = process.argv.slice(2);
  const check = argv.includes('--check');
  const files = argv.filter((a) => !a.startsWith('--'));
  const plan = planGeneration(files.length > 0 ? files : undefined);
  const stale = plan.filter((p) => p.actual !== p.expected);
  const orphans = files.length > 0 ? [] : orphanLearnerNotebooks();
  const rel = (f: string) => path.relative(process.cwd(), f);
  if (check) {
    for (const p of stale) console.error(`out of date: ${rel(p.file)}`);
    for (const o of orphans) console.error(`no solution for learner notebook: ${rel(o)}`);
    if (stale.length + orphans.length > 0) {
      console.error(`Run 'npm run generate-notebooks' (edit solutions/, never notebooks/ by hand).`);
      process.exit(1);
    }
    console.log(`${plan.length} notebook files up to date.`);
    return;
  }
  for (const p of stale) {
    fs.mkdirSync(path.dirname(p.file), { recursive: true });
    fs.writeFileSync(p.file, p.expected);
    console.log(`wrote ${rel(p.file)}`);
  }
  for (const o of orphans) console.warn(`warning: ${rel(o)} has no solution notebook (delete it if the solution was removed)`);
  console.log(`${plan.length - stale.length} of ${plan.length} notebook files were already up to date.`);
}

if (require.main === module) {
  try {
    main();
  } catch (e) {
    console.error(`${(e as Error).name}: ${(e as Error).message}`);
    process.exit(1);
  }
}
