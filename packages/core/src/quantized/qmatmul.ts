/**
 * The integer GEMM op: int8/uint8 a [M, K] times int8 b [N, K] transposed,
 * int32 accumulation, a float32 or requantizing epilogue (backend.ts's
 * QuantEpilogue). Quantized Linear and conv layers are built on it.
 */
import type { View } from '../backend.js';
import { DTypeError, KilnError, ShapeError, fmtShape } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { commonBackend, empty } from '../ops/util.js';
import { finish } from '../autograd/record.js';

/** Options of {@link quantizedMatmul}. */
export interface QuantizedMatmulOptions {
  /** int32 [1]: a's zero point (a tensor, so it may be computed on the device). */
  aZeroPoint: Tensor;
  /** int32 [N]: Σ_k b[n, k]. */
  bColSum: Tensor;
  /** float32 [N]: per-output-column multiplier (a_scale * b_scale[n], divided by the output scale when requantizing). */
  scale: Tensor;
  /** Shape [N]. float32 added after scaling (float output; a quantized output in its units), or int32 added to the accumulator (quantized output). */
  bias?: Tensor;
  /** 'float32', or the int8/uint8 output's dtype and zero point. */
  out: 'float32' | {
    /** The integer output dtype. */
    dtype: 'int8' | 'uint8';
    /** The output zero point. */
    zeroPoint: number;
  };
  /** Fused ReLU (on a quantized output: clamp at the zero point). */
  relu?: boolean;
}

const view3 = (t: Tensor, shape: number[], strides: number[]): View => ({ ...t._view(), shape, strides });

function checkVector(op: string, what: string, t: Tensor, n: number, dtype: string): void {
  if (t.dtype !== dtype) throw new DTypeError(op, `expected ${what} of dtype ${dtype}, got ${t.dtype}`);
  if (t.dim() !== 1 || t.shape[0] !== n || !t.isContiguous()) throw new ShapeError(op, `expected ${what} as a contiguous [${n}] tensor, got ${fmtShape(t.shape)}`);
}

/**
 * out[m, n] = epilogue(Σ_k (a[m, k] - aZeroPoint) * b[n, k]) for contiguous
 * int8/uint8 a [M, K] and int8 b [N, K] (a weight in PyTorch's layout, zero
 * point 0), K a multiple of 4 (pad both with zeros; b's pad must be 0).
 */
export function quantizedMatmul(a: Tensor, b: Tensor, o: QuantizedMatmulOptions): Tensor {
  const op = 'quantizedMatmul';
  const backend = commonBackend(op, [a, b, o.aZeroPoint, o.bColSum, o.scale, o.bias]);
  if (a.dtype !== 'int8' && a.dtype !== 'uint8') throw new DTypeError(op, `expected an int8 or uint8 input, got ${a.dtype}`);
  if (b.dtype !== 'int8') throw new DTypeError(op, `expected an int8 weight, got ${b.dtype}`);
  if (a.dim() !== 2 || b.dim() !== 2 || a.shape[1] !== b.shape[1]) {
    throw new ShapeError(op, `expected a [M, K] and b [N, K], got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  }
  const [M, K] = a.shape as [number, number];
  const N = b.shape[0]!;
  if (K % 4 !== 0) throw new ShapeError(op, `expected K to be a multiple of 4 (zero-padded), got ${K}`);
  if (!a.isContiguous() || !b.isContiguous() || a.offset % 4 !== 0 || b.offset % 4 !== 0) {
    throw new KilnError(op, 'expected contiguous operands starting at a multiple of 4 elements');
  }
  checkVector(op, 'aZeroPoint', o.aZeroPoint, 1, 'int32');
  checkVector(op, 'bColSum', o.bColSum, N, 'int32');
  checkVector(op, 'scale', o.scale, N, 'float32');
  const quantized = o.out !== 'float32';
  if (o.bias) checkVector(op, 'bias', o.bias, N, quantized && o.bias.dtype === 'int32' ? 'int32' : 'float32');
  const outDtype = o.out === 'float32' ? 'float32' : o.out.dtype;
  const out = empty([M, N], outDtype, backend);
  if (M > 0 && N > 0) {
    if (K === 0) throw new ShapeError(op, 'expected K > 0');
    backend.matmul(view3(a, [1, M, K], [0, K, 1]), view3(b, [1, K, N], [0, 1, K]), view3(out, [1, M, N], [0, N, 1]), {
      relu: o.relu,
      quant: {
        aZeroPoint: o.aZeroPoint._view(),
        bColSum: o.bColSum._view(),
        scale: o.scale._view(),
        bias: o.bias?._view(),
        outZeroPoint: o.out === 'float32' ? undefined : o.out.zeroPoint,
      },
    });
  }
  const attrs = { out: o.out, relu: !!o.relu };
  return finish(out, op, [a, b, o.aZeroPoint, o.bColSum, o.scale, o.bias ?? null], attrs, [], null);
}
