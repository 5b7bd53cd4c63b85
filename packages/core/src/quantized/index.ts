export { QTensor, QDTYPES, intDtypeOf, qRange, isQTensor, checkQDtype, type QDType, type QScheme, type QParams } from './qtensor.js';
export { quantizePerTensor, quantizePerChannel, dequantize, invScale, quantizeInts } from './quantize.js';
export { quantizedMatmul, type QuantizedMatmulOptions } from './qmatmul.js';
export { quantizedConv2d, quantizedConvOverride, packConvWeight, channelsLast, fromChannelsLast, type QConvGeometry, type QConvWeight } from './qconv.js';
export { quantizeBias, requantMultipliers, biasScales } from './requant.js';
