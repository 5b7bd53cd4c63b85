// Quantized ops. Dynamic quantization (quantizeDynamic's Linear) is traced as
// the ops Kiln runs, which are PyTorch's: min/max of the input, the scale and
// zero-point arithmetic, round/clamp/cast to uint8 (reduce_range included),
// then quantizedMatmul. That last op becomes MatMulInteger (exact int32
// accumulation, the input's zero point subtracted as in Kiln's column-sum
// correction), Cast, Mul by the per-channel scale and Add of the bias: the
// integers are Kiln's, bit for bit.
import { onnxType, type Emitter } from '../emit.js';
import { tensorInput } from './util.js';

const quantizedMatmul: Emitter = (ctx, n) => {
  if (n.attrs.out !== 'float32') ctx.fail('a quantized (requantized int8) output has no mapping yet; only float outputs (dynamic quantization) export');
  // Kiln's weight is [N, K] int8; MatMulInteger takes B as [K, N].
  const bt = ctx.emit('Transpose', [ctx.input(1)], { perm: [1, 0] })[0]!;
  const zpScalar = ctx.emit('Reshape', [ctx.input(2), ctx.constant([], 'int64', [0])])[0]!;
  const zp = ctx.emit('Cast', [zpScalar], { to: onnxType(tensorInput(n, 0).dtype) })[0]!;
  const acc = ctx.emit('MatMulInteger', [ctx.input(0), bt, zp])[0]!;
  const accF = ctx.emit('Cast', [acc], { to: onnxType('float32') })[0]!;
  const relu = n.attrs.relu === true;
  const hasBias = !!n.inputs[5];
  let y = ctx.emit('Mul', [accF, ctx.input(4)], {}, hasBias || relu ? undefined : [ctx.out()])[0]!;
  if (hasBias) y = ctx.emit('Add', [y, ctx.input(5)], {}, relu ? undefined : [ctx.out()])[0]!;
  if (relu) ctx.emit('Relu', [y], {}, [ctx.out()]);
};

/** Mappings of the quantized ops. */
export const QUANTIZED_EMITTERS: Record<string, Emitter> = { quantizedMatmul };
