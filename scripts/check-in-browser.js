// A user's-eye check of `npm start`: opens a notebook in the classic Notebook UI in headless Chromium, runs all cells,
// waits for them, prints each code cell's output types and saves a full-page screenshot. Not part of `npm test`
// (it needs a browser): apt-get install chromium; npm install --prefix /tmp/pw playwright-core, then run with
// NODE_PATH=/tmp/pw/node_modules
// Usage: PORT=8899 npm start &   node scripts/check-in-browser.js 'http://127.0.0.1:8899/?token=…' 00-setup.ipynb shot.png
const { chromium } = require('playwright-core');
(async () => {
  const [url, nb, shot] = process.argv.slice(2);
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  const page = await browser.newPage({ viewport: { width: 1200, height: 3000 } });
  const u = new URL(url); const token = u.searchParams.get('token');
  await page.goto(`${u.origin}/notebooks/${nb}?token=${token}`);
  await page.waitForFunction(() => window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel && Jupyter.notebook.kernel.is_connected(), null, { timeout: 60000 });
  const kname = await page.evaluate(() => Jupyter.notebook.kernel.name);
  await page.evaluate(() => Jupyter.notebook.execute_all_cells());
  const t0 = Date.now();
  await page.waitForFunction(() => Jupyter.notebook.get_cells().every(c => c.cell_type !== 'code' || (c.input_prompt_number !== '*' && c.input_prompt_number !== undefined && c.input_prompt_number !== null)), null, { timeout: 300000, polling: 1000 });
  const info = await page.evaluate(() => Jupyter.notebook.get_cells().filter(c => c.cell_type === 'code').map(c => ({
    n: c.input_prompt_number, outputs: c.output_area.outputs.map(o => o.output_type + (o.data ? ':' + Object.keys(o.data).join(',') : '') + (o.ename ? ':' + o.ename : '')) })));
  console.log('kernel:', kname, 'seconds:', ((Date.now() - t0) / 1000).toFixed(1));
  console.log(JSON.stringify(info));
  await page.screenshot({ path: shot, fullPage: true });
  await browser.close();
})().catch(e => { console.error(e); process.exit(1); });
