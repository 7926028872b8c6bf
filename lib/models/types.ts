/** What every denoising model offers the trainer, the checkpoint and the samplers. */
import type * as tf from '@tensorflow/tfjs';
import type { ApplyOptions } from '../nn/blocks';
import type { ParamStore } from '../nn/params';

import type { PredictionType } from '../param';

/** What the network's output means (ε, x0 or v); the losses and samplers convert between them (lib/param.ts). */
export type { PredictionType } from '../param';
export { PREDICTION_TYPES } from '../param';

export interface SummaryRow {
  /** Dotted name of the layer / block. */
  name: string;
  /** Output shape without the batch dimension. */
  outputShape: number[];
  params: number;
}

export interface DiffusionModel<C = unknown> {
  readonly config: C;
  readonly params: ParamStore;
  readonly predictionType: PredictionType;
  /** Classes the model was conditioned on (0 = unconditional); the null class is this number. */
  readonly numClasses: number;
  /** x [B, …], t int32 [B] in 0 … T−1, classes int32 [B] (omitted → null class) → a tensor shaped like x. */
  apply(x: tf.Tensor, t: tf.Tensor1D, classes?: tf.Tensor1D, opts?: ApplyOptions): tf.Tensor;
  paramCount(): number;
  summary(): SummaryRow[];
  dispose(): void;
}

/** Sum of the sizes of the parameters whose names start with `prefix.` (or equal it). */
export function countUnder(params: ParamStore, prefix: string): number {
  let n = 0;
  for (const [k, v] of params.entries()) if (k === prefix || k.startsWith(`${prefix}.`)) n += v.size;
  return n;
}

/** A fixed-width text table of a summary, with the total. */
export function formatSummary(rows: SummaryRow[]): string {
  const w = Math.max(5, ...rows.map((r) => r.name.length));
  const lines = rows.map((r) => `${r.name.padEnd(w)}  ${`[${r.outputShape.join(', ')}]`.padEnd(16)} ${String(r.params).padStart(9)}`);
  const total = rows.reduce((s, r) => s + r.params, 0);
  return [`${'layer'.padEnd(w)}  ${'output'.padEnd(16)} ${'params'.padStart(9)}`, ...lines, `${'total'.padEnd(w)}  ${''.padEnd(16)} ${String(total).padStart(9)}`].join('\n');
}
