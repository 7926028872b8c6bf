/**
 * Samplers: DDPM, DDIM, classifier-free guidance, Langevin, and the few-step solvers DPM-Solver++(2M)
 * (dpm-solver.ts: multistep 2nd order in x̂0 form, 1 model call per step) and Euler / Heun on Karras σ spacing (karras.ts:
 * Heun is 2nd order with 2N − 1 model calls in N steps; results and progress report `modelCalls` / `calls`); named.ts
 * picks one by name ('ddpm' | 'ddim' | 'dpm++2m' | 'euler' | 'heun') and converts model calls ↔ steps.
 */
export * from './types';
export * from './timesteps';
export { BaseScheduler, type SchedulerConfig } from './scheduler';
export * from './ddpm';
export * from './ddim';
export * from './dpm-solver';
export * from './karras';
export * from './guidance';
export * from './langevin';
export * from './named';
export { allFinite, assertFinite, DEFAULT_CHECK_EVERY } from './loop';
