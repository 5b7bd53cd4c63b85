export { quantizeDynamic, dynamicLinearFromFloat, type QuantizeDynamicOptions, type ModuleClass } from './quantize-dynamic.js';
export { DynamicQuantizedLinear } from './dynamic-linear.js';
export { LinearPackedParams, type WeightQParams } from './packed-params.js';
export {
  ObserverBase,
  MinMaxObserver,
  MovingAverageMinMaxObserver,
  PerChannelMinMaxObserver,
  type ObserverOptions,
  type ObserverQScheme,
  type HostQParams,
} from './observer.js';
export { HistogramObserver, type HistogramObserverOptions, type HistogramHostState } from './observer-histogram.js';
export { chooseQuantizationParams, calculateQParams, quantRange, SMALL_SCALE_THRESHOLD, FLOAT32_EPS, type TensorQParams, type DynamicQParams } from './qparams.js';
export { sizeReport, formatSizeReport, stateDictBytes, type SizeRow } from './size-report.js';
export { copyModuleTree } from './clone.js';
export * from './static/index.js';
