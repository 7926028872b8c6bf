/** Data sets of the course: MNIST digits (cached under datasets/cache) and seeded toy 2-D sets. */
export * from './mnist';
export * from './toy2d';
