/** Model configs and a factory that builds either model from its (checkpointed) config. */
import { InvalidArgumentError } from '../errors';
import { MlpDenoiser, type MlpConfig } from './mlp';
import type { DiffusionModel } from './types';
import { UNet, type UNetConfig } from './unet';

export * from './types';
export { MlpDenoiser, type MlpConfig, validateMlpConfig } from './mlp';
export { UNet, type UNetConfig, REFERENCE_UNET, validateUNetConfig } from './unet';
// The baselines of issue 14 ("why diffusion?"): not denoisers, so not in ModelConfig / createModel.
export * from './vae';
export * from './gan';
export { type StepOptimizer } from './baseline-common';

export type ModelConfig = UNetConfig | MlpConfig;

export function createModel(config: ModelConfig): DiffusionModel<ModelConfig> {
  const kind = (config as { kind?: unknown })?.kind;
  if (kind === 'unet') return new UNet(config as UNetConfig);
  if (kind === 'mlp') return new MlpDenoiser(config as MlpConfig);
  throw new InvalidArgumentError(`model config: kind must be 'unet' or 'mlp', got ${JSON.stringify(kind)}`);
}
