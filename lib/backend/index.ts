// PLACEHOLDER until the backend module lands: picks wasm, else cpu. Replaced by lib/backend/select.ts work.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

export type BackendName = 'gpu' | 'node' | 'wasm' | 'cpu';
export interface BackendReport { name: BackendName; line: string; }
let report: BackendReport | undefined;

export async function initBackend(): Promise<BackendReport> {
  if (report) return report;
  const ok = await tf.setBackend('wasm');
  if (!ok) await tf.setBackend('cpu');
  await tf.ready();
  report = { name: ok ? 'wasm' : 'cpu', line: `backend: ${ok ? 'wasm' : 'cpu'}` };
  return report;
}
export { tf };
