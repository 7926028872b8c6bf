/**
 * Small layers over explicit parameters, for the course's models (tf.layers has no GroupNorm or attention):
 *   params     ParamStore — the named, seeded collection of variables (checkpoints, EMA, counts, summaries)
 *   layers     dense, conv2d (+bias), groupNorm, silu, dropout
 *   embedding  sinusoidal timestep embedding + MLP, class embedding with a null class
 *   blocks     ResBlock (with embedding bias), self-attention, stride-2 down, nearest ×2 + conv up
 * Each layer is a pair: createX(store, name, …) makes its parameters, x(params, input) applies it.
 */
export * from './params';
export * from './layers';
export * from './embedding';
export * from './blocks';
