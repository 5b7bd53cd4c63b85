/**
 * @kiln/onnx: ONNX export of any Kiln model, browser-safe (writing files is in '@kiln/onnx/node'),
 * and reading an .onnx file back as plain data and typed arrays.
 * @packageDocumentation
 */
export { exportOnnx, SUPPORTED_OPSETS, type ExportOnnxOptions } from './export.js';
export { readOnnx, onnxInitializers, type OnnxModel, type OnnxInitializer } from './read.js';
export type { ModelProtoData, GraphProtoData, OpsetImportData, NodeProtoData, TensorProtoData, Int64Value, AttributeProtoData, ValueInfoData } from './proto/codec.js';
export { loadOnnxWeights, modulePathOfNode, type LoadOnnxWeightsOptions } from './load.js';
