// Core's tracer records the graph a model really computes, on every backend:
// the conv epilogue's residual and ReLU, eval BatchNorm with its affine and
// running statistics (and none of the helpers that build its scale), in-place
// ops under no-grad as the values they produce, composites (linear, flatten,
// softmax) as one op; and tracing leaves every result unchanged.
import { expect, it } from 'vitest';
import { batchNorm, conv2d, linear, noGrad, randn, tensor, withTracer, isTracing, type Tensor, type TracedOp } from '@kiln/core';
import { describeBackends } from '@kiln/test-helpers';

interface Trace {
  ops: TracedOp[];
  assigns: { target: Tensor; source: Tensor; op: string }[];
}

function trace<T>(fn: () => T): { result: T; trace: Trace } {
  const t: Trace = { ops: [], assigns: [] };
  const result = withTracer({ op: (o) => t.ops.push(o), assign: (target, source, op) => t.assigns.push({ target, source, op }) }, fn);
  return { result, trace: t };
}

await describeBackends('tracer', (device) => {
  it('records a fused conv epilogue with its residual and ReLU', async () => {
    const x = randn([1, 2, 5, 5], { device });
    const w = randn([3, 2, 3, 3], { device });
    const b = randn([3], { device });
    const res = randn([1, 3, 5, 5], { device });
    const plain = noGrad(() => conv2d(x, w, b, { padding: 1 }, { residual: res, relu: true }));
    const { result, trace: t } = trace(() => noGrad(() => conv2d(x, w, b, { padding: 1 }, { residual: res, relu: true })));
    expect(t.ops.map((o) => o.op)).toEqual(['conv2d']);
    expect(t.ops[0]!.inputs).toEqual([x, w, b, res]);
    expect(t.ops[0]!.attrs).toMatchObject({ relu: true, padding: [1, 1], stride: [1, 1], groups: 1 });
    expect(t.ops[0]!.outputs).toEqual([result]);
    // Tracing must not change what is computed.
    expect(await result.toArray()).toEqual(await plain.toArray());
  });

  it('records eval BatchNorm with weight, bias and running statistics, and no stray helper ops', () => {
    const x = randn([2, 3, 4, 4], { device });
    const [w, b, m, v] = [randn([3], { device }), randn([3], { device }), randn([3], { device }), randn([3], { device }).abs()];
    for (const grad of [false, true]) {
      // With grad on and a trainable affine the op composes for autograd; the trace still shows one batchNorm.
      w.requiresGrad_(grad);
      const { result, trace: t } = trace(() => batchNorm(x, m, v, { weight: w, bias: b, training: false, eps: 1e-3 }));
      expect(t.ops.map((o) => o.op), `requiresGrad=${grad}`).toEqual(['batchNorm']);
      expect(t.ops[0]!.inputs).toEqual([x, w, b, m, v]);
      expect(t.ops[0]!.attrs).toEqual({ training: false, eps: 1e-3 });
      expect(t.ops[0]!.outputs).toEqual([result]);
    }
  });

  it('records training BatchNorm without its running-stat updates', () => {
    const x = randn([4, 3, 2, 2], { device });
    const [m, v] = [randn([3], { device }), randn([3], { device }).abs()];
    const { trace: t } = trace(() => noGrad(() => batchNorm(x, m, v, { training: true })));
    expect(t.ops.map((o) => o.op)).toEqual(['batchNorm']);
    expect(t.assigns).toEqual([]);
  });

  it('records an in-place ReLU under no-grad as the value it produces, then the write', async () => {
    const x = randn([2, 6], { device });
    const before = x.clone();
    const { trace: t } = trace(() => noGrad(() => x.relu_()));
    expect(t.ops.map((o) => o.op)).toEqual(['relu']);
    expect(t.ops[0]!.inputs).toEqual([x]);
    expect(t.assigns).toHaveLength(1);
    expect(t.assigns[0]!.target).toBe(x);
    expect(t.assigns[0]!.source).toBe(t.ops[0]!.outputs[0]);
    expect(t.assigns[0]!.op).toMatch(/^relu_?$/);
    expect(await x.toArray()).toEqual(await before.relu().toArray());
  });

  it('records an in-place add under autograd too', () => {
    const w = randn([3], { device, requiresGrad: true });
    const y = w.mul(2);
    const { trace: t } = trace(() => y.add_(1));
    // add's gradient reads neither operand, so y is read as it is (no snapshot clone), then assigned.
    expect(t.ops.map((o) => o.op)).toEqual(['add']);
    expect(t.ops[0]!.inputs[0]).toBe(y);
    expect(t.assigns.map((a) => a.target)).toEqual([y]);
  });

  it('records linear, flatten and softmax as the ops the user called', () => {
    const x = randn([2, 3, 2, 2], { device });
    const w = randn([4, 12], { device });
    const b = randn([4], { device });
    const { trace: t } = trace(() => noGrad(() => linear(x.flatten(1), w, b).softmax(1)));
    expect(t.ops.map((o) => o.op)).toEqual(['flatten', 'linear', 'softmax']);
    expect(t.ops[0]!.attrs).toEqual({ startDim: 1, endDim: 3 });
    expect(t.ops[1]!.inputs.slice(1)).toEqual([w, b]);
    expect(t.ops[2]!.attrs).toEqual({ dim: 1 });
  });

  it('reports nothing when no tracer is active, and stops at the end of withTracer', () => {
    expect(isTracing()).toBe(false);
    const seen: string[] = [];
    withTracer((o) => seen.push(o.op), () => expect(isTracing()).toBe(true));
    tensor([1, 2], { device }).add(1);
    expect(seen).toEqual([]);
    expect(isTracing()).toBe(false);
  });
});
