/** What notebooks show: image grids and trajectory strips, vega-lite charts, progress bars (PNG / text), result tables (HTML + text). */
export * from './display';
export * from './grid';
export * from './strip';
export * from './charts';
export * from './progress';
export * from './table';
