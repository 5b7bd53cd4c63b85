// Reductions: sum, mean, max/min (all or along a dim), argmax/argmin.
import { onnxType, type Emitter, type EmitContext } from '../emit.js';
import type { GraphNode } from '../graph.js';
import { tensorInput } from './util.js';

function axesOf(n: GraphNode): number[] {
  const x = tensorInput(n, 0);
  if (Array.isArray(n.attrs.dims)) return n.attrs.dims as number[];
  if (typeof n.attrs.dim === 'number') return [n.attrs.dim];
  return x.shape.map((_, i) => i);
}

/** Input 0 cast to the output dtype when the reduction widens it (sum of bools is int32). */
function widened(ctx: EmitContext, n: GraphNode): string {
  const x = tensorInput(n, 0);
  const want = n.outputs[0]!.dtype;
  return x.dtype === want ? ctx.input(0) : ctx.emit('Cast', [ctx.input(0)], { to: onnxType(want) })[0]!;
}

const reduce = (opType: string): Emitter => (ctx, n) => {
  const axes = axesOf(n);
  const keepdims = n.attrs.keepdim ? 1 : 0;
  if (axes.length === 0) {
    ctx.emit('Identity', [widened(ctx, n)], {}, [ctx.out()]);
    return;
  }
  // ReduceSum takes its axes as an input from opset 13; the others from opset 18.
  if (opType === 'ReduceSum' || ctx.opset >= 18) {
    ctx.emit(opType, [widened(ctx, n), ctx.constant(axes, 'int64', [axes.length])], { keepdims }, [ctx.out()]);
  } else {
    ctx.emit(opType, [widened(ctx, n)], { axes, keepdims }, [ctx.out()]);
  }
};

const argExtremum = (opType: string): Emitter => (ctx, n) => {
  const x = tensorInput(n, 0);
  const keepdims = n.attrs.keepdim ? 1 : 0;
  let src = ctx.input(0);
  let axis = n.attrs.dim as number | null;
  if (axis === null) {
    // No dim: over the flattened tensor, as torch.argmax(x).
    src = ctx.emit('Reshape', [src, ctx.constant([-1], 'int64', [1])])[0]!;
    axis = 0;
    if (x.dyn.some(Boolean)) ctx.fail('argmax/argmin over all dims of a tensor with a dynamic axis is not supported');
  }
  // select_last_index=0: the first occurrence wins, as in Kiln and PyTorch.
  const idx = ctx.emit(opType, [src], { axis, keepdims: n.attrs.dim === null ? 0 : keepdims })[0]!;
  if (n.attrs.dim === null && keepdims) {
    const shaped = ctx.emit('Reshape', [idx, ctx.constant(x.shape.map(() => 1), 'int64', [x.shape.length])])[0]!;
    ctx.emit('Cast', [shaped], { to: onnxType('int32') }, [ctx.out()]);
    return;
  }
  ctx.emit('Cast', [idx], { to: onnxType('int32') }, [ctx.out()]);
};

/** Mappings of the reductions. */
export const REDUCE_EMITTERS: Record<string, Emitter> = {
  sum: reduce('ReduceSum'),
  mean: reduce('ReduceMean'),
  max: reduce('ReduceMax'),
  min: reduce('ReduceMin'),
  argmax: argExtremum('ArgMax'),
  argmin: argExtremum('ArgMin'),
};
