/**
 * Exercises of notebook 08 · Class-conditional U-Net and classifier-free guidance. References: lib/nn/embedding.ts
 * (classEmbedding, with the null class as the table's last row) and lib/samplers/guidance.ts (applyGuidance).
 */
import * as tf from '@tensorflow/tfjs';
import { classEmbedding, type ClassEmbeddingParams } from '../nn/embedding';
import { applyGuidance } from '../samplers/guidance';
import type { CheckCase, ExerciseSpec, Value } from './types';

const asT = (v: Value) => v as tf.Tensor;

// ------------------------------------------------------------------------------------------------ 08-class-embedding

/** lib's lookup on a plain table tensor (it only reads it; no variable is created). */
function classEmbedRef(table: Value, classes: Value): Value {
  const t = table as tf.Tensor2D;
  const p = { table: t, numClasses: t.shape[0] - 1, embDim: t.shape[1] } as unknown as ClassEmbeddingParams;
  return classEmbedding(p, classes as tf.Tensor1D);
}

export const classEmbeddingSpec: ExerciseSpec = {
  id: '08-class-embedding',
  notebook: '08-conditional-guidance',
  functionName: 'classEmbed',
  title: 'Class labels to embedding vectors (with the null class)',
  cases(seed: number): CheckCase[] {
    const table = (k: number, rows: number, dim: number) => tf.randomNormal([rows, dim], 0, 1, 'float32', seed * 100 + k);
    return [
      { name: 'digits 3, 0, 9, 3 (10 classes + null)', args: [table(1, 11, 6), tf.tensor1d([3, 0, 9, 3], 'int32')] },
      { name: 'the null class 10 (“no label”)', args: [table(2, 11, 4), tf.tensor1d([10, 2, 10], 'int32')] },
      { name: '3 classes + null, embDim 8', args: [table(3, 4, 8), tf.tensor1d([0, 1, 2, 3, 1], 'int32')] },
    ];
  },
  reference: classEmbedRef,
  tolerance: { atol: 1e-6, rtol: 1e-6 },
  hint: 'Row c of the table is the embedding of class c; the table has numClasses + 1 rows and its LAST row (index numClasses) is the null class. Return one row per label, in the order of `classes`: shape [B, embDim].',
  wrong: {
    shiftedByOne: (table, classes) => tf.tidy(() => {
      const rows = asT(table).shape[0];
      return tf.gather(asT(table), tf.minimum(tf.add(asT(classes), 1), rows - 1));
    }),
    nullRowDropped: (table, classes) => tf.tidy(() => {
      const rows = asT(table).shape[0];
      const oneHot = tf.cast(tf.oneHot(tf.cast(asT(classes), 'int32'), rows - 1), 'float32');
      return tf.matMul(oneHot, tf.slice(asT(table), [0, 0], [rows - 1, -1]));
    }),
  },
};

// ------------------------------------------------------------------------------------------------ 08-cfg

export const cfgSpec: ExerciseSpec = {
  id: '08-cfg',
  notebook: '08-conditional-guidance',
  functionName: 'guide',
  title: 'The classifier-free guidance combination',
  cases(seed: number): CheckCase[] {
    const e = (k: number) => tf.randomNormal([2, 4, 4, 1], 0, 1, 'float32', seed * 100 + k);
    return [0, 1, 3, 7.5].map((w, i) => ({
      name: `w = ${w}${w === 0 ? ' (unconditional)' : w === 1 ? ' (plain conditional)' : ' (guided)'}`,
      args: [e(2 * i + 1), e(2 * i + 2), w],
    }));
  },
  reference: (cond, uncond, w) => applyGuidance(asT(cond), asT(uncond), w as number),
  tolerance: { atol: 1e-5, rtol: 1e-5 },
  hint: 'ε = ε_u + w·(ε_c − ε_u): start from the UNconditional prediction and move w times along the direction that the class adds. w = 0 gives ε_u, w = 1 gives ε_c.',
  wrong: {
    wrongSign: (c, u, w) => tf.tidy(() => tf.sub(asT(u), tf.mul(tf.sub(asT(c), asT(u)), w as number))),
    fromConditional: (c, u, w) => applyGuidance(asT(u), asT(c), w as number),
    otherConvention: (c, u, w) => tf.tidy(() => tf.sub(tf.mul(asT(c), 1 + (w as number)), tf.mul(asT(u), w as number))),
  },
};
