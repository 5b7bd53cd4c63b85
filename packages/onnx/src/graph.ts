// The graph a trace records, before it becomes ONNX: Kiln ops on values.
import type { DType, Tensor } from '@kiln/core';

/** Where a value comes from. */
export type ValueKind =
  /** A graph input (one of the example inputs). */
  | 'input'
  /** A parameter or buffer of the model: an initializer named by its state-dict key. */
  | 'param'
  /** A tensor made inside forward, or an op's output that depends on no input (folded). */
  | 'const'
  /** An op's output that depends on the graph inputs. */
  | 'node';

/** One value of the recorded graph. */
export interface Value {
  id: number;
  kind: ValueKind;
  shape: readonly number[];
  dtype: DType;
  /** For 'param' values the state-dict key; otherwise assigned at emission. */
  name?: string;
  /** The data of a 'param' or 'const' value (params are the live tensors; consts are kept copies). */
  data?: Tensor;
  /** Per dim, the dim_param name when that dim follows a dynamic axis (else null). */
  dyn: (string | null)[];
  producer?: GraphNode;
}

/** A module scope as recorded when a module's forward ran. */
export interface Scope {
  /** The dotted path from the root ('layer1.0.conv1'). */
  path: string;
  /** The segment PyTorch's node names use ('conv1', 'layer1.0'). */
  segment: string;
  /** The module's class name. */
  type: string;
}

/** One recorded op: a Kiln op name with its inputs (values, numbers or null), attributes and outputs. */
export interface GraphNode {
  op: string;
  inputs: (Value | number | null)[];
  attrs: Record<string, any>;
  outputs: Value[];
  scopes: readonly Scope[];
}

/** The whole recorded graph. */
export interface RecordedGraph {
  nodes: GraphNode[];
  inputs: Value[];
  outputs: Value[];
}

/** The dotted module path of a node, or '<root>'. */
export function modulePath(n: Pick<GraphNode, 'scopes'>): string {
  return n.scopes.length ? n.scopes[n.scopes.length - 1]!.path : '<root>';
}
