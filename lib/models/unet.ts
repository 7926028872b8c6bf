/**
 * A U-Net denoiser for NHWC images, optionally class-conditional (classifier-free guidance via a null class).
 *
 *   x → convIn → [level i: blocksPerLevel × ResBlock (+ attention at the listed resolutions), keep a skip, stride-2 down]
 *     → midBlocks × ResBlock → [level i (reversed, from the second deepest): nearest ×2 + conv, concat skip,
 *       blocksPerLevel × ResBlock (+ attention)] → GroupNorm → SiLU → convOut
 *
 * The embedding (sinusoid(t) → MLP, plus a learned class embedding when conditional) enters every ResBlock, as a bias
 * or as a scale and shift of its second GroupNorm (config.embedding).
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeMismatchError } from '../errors';
import {
  attention, type AttentionParams, createAttention, createDownsample, createResBlock, createUpsample, downsample,
  EMBEDDING_MODES, type EmbeddingMode,
  resBlock, type ResBlockParams, upsample, type ApplyOptions,
} from '../nn/blocks';
import {
  classEmbedding, type ClassEmbeddingParams, createClassEmbedding, createTimeEmbedding, timeEmbedding,
  type TimeEmbeddingParams,
} from '../nn/embedding';
import { conv2d, type Conv2dParams, createConv2d, createGroupNorm, groupNormSilu, type GroupNormParams } from '../nn/layers';
import { ParamStore } from '../nn/params';
import { countUnder, type DiffusionModel, PREDICTION_TYPES, type PredictionType, type SummaryRow } from './types';

export interface UNetConfig {
  kind: 'unet';
  /** Height = width of the input (28 for MNIST); must be divisible by 2^(levels − 1). */
  imageSize: number;
  /** Image channels (1 for MNIST). */
  channels: number;
  /** Channels per level, e.g. [32, 64, 128]. */
  widths: number[];
  blocksPerLevel: number;
  /** Spatial sizes at which a self-attention follows each ResBlock, e.g. [7]. */
  attentionResolutions: number[];
  /** GroupNorm groups; must divide every channel count that is normalized. */
  groups: number;
  /** Width of the time (+ class) embedding. */
  embDim: number;
  /** Width of the sinusoidal code fed to the time MLP (default widths[0]). */
  timeSinDim?: number;
  /** ResBlocks at the bottom resolution after the last level (default 1). */
  midBlocks?: number;
  /** 0 or absent = unconditional; otherwise labels 0 … numClasses−1 plus the null class numClasses. */
  numClasses?: number;
  dropout?: number;
  /** How time and class enter each ResBlock (lib/nn/blocks.ts EmbeddingMode; default 'bias'). */
  embedding?: EmbeddingMode;
  predictionType: PredictionType;
  /** Seed of the initial weights. */
  seed: number;
}

/**
 * The benchmark's reference U-Net (issue 7): widths 32/64/128, one ResBlock per level, GroupNorm 8, attention at 7×7,
 * time + class embedding of width 128, nearest upsampling + conv — 1,180,513 parameters.
 */
export const REFERENCE_UNET: UNetConfig = {
  kind: 'unet', imageSize: 28, channels: 1, widths: [32, 64, 128], blocksPerLevel: 1, attentionResolutions: [7],
  groups: 8, embDim: 128, timeSinDim: 32, midBlocks: 1, numClasses: 10, dropout: 0, predictionType: 'epsilon', seed: 0,
};

interface Level { blocks: ResBlockParams[]; attns: (AttentionParams | undefined)[]; resolution: number }

export function validateUNetConfig(c: UNetConfig): void {
  const bad = (msg: string) => { throw new InvalidArgumentError(`U-Net config: ${msg}`); };
  if (c.kind !== 'unet') bad(`kind must be 'unet', got '${c.kind}'`);
  const posInt = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v > 0;
  if (!Array.isArray(c.widths) || c.widths.length < 1 || !c.widths.every(posInt)) bad(`widths must be positive integers, got ${JSON.stringify(c.widths)}`);
  for (const k of ['imageSize', 'channels', 'blocksPerLevel', 'groups', 'embDim'] as const) {
    if (!posInt(c[k])) bad(`${k} must be a positive integer, got ${c[k]}`);
  }
  const div = 2 ** (c.widths.length - 1);
  if (c.imageSize % div !== 0) bad(`imageSize ${c.imageSize} must be divisible by 2^(levels−1) = ${div}`);
  if (c.widths.some((w) => w % c.groups !== 0)) bad(`groups ${c.groups} must divide every width (${c.widths})`);
  const sin = c.timeSinDim ?? c.widths[0];
  if (!posInt(sin) || sin % 2 !== 0) bad(`timeSinDim must be an even positive integer, got ${sin}`);
  if (c.midBlocks !== undefined && !(Number.isInteger(c.midBlocks) && c.midBlocks >= 0)) bad(`midBlocks must be ≥ 0, got ${c.midBlocks}`);
  if (c.numClasses !== undefined && !(Number.isInteger(c.numClasses) && c.numClasses >= 0)) bad(`numClasses must be ≥ 0, got ${c.numClasses}`);
  if (c.dropout !== undefined && !(c.dropout >= 0 && c.dropout < 1)) bad(`dropout must be in [0, 1), got ${c.dropout}`);
  if (!PREDICTION_TYPES.includes(c.predictionType)) bad(`predictionType must be one of ${PREDICTION_TYPES.join('|')}, got '${c.predictionType}'`);
  if (c.embedding !== undefined && !EMBEDDING_MODES.includes(c.embedding)) {
    bad(`embedding must be one of ${EMBEDDING_MODES.map((m) => `'${m}'`).join(', ')}, got ${JSON.stringify(c.embedding)}`);
  }
  if (!Array.isArray(c.attentionResolutions)) bad('attentionResolutions must be an array of sizes');
  if (!Number.isInteger(c.seed)) bad(`seed must be an integer, got ${c.seed}`);
}

export class UNet implements DiffusionModel<UNetConfig> {
  readonly params: ParamStore;
  readonly predictionType: PredictionType;
  readonly numClasses: number;
  private readonly time: TimeEmbeddingParams;
  private readonly classEmb?: ClassEmbeddingParams;
  private readonly convIn: Conv2dParams;
  private readonly down: Level[] = [];
  private readonly downsamplers: Conv2dParams[] = [];
  private readonly mid: ResBlockParams[] = [];
  private readonly upsamplers: Conv2dParams[] = [];
  private readonly up: Level[] = [];
  private readonly normOut: GroupNormParams;
  private readonly convOut: Conv2dParams;
  private readonly rows: SummaryRow[] = [];

  constructor(readonly config: UNetConfig) {
    validateUNetConfig(config);
    const c = config;
    const s = (this.params = new ParamStore(c.seed));
    this.predictionType = c.predictionType;
    this.numClasses = c.numClasses ?? 0;
    const drop = c.dropout ?? 0;
    const mode = c.embedding ?? 'bias';
    const attnAt = new Set(c.attentionResolutions);
    const row = (name: string, shape: number[]) => this.rows.push({ name, outputShape: shape, params: countUnder(s, name) });

    this.time = createTimeEmbedding(s, 'time', c.timeSinDim ?? c.widths[0], c.embDim);
    row('time', [c.embDim]);
    if (this.numClasses > 0) {
      this.classEmb = createClassEmbedding(s, 'class', this.numClasses, c.embDim);
      row('class', [c.embDim]);
    }
    this.convIn = createConv2d(s, 'convIn', c.channels, c.widths[0]);
    row('convIn', [c.imageSize, c.imageSize, c.widths[0]]);

    let ch = c.widths[0];
    let res = c.imageSize;
    const skipCh: number[] = [];
    c.widths.forEach((w, i) => {
      const level: Level = { blocks: [], attns: [], resolution: res };
      for (let b = 0; b < c.blocksPerLevel; b++) {
        level.blocks.push(createResBlock(s, `down.${i}.res.${b}`, ch, w, c.embDim, c.groups, drop, mode));
        ch = w;
        row(`down.${i}.res.${b}`, [res, res, ch]);
        level.attns.push(attnAt.has(res) ? createAttention(s, `down.${i}.attn.${b}`, ch, c.groups) : undefined);
        if (attnAt.has(res)) row(`down.${i}.attn.${b}`, [res, res, ch]);
      }
      this.down.push(level);
      skipCh.push(ch);
      if (i < c.widths.length - 1) {
        this.downsamplers.push(createDownsample(s, `down.${i}.downsample`, ch));
        res /= 2;
        row(`down.${i}.downsample`, [res, res, ch]);
      }
    });
    for (let m = 0; m < (c.midBlocks ?? 1); m++) {
      this.mid.push(createResBlock(s, `mid.res.${m}`, ch, ch, c.embDim, c.groups, drop, mode));
      row(`mid.res.${m}`, [res, res, ch]);
    }
    for (let i = c.widths.length - 2; i >= 0; i--) {
      this.upsamplers.push(createUpsample(s, `up.${i}.upsample`, ch));
      res *= 2;
      row(`up.${i}.upsample`, [res, res, ch]);
      const level: Level = { blocks: [], attns: [], resolution: res };
      for (let b = 0; b < c.blocksPerLevel; b++) {
        const inCh = b === 0 ? ch + skipCh[i] : ch; // the skip is concatenated before the first block
        if ((inCh % c.groups) !== 0) throw new InvalidArgumentError(`U-Net config: groups ${c.groups} must divide ${inCh} (up.${i} input)`);
        level.blocks.push(createResBlock(s, `up.${i}.res.${b}`, inCh, c.widths[i], c.embDim, c.groups, drop, mode));
        ch = c.widths[i];
        row(`up.${i}.res.${b}`, [res, res, ch]);
        level.attns.push(attnAt.has(res) ? createAttention(s, `up.${i}.attn.${b}`, ch, c.groups) : undefined);
        if (attnAt.has(res)) row(`up.${i}.attn.${b}`, [res, res, ch]);
      }
      this.up.push(level);
    }
    this.normOut = createGroupNorm(s, 'normOut', ch, c.groups);
    this.convOut = createConv2d(s, 'convOut', ch, c.channels);
    this.rows.push({ name: 'out', outputShape: [c.imageSize, c.imageSize, c.channels], params: countUnder(s, 'normOut') + countUnder(s, 'convOut') });
  }

  /** The conditioning vector [B, embDim]: time embedding plus the class embedding (null class when classes is omitted). */
  embed(t: tf.Tensor1D, classes?: tf.Tensor1D): tf.Tensor2D {
    return tf.tidy(() => {
      const temb = timeEmbedding(this.time, t);
      if (!this.classEmb) return temb;
      const labels = classes ?? tf.fill([t.shape[0]], this.numClasses, 'int32') as tf.Tensor1D;
      return tf.add(temb, classEmbedding(this.classEmb, labels));
    });
  }

  apply(x: tf.Tensor, t: tf.Tensor1D, classes?: tf.Tensor1D, opts: ApplyOptions = {}): tf.Tensor4D {
    const c = this.config;
    if (x.rank !== 4 || x.shape[1] !== c.imageSize || x.shape[2] !== c.imageSize || x.shape[3] !== c.channels) {
      throw new ShapeMismatchError(`U-Net: x must be [B, ${c.imageSize}, ${c.imageSize}, ${c.channels}], got [${x.shape}]`);
    }
    const batch = x.shape[0];
    if (t.rank !== 1 || t.shape[0] !== batch) throw new ShapeMismatchError(`U-Net: t must be [${batch}], got [${t.shape}]`);
    if (classes && (classes.rank !== 1 || classes.shape[0] !== batch)) {
      throw new ShapeMismatchError(`U-Net: classes must be [${batch}], got [${classes.shape}]`);
    }
    if (classes && !this.classEmb) throw new InvalidArgumentError('U-Net: classes given to an unconditional model (numClasses = 0)');
    let blockIndex = 0;
    const blockOpts = (): ApplyOptions => ({ training: opts.training, seed: (opts.seed ?? 0) * 1009 + blockIndex++ });
    return tf.tidy(() => {
      const emb = this.embed(t, classes);
      let h = conv2d(this.convIn, x as tf.Tensor4D);
      const skips: tf.Tensor4D[] = [];
      this.down.forEach((level, i) => {
        level.blocks.forEach((block, b) => {
          h = resBlock(block, h, emb, blockOpts());
          const a = level.attns[b];
          if (a) h = attention(a, h);
        });
        skips.push(h);
        if (i < this.downsamplers.length) h = downsample(this.downsamplers[i], h);
      });
      for (const block of this.mid) h = resBlock(block, h, emb, blockOpts());
      this.up.forEach((level, j) => {
        const i = this.down.length - 2 - j;
        h = upsample(this.upsamplers[j], h);
        h = tf.concat([h, skips[i]], 3);
        level.blocks.forEach((block, b) => {
          h = resBlock(block, h, emb, blockOpts());
          const a = level.attns[b];
          if (a) h = attention(a, h);
        });
      });
      return conv2d(this.convOut, groupNormSilu(this.normOut, h));
    });
  }

  paramCount(): number {
    return this.params.count();
  }

  summary(): SummaryRow[] {
    return this.rows.map((r) => ({ ...r, outputShape: r.outputShape.slice() }));
  }

  dispose(): void {
    this.params.dispose();
  }
}
