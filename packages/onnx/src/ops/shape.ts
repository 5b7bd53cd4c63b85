// Views and data movement: reshape-like views, flatten, transpose, slice,
// expand, concat, pad, gather. Shapes written into the graph stay valid for
// any size of a dynamic axis (see dynamic.ts).
import type { Emitter, EmitContext } from '../emit.js';
import type { GraphNode } from '../graph.js';
import { tensorInput } from './util.js';

// An open end (clamped by ONNX to the dim's size); 2^63 - 1 itself is not a float64.
const OPEN_END = Number.MAX_SAFE_INTEGER;

/** Reshape's target: a dynamic dim kept in place is written as 0 ("copy the input's"). */
function reshapeTarget(ctx: EmitContext, n: GraphNode): string {
  const x = tensorInput(n, 0);
  const out = n.outputs[0]!;
  const lost = x.dyn.filter((s): s is string => !!s && !out.dyn.includes(s));
  if (lost.length) ctx.fail(`reshaping [${x.shape.join(', ')}] to [${out.shape.join(', ')}] merges or moves the dynamic axis '${lost[0]}'; keep it in place`);
  const target = out.shape.map((s, i) => (out.dyn[i] && x.dyn[i] === out.dyn[i] ? 0 : s));
  if (out.shape.includes(0)) ctx.fail(`reshaping to an empty shape [${out.shape.join(', ')}] is not supported`);
  return ctx.constant(target, 'int64', [target.length]);
}

const reshape: Emitter = (ctx, n) => {
  ctx.emit('Reshape', [ctx.input(0), reshapeTarget(ctx, n)], {}, [ctx.out()]);
};

const flatten: Emitter = (ctx, n) => {
  const x = tensorInput(n, 0);
  const { startDim, endDim } = n.attrs as { startDim: number; endDim: number };
  // torch.flatten(x, 1) is ONNX's Flatten(axis=1); other spans are a Reshape.
  if (startDim === 1 && endDim === x.shape.length - 1 && !x.dyn.slice(1).some(Boolean)) {
    ctx.emit('Flatten', [ctx.input(0)], { axis: 1 }, [ctx.out()]);
    return;
  }
  reshape(ctx, n);
};

const permute: Emitter = (ctx, n) => {
  ctx.emit('Transpose', [ctx.input(0)], { perm: n.attrs.dims }, [ctx.out()]);
};

const slice: Emitter = (ctx, n) => {
  const x = tensorInput(n, 0);
  const { dim, start, end, step } = n.attrs as { dim: number; start: number; end: number; step: number };
  const full = start === 0 && end === x.shape[dim];
  if (x.dyn[dim] && !(full && step === 1)) ctx.fail(`slicing the dynamic axis '${x.dyn[dim]}' is not supported`);
  if (full && step === 1) {
    ctx.emit('Identity', [ctx.input(0)], {}, [ctx.out()]);
    return;
  }
  const c = (v: number) => ctx.constant([v], 'int64', [1]);
  ctx.emit('Slice', [ctx.input(0), c(start), c(x.dyn[dim] ? OPEN_END : end), c(dim), c(step)], {}, [ctx.out()]);
};

const expand: Emitter = (ctx, n) => {
  const x = tensorInput(n, 0);
  const out = n.outputs[0]!;
  const lead = out.shape.length - x.shape.length;
  // Expand broadcasts both ways: 1 keeps the input's size (which may be dynamic).
  const shape = out.shape.map((s, i) => {
    const own = i >= lead ? x.shape[i - lead] : undefined;
    if (own === s) return 1;
    if (out.dyn[i]) ctx.fail(`expanding to the dynamic axis '${out.dyn[i]}' is not supported`);
    return s;
  });
  ctx.emit('Expand', [ctx.input(0), ctx.constant(shape, 'int64', [shape.length])], {}, [ctx.out()]);
};

const cat: Emitter = (ctx, n) => {
  const first = tensorInput(n, 0);
  if (first.dyn[n.attrs.dim]) ctx.fail(`concatenating along the dynamic axis '${first.dyn[n.attrs.dim]}' is not supported`);
  ctx.emit('Concat', n.inputs.map((_, i) => ctx.input(i)), { axis: n.attrs.dim }, [ctx.out()]);
};

const pad: Emitter = (ctx, n) => {
  const x = tensorInput(n, 0);
  const r = x.shape.length;
  const pads = n.attrs.pads as number[];
  // Kiln (as torch.nn.functional.pad) lists [begin, end] pairs from the last dim; ONNX all begins, then all ends.
  const begins = new Array<number>(r).fill(0);
  const ends = new Array<number>(r).fill(0);
  for (let k = 0; k < pads.length / 2; k++) {
    begins[r - 1 - k] = pads[2 * k]!;
    ends[r - 1 - k] = pads[2 * k + 1]!;
  }
  const value = ctx.constant([n.attrs.value ?? 0], x.dtype, []);
  ctx.emit('Pad', [ctx.input(0), ctx.constant([...begins, ...ends], 'int64', [2 * r]), value], { mode: 'constant' }, [ctx.out()]);
};

const gather: Emitter = (ctx, n) => {
  ctx.emit('GatherElements', [ctx.input(0), ctx.input(1)], { axis: n.attrs.dim }, [ctx.out()]);
};

const indexSelect: Emitter = (ctx, n) => {
  ctx.emit('Gather', [ctx.input(0), ctx.input(1)], { axis: n.attrs.dim }, [ctx.out()]);
};

/** Mappings of the view and data-movement ops. */
export const SHAPE_EMITTERS: Record<string, Emitter> = {
  view: reshape,
  squeeze: reshape,
  unsqueeze: reshape,
  flatten,
  permute,
  slice,
  expand,
  cat,
  pad,
  gather,
  indexSelect,
};
