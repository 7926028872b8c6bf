/** Data sets of the course: MNIST and Fashion-MNIST (cached under datasets/cache) and seeded toy 2-D sets. */
export * from './datasets';
export { clearMnistMemo, loadMnist } from './mnist';
export type { MnistBatch, MnistSplit } from './mnist';
export * from './toy2d';
