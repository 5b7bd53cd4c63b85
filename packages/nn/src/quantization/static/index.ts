export { QuantStub, DeQuantStub, FloatFunctional, Quantize, DeQuantize } from './stubs.js';
export { fuseModules, fuseConvBn, ConvReLU2d, type FuseOptions } from './fuse.js';
export { prepare, convert, minMaxQConfig, histogramQConfig, onednnQConfig, getDefaultQConfig, type QEngine, type QConfig, type PrepareOptions } from './flow.js';
export { QuantizedConv2d, QuantizedLinear, QFunctional, QuantizedPool2d, QuantizedFlatten, type QuantizedWeight } from './qmodules.js';
