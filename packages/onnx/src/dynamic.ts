// Which dims of a recorded value follow a dynamic axis (dim_param): the
// exporter needs it to write shapes that stay valid for any batch size
// (Reshape's 0 = "copy this input dim", Expand's 1, Slice's open end).
import type { GraphNode, Value } from './graph.js';

type Dyn = (string | null)[];

const tensorInputs = (n: GraphNode): Value[] => n.inputs.filter((v): v is Value => !!v && typeof v === 'object');

/** Broadcasting: an output dim follows a dynamic input dim of the same size, aligned from the right. */
function broadcastDyn(n: GraphNode, out: Value): Dyn {
  const r = out.shape.length;
  return out.shape.map((size, i) => {
    for (const v of tensorInputs(n)) {
      const j = i - (r - v.shape.length);
      if (j >= 0 && v.dyn[j] && v.shape[j] === size) return v.dyn[j]!;
    }
    return null;
  });
}

/** Reshape: a dim keeps its symbol when everything before it is unchanged (same sizes, same symbols). */
function reshapeDyn(x: Value, out: Value): Dyn {
  const dyn: Dyn = out.shape.map(() => null);
  for (let i = 0; i < Math.min(x.shape.length, out.shape.length); i++) {
    if (x.shape[i] !== out.shape[i]) break;
    dyn[i] = x.dyn[i] ?? null;
  }
  return dyn;
}

/** The dyn of output `index` of `n`, from its inputs' dyn. */
export function propagateDyn(n: GraphNode, index: number): Dyn {
  const out = n.outputs[index]!;
  const x = tensorInputs(n)[0];
  if (!x || !x.dyn.some(Boolean) && !tensorInputs(n).some((v) => v.dyn.some(Boolean))) return out.shape.map(() => null);
  switch (n.op) {
    case 'permute':
      return (n.attrs.dims as number[]).map((d) => x.dyn[d] ?? null);
    case 'view':
    case 'squeeze':
    case 'unsqueeze':
    case 'flatten':
      return reshapeDyn(x, out);
    case 'sum':
    case 'mean':
    case 'max':
    case 'min':
    case 'argmax':
    case 'argmin': {
      const dims: number[] = n.attrs.dims ?? (n.attrs.dim !== undefined ? [n.attrs.dim] : x.shape.map((_, i) => i));
      if (n.attrs.keepdim) return x.dyn.map((s, i) => (dims.includes(i) ? null : s));
      return x.dyn.filter((_, i) => !dims.includes(i));
    }
    case 'matmul':
    case 'linear': {
      // Leading (batch) dims follow the first operand; the last dim is the weight's.
      return out.shape.map((size, i) => (i < out.shape.length - 1 && x.shape[i] === size ? (x.dyn[i] ?? null) : null));
    }
    default:
      // conv, pooling, batch norm, elementwise, cat, pad ...: same rank, a dim keeps its symbol where its size is unchanged.
      if (out.shape.length === x.shape.length && tensorInputs(n).length === 1) return out.shape.map((size, i) => (x.shape[i] === size ? (x.dyn[i] ?? null) : null));
      return broadcastDyn(n, out);
  }
}
