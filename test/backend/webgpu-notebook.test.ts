/**
 * Notebook 00 (solutions/00-setup.ipynb) executed on the tslab kernel with DIFFUSION_BACKEND=webgpu (llvmpipe without a
 * GPU): the backend line says webgpu, and the cells that read tensors back (a sum, the digits' range, a histogram, a
 * progress bar fed by readScalar) work with webgpu's asynchronous reads.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expect } from 'chai';
import { cellSource, readNotebook } from '../../lib/notebook/ipynb';
import { ROOT } from '../../lib/notebook/plan';
import { formatFailures, runNotebook } from '../../lib/notebook/run';
import { useWebGpu } from './webgpu-setup';

const outputText = (cell: { outputs?: unknown[] }) => JSON.stringify(cell.outputs ?? []);

describe('webgpu: notebook 00 on the tslab kernel with DIFFUSION_BACKEND=webgpu', function () {
  this.timeout(600000);
  useWebGpu(); // skips (with the reason) where Dawn cannot run at all, as the other webgpu tests
  let dir: string;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webgpu-notebook-')); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('solutions/00-setup.ipynb runs top to bottom in fast mode; its reading cells print their values', async () => {
    const file = path.join(ROOT, 'solutions', '00-setup.ipynb');
    const r = await runNotebook(file, { outFile: path.join(dir, '00-setup.ipynb'), fast: true, env: { DIFFUSION_BACKEND: 'webgpu' } });
    console.log(`      ${r.seconds.toFixed(1)} s (kernel start ${r.kernelStartSeconds.toFixed(1)} s)`);
    expect(r.ok, `\n${formatFailures(r)}`).to.equal(true);
    const executed = readNotebook(r.outFile);
    const cellWith = (text: string) => {
      const cell = executed.cells.find((c) => c.cell_type === 'code' && cellSource(c).includes(text));
      if (!cell) throw new Error(`notebook 00 has no code cell containing '${text}' (update this test with the notebook)`);
      return outputText(cell);
    };
    expect(cellWith('initBackend()')).to.match(/backend: webgpu \(.*\) — forced by DIFFUSION_BACKEND=webgpu/);
    expect(cellWith('backend in use')).to.include('backend in use: webgpu');
    expect(cellWith('a.matMul(b).sum()')).to.include('sum = 20');
    expect(cellWith('classBalancedIndices')).to.match(/values -1 … 1/);
    expect(cellWith('progressBar')).to.include('tensors the loop left behind: 0');
  });
});
