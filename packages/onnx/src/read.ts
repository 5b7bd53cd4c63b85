// Reading an .onnx file back: its graph as plain data, and its initializers
// as typed arrays (to load weights that another exporter wrote).
import { FormatError, type DType, type TypedArray } from '@kiln/core';
import { decodeModel, OnnxDataType, type ModelProtoData, type TensorProtoData } from './proto/codec.js';

/** One initializer in Kiln's dtypes (int64 narrowed to int32, as Kiln's weight loaders do). */
export interface OnnxInitializer {
  /** The Kiln dtype the data is in. */
  dtype: DType;
  /** The tensor's shape. */
  shape: number[];
  /** The elements, row-major. */
  data: TypedArray;
}

/** A decoded model: the ModelProto as plain data. */
export type OnnxModel = ModelProtoData;

/**
 * Decodes the bytes of an .onnx file.
 * @throws FormatError when they are not an ONNX ModelProto.
 */
export function readOnnx(bytes: Uint8Array, source?: string): OnnxModel {
  return decodeModel(bytes, source);
}

function aligned(raw: Uint8Array): ArrayBuffer {
  return raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength) as ArrayBuffer;
}

function toKiln(t: TensorProtoData): OnnxInitializer {
  const shape = t.dims;
  const n = shape.reduce((a, b) => a * b, 1);
  const raw = t.rawData;
  let out: OnnxInitializer;
  switch (t.dataType) {
    case OnnxDataType.FLOAT:
      out = { dtype: 'float32', shape, data: raw ? new Float32Array(aligned(raw)) : Float32Array.from(t.floatData ?? []) };
      break;
    case OnnxDataType.INT32:
      out = { dtype: 'int32', shape, data: raw ? new Int32Array(aligned(raw)) : Int32Array.from(t.int32Data ?? []) };
      break;
    case OnnxDataType.INT64: {
      const src = raw ? Array.from(new BigInt64Array(aligned(raw)), Number) : (t.int64Data ?? []).map((v) => (typeof v === 'number' ? v : v.toNumber()));
      out = { dtype: 'int32', shape, data: Int32Array.from(src) };
      break;
    }
    case OnnxDataType.INT8:
      out = { dtype: 'int8', shape, data: raw ? new Int8Array(aligned(raw)) : Int8Array.from(t.int32Data ?? []) };
      break;
    case OnnxDataType.UINT8:
      out = { dtype: 'uint8', shape, data: raw ? new Uint8Array(aligned(raw)) : Uint8Array.from(t.int32Data ?? []) };
      break;
    default:
      throw new FormatError('onnxInitializers', `initializer '${t.name}' has ONNX data type ${t.dataType}, which Kiln does not read`);
  }
  if (out.data.length !== n) throw new FormatError('onnxInitializers', `initializer '${t.name}' has ${out.data.length} elements, its dims [${shape.join(', ')}] need ${n}`);
  return out;
}

/** The initializers of an .onnx file by name, in Kiln's dtypes. */
export function onnxInitializers(model: Uint8Array | OnnxModel): Map<string, OnnxInitializer> {
  const m = model instanceof Uint8Array ? readOnnx(model) : model;
  return new Map(m.graph.initializers.map((t) => [t.name, toKiln(t)]));
}
