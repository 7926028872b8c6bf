/**
 * A small MLP denoiser for 2-D (or any low-dimensional) data, for the toy notebooks:
 *   emb = timeMLP(sinusoid(t)) [+ class embedding];  h = dense_in(x);
 *   repeat `layers` times: h = SiLU(dense(h) + dense(emb));   out = dense_out(h)
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../errors';
import { classEmbedding, type ClassEmbeddingParams, createClassEmbedding, createTimeEmbedding, timeEmbedding, type TimeEmbeddingParams } from '../nn/embedding';
import { createDense, dense, type DenseParams, silu } from '../nn/layers';
import { ParamStore } from '../nn/params';
import { countUnder, type DiffusionModel, PREDICTION_TYPES, type PredictionType, type SummaryRow } from './types';

export interface MlpConfig {
  kind: 'mlp';
  /** Data dimension (2 for the toy sets). */
  dim: number;
  hidden: number;
  layers: number;
  /** Width of the time (+ class) embedding; the sinusoid has the same width. */
  embDim: number;
  numClasses?: number;
  predictionType: PredictionType;
  seed: number;
}

export function validateMlpConfig(c: MlpConfig): void {
  const bad = (msg: string) => { throw new InvalidArgumentError(`MLP config: ${msg}`); };
  if (c.kind !== 'mlp') bad(`kind must be 'mlp', got '${c.kind}'`);
  for (const k of ['dim', 'hidden', 'layers', 'embDim'] as const) {
    if (!(Number.isInteger(c[k]) && c[k] > 0)) bad(`${k} must be a positive integer, got ${c[k]}`);
  }
  if (c.embDim % 2 !== 0) bad(`embDim must be even (sin and cos halves), got ${c.embDim}`);
  if (c.numClasses !== undefined && !(Number.isInteger(c.numClasses) && c.numClasses >= 0)) bad(`numClasses must be ≥ 0, got ${c.numClasses}`);
  if (!PREDICTION_TYPES.includes(c.predictionType)) bad(`predictionType must be one of ${PREDICTION_TYPES.join('|')}, got '${c.predictionType}'`);
  if (!Number.isInteger(c.seed)) bad(`seed must be an integer, got ${c.seed}`);
}

export class MlpDenoiser implements DiffusionModel<MlpConfig> {
  readonly params: ParamStore;
  readonly predictionType: PredictionType;
  readonly numClasses: number;
  private readonly time: TimeEmbeddingParams;
  private readonly classEmb?: ClassEmbeddingParams;
  private readonly input: DenseParams;
  private readonly hidden: { fc: DenseParams; emb: DenseParams }[] = [];
  private readonly output: DenseParams;

  constructor(readonly config: MlpConfig) {
    validateMlpConfig(config);
    const c = config;
    const s = (this.params = new ParamStore(c.seed));
    this.predictionType = c.predictionType;
    this.numClasses = c.numClasses ?? 0;
    this.time = createTimeEmbedding(s, 'time', c.embDim, c.embDim);
    if (this.numClasses > 0) this.classEmb = createClassEmbedding(s, 'class', this.numClasses, c.embDim);
    this.input = createDense(s, 'input', c.dim, c.hidden);
    for (let l = 0; l < c.layers; l++) {
      this.hidden.push({ fc: createDense(s, `hidden.${l}.fc`, c.hidden, c.hidden), emb: createDense(s, `hidden.${l}.emb`, c.embDim, c.hidden) });
    }
    this.output = createDense(s, 'output', c.hidden, c.dim);
  }

  apply(x: tf.Tensor, t: tf.Tensor1D, classes?: tf.Tensor1D): tf.Tensor2D {
    const c = this.config;
    if (x.rank !== 2 || x.shape[1] !== c.dim) throw new ShapeMismatchError(`MLP: x must be [B, ${c.dim}], got [${x.shape}]`);
    if (t.rank !== 1 || t.shape[0] !== x.shape[0]) throw new ShapeMismatchError(`MLP: t must be [${x.shape[0]}], got [${t.shape}]`);
    if (classes && !this.classEmb) throw new InvalidArgumentError('MLP: classes given to an unconditional model (numClasses = 0)');
    return tf.tidy(() => {
      let emb = timeEmbedding(this.time, t);
      if (this.classEmb) {
        const labels = classes ?? (tf.fill([x.shape[0]], this.numClasses, 'int32') as tf.Tensor1D);
        emb = tf.add(emb, classEmbedding(this.classEmb, labels));
      }
      let h = dense(this.input, x as tf.Tensor2D);
      for (const layer of this.hidden) h = silu(tf.add(dense(layer.fc, h), dense(layer.emb, emb)));
      return dense(this.output, h);
    });
  }

  paramCount(): number {
    return this.params.count();
  }

  summary(): SummaryRow[] {
    const c = this.config;
    const rows: SummaryRow[] = [{ name: 'time', outputShape: [c.embDim], params: countUnder(this.params, 'time') }];
    if (this.classEmb) rows.push({ name: 'class', outputShape: [c.embDim], params: countUnder(this.params, 'class') });
    rows.push({ name: 'input', outputShape: [c.hidden], params: countUnder(this.params, 'input') });
    this.hidden.forEach((_, l) => rows.push({ name: `hidden.${l}`, outputShape: [c.hidden], params: countUnder(this.params, `hidden.${l}`) }));
    rows.push({ name: 'output', outputShape: [c.dim], params: countUnder(this.params, 'output') });
    return rows;
  }

  dispose(): void {
    this.params.dispose();
  }
}
