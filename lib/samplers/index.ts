/** Samplers: DDPM, DDIM, classifier-free guidance, annealed Langevin. */
export * from './types';
export * from './timesteps';
export { BaseScheduler, type SchedulerConfig } from './scheduler';
export * from './ddpm';
export * from './ddim';
export * from './guidance';
export * from './langevin';
export { allFinite, assertFinite, DEFAULT_CHECK_EVERY } from './loop';
