/**
 * node -r ts-node/register scripts/bench-webgpu-host.ts [--gpu] [--batches 64,256] [--models reference]
 *        [--rounds N] [--steps K] [--settings submit-15,submit-64] [--json FILE]
 *
 * Where the host time of a webgpu training step goes, and what tfjs' submit batching changes, measured in ONE process on one
 * device, settings interleaved round by round (so drift of a shared machine falls on every setting alike):
 *   queued     K training steps queued back to back (Trainer.queueStep: no read), then one read: the throughput of
 *              lib/train's fit, which reads losses in batches
 *   read-each  K steps each ending in a read (Trainer.trainStep): what `npm run bench` times (PyTorch's row too)
 *   forward    K forward passes at the batch, one read at the end
 * Settings (--settings, default submit-15,submit-64): submit-N sets tfjs' WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE = N, the
 * dispatches recorded before one queue.submit (tfjs' default: 15). Measured on an H200 (docs/benchmarks.md, "WebGPU on
 * a GPU"): 15, 64 and 256 equal within the noise, so lib keeps tfjs' default.
 * Once per batch: the GPU time of a step and of a forward pass (tf.profile; timestamp queries need
 * DIFFUSION_WEBGPU_PROFILE=1), and where the host's time goes in queued steps (V8's sampling profiler, self time).
 * Per step it also reports the host CPU time (process.cpuUsage: the main thread plus Dawn's and the driver's threads).
 * Without --gpu the backend is FORCED (Mesa llvmpipe here: CPU figures, a dry run); --gpu needs a real GPU adapter.
 */
import * as fs from 'node:fs';
import * as inspector from 'node:inspector';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../lib/errors';
import { createModel } from '../lib/models';
import { loadWebGpu } from '../lib/backend/webgpu';
import { initBackend } from '../lib/backend';
import { makeSchedule } from '../lib/train/run-config';
import { DEFAULT_TRAIN, Trainer } from '../lib/train/trainer';
import { benchModels, syntheticBatch } from './bench-models';
import { ArgList } from './cli-args';
import { countDispatches } from '../test/backend/webgpu-cases';

interface Args { gpu: boolean; batches: number[]; models: string[]; rounds: number; steps: number; settings: string[]; json?: string }

function parseArgs(argv: string[]): Args {
  const a: Args = { gpu: false, batches: [64, 256], models: ['reference'], rounds: 5, steps: 10, settings: ['submit-15', 'submit-64'] };
  const args = new ArgList(argv);
  for (let k = args.next(); k !== undefined; k = args.next()) {
    if (k === '--gpu') a.gpu = true;
    else if (k === '--batches') a.batches = args.value(k).split(',').map(Number);
    else if (k === '--models') a.models = args.value(k).split(',');
    else if (k === '--rounds') a.rounds = Number(args.value(k));
    else if (k === '--steps') a.steps = Number(args.value(k));
    else if (k === '--settings') a.settings = args.value(k).split(',');
    else if (k === '--json') a.json = args.value(k);
    else throw new InvalidArgumentError(`unknown option '${k}'; expected --gpu, --batches a,b, --models a,b, --rounds N, --steps K, --settings a,b, --json FILE`);
  }
  const posInt = (n: number) => Number.isInteger(n) && n > 0;
  if (!a.batches.every(posInt) || !posInt(a.rounds) || !posInt(a.steps)) throw new InvalidArgumentError('--batches, --rounds and --steps must be positive integers');
  for (const s of a.settings) settingsFor(s); // named error for a bad one, before any work
  return a;
}

const SUBMIT_FLAG = 'WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE';

/** The submit batch a setting names (submit-N). */
function settingsFor(name: string): number {
  const m = /^submit-(\d+)$/.exec(name);
  if (m && Number(m[1]) > 0) return Number(m[1]);
  throw new InvalidArgumentError(`unknown setting '${name}'; expected submit-N (N > 0 dispatches per queue.submit)`);
}

const applySetting = (name: string) => tf.env().set(SUBMIT_FLAG, settingsFor(name));

/** Summed kernel time of one call of f (divided by `per`: calls inside f) from tf.profile. */
async function gpuMs(f: () => Promise<unknown>, per = 1): Promise<{ ms: number; kernels: number }> {
  const info = await tf.profile(async () => { await f(); });
  let ms = 0;
  for (const k of info.kernels) ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
  return { ms: ms / per, kernels: Math.round(info.kernels.length / per) };
}

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }

/** Self time per function while f runs, per call (`per` calls inside f): the 20 largest, and the total. */
async function hostProfile(f: () => Promise<void>, per: number): Promise<{ totalMs: number; top: Array<{ fn: string; ms: number }> }> {
  const session = new inspector.Session();
  session.connect();
  const post = (method: string, params?: object) => new Promise<any>((ok, bad) => session.post(method, params ?? {}, (e, r) => (e ? bad(e) : ok(r))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 100 });
  await post('Profiler.start');
  await f();
  const { profile } = await post('Profiler.stop') as { profile: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] } };
  session.disconnect();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (id: number): string => {
    const cf = byId.get(id)!.callFrame;
    return `${cf.functionName || '(anonymous)'}${cf.url ? ` ${cf.url.split('/').pop()}:${cf.lineNumber}` : ''}`;
  };
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const cf = byId.get(id)!.callFrame;
    // a native function (Dawn's binding: no script URL) is named by the script function that called it
    const p = parent.get(id);
    const fn = !cf.url && p !== undefined && !cf.functionName.startsWith('(') ? `${label(id)} ← ${label(p)}`
      : !cf.url && p !== undefined && cf.functionName === '' ? `[native] ← ${label(p)}` : label(id);
    const us = profile.timeDeltas[i] ?? 0;
    self.set(fn, (self.get(fn) ?? 0) + us);
    total += us;
  });
  const top = [...self.entries()].sort((p, q) => q[1] - p[1]).slice(0, 20).map(([fn, us]) => ({ fn, ms: us / 1000 / per }));
  console.log(`host profile, submit every 15 dispatches, per queued step: ${(total / 1000 / per).toFixed(1)} ms sampled; largest self times:`);
  for (const r of top) console.log(`  ${r.ms.toFixed(2).padStart(7)} ms  ${r.fn}`);
  return { totalMs: total / 1000 / per, top };
}

const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];

async function timed(f: () => Promise<void>): Promise<{ ms: number; cpuMs: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await f();
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { ms, cpuMs: (c.user + c.system) / 1000 };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const started = await loadWebGpu({ forced: !args.gpu });
  const line = (await initBackend({ prefer: 'webgpu', quiet: true })).line;
  console.log(`${line}\nwebgpu: ${started.detail}`);
  const results: Array<Record<string, unknown>> = [];
  for (const bm of benchModels(args.models).models) {
    const { name, model: cfg } = bm;
    const schedule = makeSchedule(bm.schedule);
    for (const batch of args.batches) {
      const model = createModel(cfg);
      const trainer = new Trainer(model, schedule, { ...DEFAULT_TRAIN, steps: 1_000_000, warmupSteps: 0, checkpointEvery: 0 });
      const x = tf.randomNormal([batch, 28, 28, 1], 0, 1, 'float32', 7);
      const t = tf.tensor1d(Array.from({ length: batch }, (_, i) => (i * 37) % 1000), 'int32');
      const c = tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 10), 'int32');
      let step = 0;
      const queued = async () => {
        for (let s = 0; s < args.steps; s++) trainer.queueStep(syntheticBatch(cfg, batch, step++));
        await trainer.trainStep(syntheticBatch(cfg, batch, step++)); // one more step and the read that drains the queue
      };
      const readEach = async () => { for (let s = 0; s < args.steps; s++) await trainer.trainStep(syntheticBatch(cfg, batch, step++)); };
      const forward = async () => {
        let last: tf.Tensor | undefined;
        for (let s = 0; s < args.steps; s++) { last?.dispose(); last = tf.tidy(() => model.apply(x, t, c)); }
        await last!.data();
        last!.dispose();
      };
      const parts: Array<[string, () => Promise<void>, number]> = [['queued', queued, args.steps + 1], ['read-each', readEach, args.steps], ['forward', forward, args.steps]];
      // warm-up: every pipeline compiled under every setting
      for (const s of args.settings) { applySetting(s); for (const [, f] of parts) await f(); }
      const dispatches = countDispatches(() => trainer.queueStep(syntheticBatch(cfg, batch, step++))).dispatches;
      await trainer.trainStep(syntheticBatch(cfg, batch, step++));
      // GPU time (timestamp queries: DIFFUSION_WEBGPU_PROFILE=1, else 0) of one training step and one forward pass
      const gpu = { step: await gpuMs(() => trainer.trainStep(syntheticBatch(cfg, batch, step++))), forward: await gpuMs(forward, args.steps) };
      console.log(`${name} B=${batch}: GPU time (tf.profile) per training step ${gpu.step.ms.toFixed(1)} ms over ${gpu.step.kernels} kernels; `
        + `per forward ${gpu.forward.ms.toFixed(1)} ms`);
      // where the host's time goes in queued steps under tfjs' default (V8's sampling profiler, self time)
      tf.env().set(SUBMIT_FLAG, 15);
      const host = await hostProfile(queued, args.steps + 1);
      const samples = new Map<string, { ms: number[]; cpuMs: number[] }>();
      for (let r = 0; r < args.rounds; r++) {
        for (const s of args.settings) {
          applySetting(s);
          for (const [part, f, n] of parts) {
            const m = await timed(f);
            const key = `${s}|${part}`;
            const e = samples.get(key) ?? { ms: [], cpuMs: [] };
            e.ms.push(m.ms / n);
            e.cpuMs.push(m.cpuMs / n);
            samples.set(key, e);
          }
        }
      }
      const base = new Map<string, number>();
      for (const s of args.settings) {
        for (const [part] of parts) {
          const e = samples.get(`${s}|${part}`)!;
          const ms = median(e.ms);
          if (s === args.settings[0]) base.set(part, ms);
          const row = { model: name, batch, setting: s, submitBatch: settingsFor(s), part, msPerCall: ms, cpuMsPerCall: median(e.cpuMs), all: e.ms, dispatchesPerStep: dispatches, speedupVsFirst: base.get(part)! / ms };
          results.push(row);
          console.log(`${name.padEnd(10)} B=${String(batch).padEnd(4)} ${s.padEnd(10)} ${part.padEnd(10)} ${ms.toFixed(1).padStart(7)} ms/call  host cpu ${median(e.cpuMs).toFixed(1).padStart(7)} ms  `
            + `${(base.get(part)! / ms).toFixed(2)}× vs ${args.settings[0]}  (${args.rounds} rounds of ${args.steps}; ${dispatches} dispatches per step)`);
        }
      }
      results.push({ model: name, batch, gpuStepMs: gpu.step.ms, gpuStepKernels: gpu.step.kernels, gpuForwardMs: gpu.forward.ms, hostProfile: host });
      tf.dispose([x, t, c]);
      trainer.dispose();
      model.dispose();
    }
  }
  tf.env().set(SUBMIT_FLAG, 15);
  if (args.json) fs.writeFileSync(args.json, JSON.stringify({ date: new Date().toISOString(), backend: line, rounds: args.rounds, steps: args.steps, results }, null, 1));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.stack ?? err.message : err);
  process.exit(1);
});
