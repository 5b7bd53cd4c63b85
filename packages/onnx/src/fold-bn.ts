// Folds an eval-mode BatchNorm into the convolution that feeds it, as
// torch.onnx.export's constant folding does:
//   bn(conv(x)) = (W * s) * x + ((b - mean) * s + beta),   s = gamma / sqrt(var + eps)
// computed with Kiln ops on the recorded constants, in the same order as
// @kiln/resnet's fused inference path.
import { keep, noGrad, tidy, untraced, type Tensor } from '@kiln/core';
import type { GraphNode, RecordedGraph, Value } from './graph.js';

const isConstant = (v: Value | number | null | undefined): v is Value => !!v && typeof v === 'object' && (v.kind === 'param' || v.kind === 'const');

/** How many times each value is read (by nodes or as a graph output). */
function readers(g: RecordedGraph): Map<Value, number> {
  const count = new Map<Value, number>();
  const bump = (v: unknown) => {
    if (v && typeof v === 'object') count.set(v as Value, (count.get(v as Value) ?? 0) + 1);
  };
  for (const n of g.nodes) n.inputs.forEach(bump);
  g.outputs.forEach(bump);
  return count;
}

/**
 * Rewrites every conv2d -> batchNorm(eval) pair whose conv output feeds
 * only the BatchNorm into one conv2d with folded weight and bias. Returns the
 * new graph and the tensors it created (the caller disposes them).
 */
export function foldBatchNorms(g: RecordedGraph): { graph: RecordedGraph; created: Tensor[] } {
  const count = readers(g);
  const created: Tensor[] = [];
  const removed = new Set<GraphNode>();
  for (const bn of g.nodes) {
    if (bn.op !== 'batchNorm' || bn.attrs.training) continue;
    const x = bn.inputs[0] as Value;
    const conv = x.producer;
    if (!conv || conv.op !== 'conv2d' || conv.inputs[3] || conv.attrs.relu || count.get(x) !== 1) continue;
    const [w, b] = [conv.inputs[1], conv.inputs[2]];
    const [gamma, beta, mean, variance] = bn.inputs.slice(1, 5);
    if (!isConstant(w) || (b && !isConstant(b)) || !isConstant(mean) || !isConstant(variance)) continue;
    if ((gamma && !isConstant(gamma)) || (beta && !isConstant(beta))) continue;
    const eps = bn.attrs.eps as number;
    const out = w.shape[0]!;
    const folded = untraced(() =>
      noGrad(() =>
        tidy(() => {
          let scale = variance.data!.add(eps).rsqrt();
          if (gamma) scale = scale.mul((gamma as Value).data!);
          const wf = w.data!.mul(scale.reshape([out, 1, 1, 1]));
          let bf = (b ? (b as Value).data!.sub(mean.data!) : mean.data!.neg()).mul(scale);
          if (beta) bf = bf.add((beta as Value).data!);
          return { wf: keep(wf), bf: keep(bf) };
        }),
      ),
    );
    created.push(folded.wf, folded.bf);
    const constValue = (t: Tensor): Value => ({ id: -1, kind: 'const', shape: [...t.shape], dtype: t.dtype, data: t, dyn: t.shape.map(() => null) });
    conv.inputs = [conv.inputs[0]!, constValue(folded.wf), constValue(folded.bf), null];
    const y = bn.outputs[0]!;
    y.producer = conv;
    conv.outputs = [y];
    removed.add(bn);
  }
  return { graph: { ...g, nodes: g.nodes.filter((n) => !removed.has(n)) }, created };
}
