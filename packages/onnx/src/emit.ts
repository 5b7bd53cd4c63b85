// Turns a recorded graph into ONNX's ModelProto: names values, emits each
// Kiln op through its mapping (ops/), collects initializers and reads their
// data from the device once at the end.
import { KilnError, type DType, type Tensor } from '@kiln/core';
import { modulePath, type GraphNode, type RecordedGraph, type Value } from './graph.js';
import { OnnxDataType, OnnxAttributeType, type AttributeProtoData, type ModelProtoData, type NodeProtoData, type TensorProtoData } from './proto/codec.js';
import { EMITTERS } from './ops/index.js';

/** An attribute value: an int, ints, a string, or a float / floats wrapped to tell them from ints. */
export type Attr = number | readonly number[] | string | { f: number } | { fs: readonly number[] };

/** A literal's element type: Kiln's dtypes plus ONNX's int64 for shapes and axes. */
export type LiteralType = DType | 'int64';

/** What an op mapping sees: the node's inputs as ONNX names, and ways to add nodes and constants. */
export interface EmitContext {
  readonly opset: number;
  readonly node: GraphNode;
  /** The ONNX name of tensor input `i` (a number becomes a scalar constant of `dtype`; null gives ''). */
  input(i: number, dtype?: DType): string;
  /** The ONNX name of a value. */
  value(v: Value): string;
  /** The name output `i` of the node must be written to. */
  out(i?: number): string;
  /** A new initializer from literal data. */
  constant(data: ArrayLike<number>, type: LiteralType, dims: readonly number[]): string;
  /** Adds an ONNX node; returns its output names (fresh ones unless `outputs` is given). */
  emit(opType: string, inputs: readonly string[], attrs?: Record<string, Attr | undefined>, outputs?: readonly string[]): string[];
  /** Throws a KilnError naming the Kiln op and the module it ran in. */
  fail(reason: string): never;
}

/** Maps one Kiln op to ONNX nodes. */
export type Emitter = (ctx: EmitContext, n: GraphNode) => void;

/** ONNX's element type for a Kiln dtype. */
export function onnxType(t: LiteralType): number {
  const m: Record<string, number> = { float32: OnnxDataType.FLOAT, int32: OnnxDataType.INT32, int8: OnnxDataType.INT8, uint8: OnnxDataType.UINT8, bool: OnnxDataType.BOOL, int64: OnnxDataType.INT64, float16: OnnxDataType.FLOAT16 };
  const v = m[t];
  if (v === undefined) throw new KilnError('exportOnnx', `dtype ${t} has no ONNX element type here`);
  return v;
}

function literalBytes(data: ArrayLike<number>, type: LiteralType): Uint8Array {
  const typed =
    type === 'int64' ? BigInt64Array.from(Array.from(data, (x) => BigInt(Math.trunc(x))))
    : type === 'float32' ? Float32Array.from(data)
    : type === 'int32' ? Int32Array.from(data)
    : type === 'int8' ? Int8Array.from(data)
    : Uint8Array.from(data);
  return new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
}

function attribute(name: string, v: Attr): AttributeProtoData {
  if (typeof v === 'number') return { name, type: OnnxAttributeType.INT, i: v };
  if (typeof v === 'string') return { name, type: OnnxAttributeType.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: OnnxAttributeType.INTS, ints: [...v] };
  if ('f' in (v as object)) return { name, type: OnnxAttributeType.FLOAT, f: (v as { f: number }).f };
  return { name, type: OnnxAttributeType.FLOATS, floats: [...(v as { fs: readonly number[] }).fs] };
}

/** What {@link emitGraph} needs: opset, names, the output dims to declare. */
export interface EmitOptions {
  opset: number;
  inputNames: string[];
  outputNames: string[];
  /** Per output, dim index to dim_param (on top of what the graph propagated). */
  outputDyn: Record<number, string>[];
  producerVersion: string;
  docString?: string;
}

const PARAM_FIRST_OPS: Record<string, string> = { conv2d: 'Conv', linear: 'Gemm', batchNorm: 'BatchNormalization', matmul: 'MatMul' };
const opHint = (op: string) => PARAM_FIRST_OPS[op] ?? `${op[0]!.toUpperCase()}${op.slice(1)}`;

/** The ModelProto of a recorded graph, with every initializer's data read from its device. */
export async function emitGraph(g: RecordedGraph, opts: EmitOptions): Promise<ModelProtoData> {
  const nodes: NodeProtoData[] = [];
  const initializers: { proto: TensorProtoData; tensor?: Tensor }[] = [];
  const names = new Map<Value, string>();
  const used = new Set<string>();
  const nodeNames = new Map<string, number>();
  let constants = 0;
  const unique = (base: string) => {
    let name = base;
    for (let k = 1; used.has(name); k++) name = `${base}_${k}`;
    used.add(name);
    return name;
  };
  g.inputs.forEach((v, i) => names.set(v, unique(opts.inputNames[i]!)));
  // Graph outputs produced by a node take the output names directly.
  const identityOutputs: [Value, string][] = [];
  g.outputs.forEach((v, i) => {
    const name = opts.outputNames[i]!;
    if (v.kind === 'node' && !names.has(v)) names.set(v, unique(name));
    else identityOutputs.push([v, name]);
  });

  let current: GraphNode | null = null;
  const valueName = (v: Value): string => {
    const have = names.get(v);
    if (have) return have;
    if (v.kind === 'node') throw new KilnError('exportOnnx', `internal: a value of shape [${v.shape.join(', ')}] is read before the op that makes it`);
    const name = unique(v.name ?? `onnx::${opHint(current?.op ?? 'Constant')}_${constants++}`);
    names.set(v, name);
    initializers.push({ proto: { name, dims: [...v.shape], dataType: onnxType(v.dtype) }, tensor: v.data });
    return name;
  };
  const nodeName = (n: GraphNode | null, opType: string) => {
    const prefix = n ? n.scopes.map((s) => `/${s.segment}`).join('') : '';
    const base = `${prefix}/${opType}`;
    const k = nodeNames.get(base) ?? 0;
    nodeNames.set(base, k + 1);
    return k === 0 ? base : `${base}_${k}`;
  };
  const emitNode = (n: GraphNode | null, opType: string, inputs: readonly string[], attrs: Record<string, Attr | undefined> = {}, outputs?: readonly string[]) => {
    const name = nodeName(n, opType);
    const outs = outputs ? [...outputs] : [unique(`${name}_output_0`)];
    nodes.push({
      name,
      opType,
      input: [...inputs],
      output: outs,
      attribute: Object.entries(attrs).filter((e): e is [string, Attr] => e[1] !== undefined).map(([k, v]) => attribute(k, v)),
    });
    return outs;
  };
  const constant = (data: ArrayLike<number>, type: LiteralType, dims: readonly number[]) => {
    const name = unique(`onnx::${opHint(current?.op ?? 'Constant')}_${constants++}`);
    initializers.push({ proto: { name, dims: [...dims], dataType: onnxType(type), rawData: literalBytes(data, type) } });
    return name;
  };

  for (const n of g.nodes) {
    current = n;
    const emitter = EMITTERS[n.op];
    const fail = (reason: string): never => {
      throw new KilnError('exportOnnx', `${n.op} in module '${modulePath(n)}': ${reason}`);
    };
    if (!emitter) fail(`Kiln op '${n.op}' has no ONNX mapping`);
    const ctx: EmitContext = {
      opset: opts.opset,
      node: n,
      input: (i, dtype) => {
        const x = n.inputs[i];
        if (x === null || x === undefined) return '';
        if (typeof x === 'number') return constant([x], dtype ?? 'float32', []);
        return valueName(x);
      },
      value: valueName,
      out: (i = 0) => {
        const v = n.outputs[i]!;
        let name = names.get(v);
        if (!name) {
          name = unique(`${n.scopes.map((sc) => `/${sc.segment}`).join('')}/${opHint(n.op)}_output_${i}`);
          names.set(v, name);
        }
        return name;
      },
      constant,
      emit: (opType, inputs, attrs, outputs) => emitNode(n, opType, inputs, attrs, outputs),
      fail,
    };
    emitter!(ctx, n);
  }
  current = null;
  for (const [v, name] of identityOutputs) {
    const src = valueName(v);
    emitNode(null, 'Identity', [src], {}, [unique(name)]);
  }

  // Read every tensor initializer once, in parallel.
  await Promise.all(
    initializers.map(async (init) => {
      if (!init.tensor) return;
      const data = await init.tensor.toArray();
      const typed = init.tensor.dtype === 'bool' ? Uint8Array.from(data as ArrayLike<number>) : data;
      init.proto.rawData = new Uint8Array(typed.buffer.slice(typed.byteOffset, typed.byteOffset + typed.byteLength));
    }),
  );
  const outputInfo = g.outputs.map((v, i) => ({
    name: opts.outputNames[i]!,
    elemType: onnxType(v.dtype),
    dims: v.shape.map((d, k) => opts.outputDyn[i]?.[k] ?? v.dyn[k] ?? d),
  }));
  return {
    irVersion: opts.opset <= 14 ? 7 : 8,
    opsetImports: [{ domain: '', version: opts.opset }],
    producerName: 'kiln',
    producerVersion: opts.producerVersion,
    graph: {
      name: 'main_graph',
      docString: opts.docString,
      nodes,
      initializers: initializers.map((i) => i.proto),
      inputs: g.inputs.map((v, i) => ({ name: names.get(v)!, elemType: onnxType(v.dtype), dims: v.shape.map((d, k) => v.dyn[k] ?? d) })),
      outputs: outputInfo,
    },
  };
}
