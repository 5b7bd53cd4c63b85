// Convolution, batch norm, pooling, linear layers and softmax.
import type { Emitter } from '../emit.js';
import { tensorInput } from './util.js';

const conv2d: Emitter = (ctx, n) => {
  const w = tensorInput(n, 1);
  const a = n.attrs;
  const residual = n.inputs[3];
  const relu = a.relu === true;
  const convOut = residual || relu ? undefined : [ctx.out()];
  let y = ctx.emit('Conv', [ctx.input(0), ctx.input(1), ...(n.inputs[2] ? [ctx.input(2)] : [])], {
    kernel_shape: w.shape.slice(2),
    strides: a.stride,
    pads: [a.padding[0], a.padding[1], a.padding[0], a.padding[1]],
    dilations: a.dilation,
    group: a.groups,
  }, convOut)[0]!;
  // The fused epilogue, as PyTorch's graph has it: Conv, then Add, then Relu.
  if (residual) y = ctx.emit('Add', [y, ctx.input(3)], {}, relu ? undefined : [ctx.out()])[0]!;
  if (relu) ctx.emit('Relu', [y], {}, [ctx.out()]);
};

const batchNorm: Emitter = (ctx, n) => {
  if (n.attrs.training) ctx.fail('batch norm with batch statistics (training mode) cannot be exported; call model.eval() first');
  const C = tensorInput(n, 0).shape[1]!;
  const scale = n.inputs[1] ? ctx.input(1) : ctx.constant(new Array(C).fill(1), 'float32', [C]);
  const bias = n.inputs[2] ? ctx.input(2) : ctx.constant(new Array(C).fill(0), 'float32', [C]);
  ctx.emit('BatchNormalization', [ctx.input(0), scale, bias, ctx.input(3), ctx.input(4)], { epsilon: { f: n.attrs.eps } }, [ctx.out()]);
};

const poolAttrs = (a: Record<string, any>) => ({
  kernel_shape: a.kernel,
  strides: a.stride,
  pads: [a.padding[0], a.padding[1], a.padding[0], a.padding[1]],
  ceil_mode: a.ceilMode ? 1 : 0,
});

const maxPool2d: Emitter = (ctx, n) => {
  ctx.emit('MaxPool', [ctx.input(0)], { ...poolAttrs(n.attrs), dilations: n.attrs.dilation }, [ctx.out()]);
};

const avgPool2d: Emitter = (ctx, n) => {
  if (n.attrs.divisorOverride !== undefined) ctx.fail('divisorOverride has no ONNX AveragePool equivalent');
  ctx.emit('AveragePool', [ctx.input(0)], { ...poolAttrs(n.attrs), count_include_pad: n.attrs.countIncludePad === false ? 0 : 1 }, [ctx.out()]);
};

const adaptiveAvgPool2d: Emitter = (ctx, n) => {
  const x = tensorInput(n, 0);
  const [H, W] = x.shape.slice(2) as [number, number];
  const [oH, oW] = n.attrs.outputSize as [number, number];
  if (oH === 1 && oW === 1) {
    ctx.emit('GlobalAveragePool', [ctx.input(0)], {}, [ctx.out()]);
    return;
  }
  // Equal windows only: then adaptive pooling is a plain average pool.
  if (H % oH !== 0 || W % oW !== 0) ctx.fail(`adaptive pooling from ${H}x${W} to ${oH}x${oW} has unequal windows, which ONNX's AveragePool cannot express`);
  const k = [H / oH, W / oW];
  ctx.emit('AveragePool', [ctx.input(0)], { kernel_shape: k, strides: k }, [ctx.out()]);
};

const linear: Emitter = (ctx, n) => {
  const x = tensorInput(n, 0);
  const hasBias = !!n.inputs[2];
  if (x.shape.length === 2) {
    ctx.emit('Gemm', [ctx.input(0), ctx.input(1), ...(hasBias ? [ctx.input(2)] : [])], { alpha: { f: 1 }, beta: { f: 1 }, transB: 1 }, [ctx.out()]);
    return;
  }
  const wt = ctx.emit('Transpose', [ctx.input(1)], { perm: [1, 0] })[0]!;
  const y = ctx.emit('MatMul', [ctx.input(0), wt], {}, hasBias ? undefined : [ctx.out()])[0]!;
  if (hasBias) ctx.emit('Add', [y, ctx.input(2)], {}, [ctx.out()]);
};

const matmul: Emitter = (ctx) => {
  ctx.emit('MatMul', [ctx.input(0), ctx.input(1)], {}, [ctx.out()]);
};

const softmaxLike = (opType: string): Emitter => (ctx, n) => {
  ctx.emit(opType, [ctx.input(0)], { axis: n.attrs.dim }, [ctx.out()]);
};

const refuseIndices: Emitter = (ctx) => ctx.fail("max pooling's indices are per plane in Kiln and flat over the tensor in ONNX; export the values only");

/** Mappings of the layer ops. */
export const NN_EMITTERS: Record<string, Emitter> = {
  conv2d,
  batchNorm,
  maxPool2d,
  maxPool2dIndices: refuseIndices,
  avgPool2d,
  adaptiveAvgPool2d,
  linear,
  matmul,
  softmax: softmaxLike('Softmax'),
  logSoftmax: softmaxLike('LogSoftmax'),
};
