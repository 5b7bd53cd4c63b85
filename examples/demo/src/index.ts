/**
 * @kiln/demo — `npm run demo`: the seed's whole ResNet18 workflow on
 * Fashion-MNIST (pretraining, transfer learning, features, pruning, int8,
 * ONNX, timing) with a report of charts. The command line is `main.ts`;
 * {@link runDemo} runs it in-process (the tests do).
 *
 * @packageDocumentation
 */
export { runDemo, pretrainBackbone, type DemoRun } from './run.js';
export { resolveOptions, defaultCacheDir, DemoError, DEFAULTS, QUICK, type DemoOptions, type ResolvedOptions } from './options.js';
export { consoleIO, memoryIO, type DemoIO, type Progress } from './progress.js';
export type { DemoResult, VariantRow, TimingProfile, SkippedStage, TrainingResult } from './results.js';
export type { EpochRecord } from './train-loop.js';
export { accuracyBars, type AccuracyBar } from './report/bars.js';
export { parseIdx, type IdxArray } from './data/idx.js';
export { loadFashionMnist, resolveDataDir, selectByClass, FASHION_CLASSES, EMBEDDED_FASHION_MNIST, DEBIAN_FASHION_MNIST, type FashionMnist, type FashionSplit } from './data/fashion-mnist.js';
export { savePth } from './io/save-pth.js';
export { SOURCE_CLASSES, TARGET_CLASSES } from './context.js';
