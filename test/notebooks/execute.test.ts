// Every notebook in solutions/ and notebooks/ runs top to bottom in fast mode on the tslab kernel.
// Learner notebooks may fail only in exercise/selfcheck cells, and only with the "not implemented" stub.
// Solutions must pass every self-check (their exercise code is an implementation independent of lib's reference);
// learner notebooks must reach every self-check and be told "not attempted yet".
// Executed copies go to out/test-notebooks/ (git-ignored) for inspection.
// DIFFUSION_NOTEBOOKS=00,01 restricts the run to notebooks whose names start with these prefixes.
import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { Notebook, cellSource, cellTags, readNotebook } from '../../lib/notebook/ipynb';
import { ROOT } from '../../lib/notebook/plan';
import { formatFailures, runNotebook } from '../../lib/notebook/run';

function notebooks(): string[] {
  const only = (process.env.DIFFUSION_NOTEBOOKS ?? '').split(',').filter((s) => s !== '');
  return ['solutions', 'notebooks'].flatMap((dir) => {
    const d = path.join(ROOT, dir);
    if (!fs.existsSync(d)) return [];
    return fs.readdirSync(d).filter((f) => f.endsWith('.ipynb'))
      .filter((f) => only.length === 0 || only.some((p) => f.startsWith(p)))
      .sort().map((f) => path.join(dir, f));
  });
}

const codeOf = (nb: Notebook) => JSON.stringify(nb.cells.filter((c) => c.cell_type === 'code').map(cellSource));
const outputText = (nb: Notebook, i: number) => JSON.stringify(nb.cells[i].outputs ?? []);

describe('notebooks execute headlessly (fast mode)', function () {
  this.timeout(15 * 60 * 1000);
  const passed = new Set<string>();
  for (const rel of notebooks()) {
    it(rel, async () => {
      // A learner notebook without exercises has exactly its solution's code: running it again would prove nothing new.
      const twin = path.join('solutions', path.basename(rel));
      if (rel.startsWith('notebooks') && passed.has(twin) && codeOf(readNotebook(path.join(ROOT, rel))) === codeOf(readNotebook(path.join(ROOT, twin)))) {
        console.log(`      ${rel}: same code as ${twin}, which ran above`);
        return;
      }
      const r = await runNotebook(path.join(ROOT, rel), { outFile: path.join(ROOT, 'out', 'test-notebooks', rel), fast: true });
      const slowest = [...r.cells].sort((a, b) => b.seconds - a.seconds)[0];
      console.log(`      ${rel}: ${r.seconds.toFixed(1)} s (kernel start ${r.kernelStartSeconds.toFixed(1)} s` +
        `${slowest ? `, slowest: cell ${slowest.index + 1}, ${slowest.seconds.toFixed(1)} s` : ''})`);
      expect(r.ok, `\n${formatFailures(r)}`).to.equal(true);

      const executed = readNotebook(r.outFile);
      executed.cells.forEach((cell, i) => {
        if (!cellTags(cell).includes('selfcheck')) return;
        const text = outputText(executed, i);
        if (r.learner) {
          expect(text, `${rel} cell ${i + 1}: the self-check should report the stub as not attempted`).to.contain('not attempted yet');
        } else {
          expect(text, `${rel} cell ${i + 1}: the solution fails its self-check:\n${text}`).to.match(/All \d+ checks of .* passed/);
        }
      });
      passed.add(rel);
    });
  }
});
