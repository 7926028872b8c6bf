/**
 * Measuring sample quality: the digit classifier (classifier, classifier-io, train-classifier), the metrics
 * (conditional accuracy, classifier-feature FID and its real-vs-real floor), sampling + evaluation in one call
 * (evaluate), and the raw samples file that `npm run sample -- --raw` writes.
 */
export * from './classifier';
export * from './classifier-io';
export * from './train-classifier';
export * from './metrics';
export * from './linalg';
export * from './evaluate';
export * from './raw-samples';
