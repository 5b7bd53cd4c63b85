// ONNX's protobuf messages, encoded and decoded by protobufjs from the
// official onnx.proto (embedded in onnx-proto.ts): no hand-written wire code.
import protobuf from 'protobufjs';
import { FormatError } from '@kiln/core';
import { ONNX_PROTO } from './onnx-proto.js';

/** TensorProto.DataType values Kiln uses. */
export const OnnxDataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
} as const;

/** AttributeProto.AttributeType values. */
export const OnnxAttributeType = {
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  FLOATS: 6,
  INTS: 7,
} as const;

/** A TensorProto as plain data (raw little-endian bytes in `rawData`). */
export interface TensorProtoData {
  /** The tensor's name (an initializer's name is the graph value it feeds). */
  name: string;
  /** The tensor's shape. */
  dims: number[];
  /** Its element type, a TensorProto.DataType value (`OnnxDataType` lists those Kiln uses). */
  dataType: number;
  /** The elements as raw little-endian bytes (how Kiln's exporter writes every tensor). */
  rawData?: Uint8Array;
  /** The elements of a FLOAT tensor stored in the `float_data` field instead of `rawData`. */
  floatData?: number[];
  /** The elements of an INT32 (or narrower integer / BOOL / FLOAT16) tensor stored in `int32_data`. */
  int32Data?: number[];
  /** The elements of an INT64 tensor stored in `int64_data`: numbers, or protobufjs Long values. */
  int64Data?: (number | Int64Value)[];
}

/** An int64 protobufjs decoded as a Long rather than a number. */
export interface Int64Value {
  /** The value as a JavaScript number (exact up to 2^53). */
  toNumber(): number;
}

/** An AttributeProto as plain data. */
export interface AttributeProtoData {
  /** The attribute's name, e.g. `kernel_shape`. */
  name: string;
  /** Which field holds the value, an AttributeProto.AttributeType value (`OnnxAttributeType` lists them). */
  type: number;
  /** The value of an INT attribute. */
  i?: number;
  /** The value of a FLOAT attribute. */
  f?: number;
  /** The value of a STRING attribute, as bytes. */
  s?: Uint8Array;
  /** The value of a TENSOR attribute. */
  t?: TensorProtoData;
  /** The value of an INTS attribute. */
  ints?: number[];
  /** The value of a FLOATS attribute. */
  floats?: number[];
}

/** A NodeProto as plain data. */
export interface NodeProtoData {
  /** The node's name, unique within the graph. */
  name: string;
  /** The ONNX operator, e.g. `Conv`. */
  opType: string;
  /** The operator set's domain; absent or `''` for the default ONNX domain. */
  domain?: string;
  /** The names of the graph values the node reads, in the operator's input order. */
  input: string[];
  /** The names of the graph values the node writes. */
  output: string[];
  /** The node's attributes. */
  attribute: AttributeProtoData[];
}

/** A ValueInfoProto for a tensor: element type and dims (a number or a dim_param name). */
export interface ValueInfoData {
  /** The graph value's name. */
  name: string;
  /** Its element type, a TensorProto.DataType value (`OnnxDataType` lists those Kiln uses). */
  elemType: number;
  /** Its shape: a fixed size, or the name of a symbolic dimension such as `batch`. */
  dims: (number | string)[];
}

/** A ModelProto as plain data: what the exporter builds and the reader returns. */
export interface ModelProtoData {
  /** The ONNX IR version the file declares. */
  irVersion: number;
  /** The operator sets the graph uses. */
  opsetImports: OpsetImportData[];
  /** The name of the tool that wrote the file. */
  producerName: string;
  /** That tool's version. */
  producerVersion: string;
  /** The model's computation graph. */
  graph: GraphProtoData;
}

/** An OperatorSetIdProto: one operator set a model imports. */
export interface OpsetImportData {
  /** The operator set's domain; `''` for the default ONNX domain. */
  domain: string;
  /** The operator set's version (the opset number). */
  version: number;
}

/** A GraphProto as plain data. */
export interface GraphProtoData {
  /** The graph's name. */
  name: string;
  /** Its nodes, in topological order. */
  nodes: NodeProtoData[];
  /** Its constant tensors (weights and buffers). */
  initializers: TensorProtoData[];
  /** The values the caller feeds. */
  inputs: ValueInfoData[];
  /** The values the graph produces. */
  outputs: ValueInfoData[];
  /** Free-text documentation stored with the graph. */
  docString?: string;
}

let root: protobuf.Root | null = null;
function modelType(): protobuf.Type {
  root ??= protobuf.parse(ONNX_PROTO, { keepCase: true }).root;
  return root.lookupType('onnx.ModelProto');
}

function valueInfoToProto(v: ValueInfoData): Record<string, unknown> {
  return {
    name: v.name,
    type: {
      tensor_type: {
        elem_type: v.elemType,
        shape: { dim: v.dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

function tensorToProto(t: TensorProtoData): Record<string, unknown> {
  return {
    name: t.name,
    dims: t.dims,
    data_type: t.dataType,
    ...(t.rawData ? { raw_data: t.rawData } : {}),
    ...(t.floatData ? { float_data: t.floatData } : {}),
    ...(t.int32Data ? { int32_data: t.int32Data } : {}),
  };
}

function attributeToProto(a: AttributeProtoData): Record<string, unknown> {
  return { ...a, t: a.t ? tensorToProto(a.t) : undefined };
}

/** The bytes of an ONNX model file. */
export function encodeModel(m: ModelProtoData): Uint8Array {
  const type = modelType();
  const msg = type.fromObject({
    ir_version: m.irVersion,
    opset_import: m.opsetImports,
    producer_name: m.producerName,
    producer_version: m.producerVersion,
    graph: {
      name: m.graph.name,
      doc_string: m.graph.docString,
      node: m.graph.nodes.map((n) => ({ name: n.name, op_type: n.opType, domain: n.domain ?? '', input: n.input, output: n.output, attribute: n.attribute.map(attributeToProto) })),
      initializer: m.graph.initializers.map(tensorToProto),
      input: m.graph.inputs.map(valueInfoToProto),
      output: m.graph.outputs.map(valueInfoToProto),
    },
  });
  return type.encode(msg).finish();
}

const num = (v: unknown): number => (typeof v === 'number' ? v : Number((v as { toString(): string }).toString()));

/**
 * An ONNX model file as plain data (nodes, initializers, inputs, outputs).
 * @throws FormatError when the bytes are not an ONNX ModelProto.
 */
export function decodeModel(bytes: Uint8Array, source = 'the model'): ModelProtoData {
  let o: Record<string, any>;
  try {
    const type = modelType();
    o = type.toObject(type.decode(bytes), { defaults: true, arrays: true, bytes: Uint8Array as unknown as typeof String });
  } catch (err) {
    throw new FormatError('readOnnx', `${source} is not an ONNX model: ${(err as Error).message}`);
  }
  if (!o.graph) throw new FormatError('readOnnx', `${source} is not an ONNX model: it has no graph`);
  const tensor = (t: Record<string, any>): TensorProtoData => ({
    name: t.name,
    dims: (t.dims as unknown[]).map(num),
    dataType: t.data_type,
    rawData: t.raw_data?.length ? new Uint8Array(t.raw_data) : undefined,
    floatData: t.float_data?.length ? t.float_data : undefined,
    int32Data: t.int32_data?.length ? t.int32_data : undefined,
    int64Data: t.int64_data?.length ? t.int64_data.map(num) : undefined,
  });
  const info = (v: Record<string, any>): ValueInfoData => ({
    name: v.name,
    elemType: v.type?.tensor_type?.elem_type ?? 0,
    dims: (v.type?.tensor_type?.shape?.dim ?? []).map((d: Record<string, any>) => (d.dim_param ? d.dim_param : num(d.dim_value))),
  });
  const g = o.graph;
  return {
    irVersion: num(o.ir_version),
    opsetImports: o.opset_import.map((s: Record<string, any>) => ({ domain: s.domain, version: num(s.version) })),
    producerName: o.producer_name,
    producerVersion: o.producer_version,
    graph: {
      name: g.name,
      nodes: g.node.map((n: Record<string, any>) => ({
        name: n.name,
        opType: n.op_type,
        domain: n.domain,
        input: n.input,
        output: n.output,
        attribute: n.attribute.map((a: Record<string, any>) => ({ name: a.name, type: a.type, i: num(a.i), f: a.f, ints: a.ints.map(num), floats: a.floats, t: a.t ? tensor(a.t) : undefined })),
      })),
      initializers: g.initializer.map(tensor),
      inputs: g.input.map(info),
      outputs: g.output.map(info),
    },
  };
}
