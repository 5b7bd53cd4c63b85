/**
 * Backend glue for the integer GEMM (matmul with a `quant` epilogue): the
 * register GEMM's block from the tuning table with the `int8` flag, the
 * packed-dot path where the device has it, and the meta words.
 */
import type { MatmulEpilogue, QuantEpilogue, View } from '@kiln/core';
import type { OpContext } from '../backend.js';
import type { GPUStorage } from '../pool.js';
import { gemmKey, gemmWgsl, type GemmConfig } from '../wgsl/gemm.js';
import { GQ, PACKED_DOT_FEATURE, type Int8Gemm } from '../wgsl/gemm-int8.js';
import { Meta } from './elementwise.js';
import { gemmBlock } from '../tuning.js';

type GView = View<GPUStorage>;

/**
 * Test/benchmark hook: `dot` forces an inner-product path ('bits' runs
 * anywhere; 'dot4'/'unpack' need packed_4x8_integer_dot_product).
 */
export const int8GemmOverride: {
  /** The forced path; unset: the device's best. */
  dot?: Int8Gemm['dot'];
} = {};

/** The inner product the int8 GEMM uses on this device. */
export function int8DotPath(ctx: OpContext): Int8Gemm['dot'] {
  if (int8GemmOverride.dot) return int8GemmOverride.dot;
  return ctx.wgslFeatures.includes(PACKED_DOT_FEATURE) ? 'dot4' : 'bits';
}

const effStrides = (v: GView) => v.strides.map((s, d) => (v.shape[d] === 1 ? 0 : s));

/** Encodes one integer GEMM; core has checked layouts (k unit-stride, word-aligned) and dtypes. */
export function gemmInt8(ctx: OpContext, a: GView, b: GView, out: GView, e: MatmulEpilogue<GPUStorage> & { quant: QuantEpilogue<GPUStorage> }): void {
  const [B, M, K] = a.shape as [number, number, number];
  const N = b.shape[2]!;
  if (B === 0 || M === 0 || N === 0) return;
  const q = e.quant;
  const int8: Int8Gemm = {
    a: a.dtype === 'uint8' ? 'u8' : 'i8',
    dot: int8DotPath(ctx),
    out: out.dtype === 'float32' ? 'f32' : out.dtype === 'uint8' ? 'u8' : 'i8',
  };
  if (int8.out !== 'f32') int8.bias = q.bias?.dtype === 'float32' ? 'f32' : 'i32';
  const block = gemmBlock(ctx.tuning);
  // shareA needs WY = 1 and TM a multiple of the subgroup size, which gemmBlock guarantees when it sets it.
  const config: GemmConfig = {
    strategy: 'register', tm: block.tm, tn: block.tn, wg: block.wg, a: 'k4', b: 'k4', cols: 'block',
    grid: block.grid, shareA: block.shareA, int8,
  };
  const meta = new Meta(GQ.words);
  meta.set(GQ.M, [M, N, K, B]);
  meta.set(GQ.a, [a.offset, ...effStrides(a)]);
  meta.set(GQ.b, [b.offset, ...effStrides(b)]);
  meta.set(GQ.out, [out.offset, ...effStrides(out)]);
  meta.u[GQ.epi] = (q.bias ? 1 : 0) | (e.relu ? 2 : 0);
  const zo = q.outZeroPoint ?? 0;
  const [qmin, qmax] = out.dtype === 'uint8' ? [0, 255] : [-128, 127];
  meta.set(GQ.zpAt, [q.aZeroPoint.offset, q.bColSum.offset, q.scale.offset, q.bias?.offset ?? 0]);
  meta.i32(GQ.zo, zo).i32(GQ.lo, e.relu ? Math.max(qmin, zo) : qmin).i32(GQ.hi, qmax);
  const bind = (v: GView | undefined) => ({ buffer: v?.storage.buffer ?? ctx.rt.placeholder });
  const { tm, tn, wg, grid } = config;
  const workgroups: [number, number, number] = grid === 'mn'
    ? [Math.ceil(M / tm / wg[1]), Math.ceil(N / tn / wg[0]), B]
    : [Math.ceil(N / tn / wg[0]), Math.ceil(M / tm / wg[1]), B];
  ctx.rt.dispatch({
    kernel: 'matmul.int8',
    key: gemmKey(config),
    code: () => gemmWgsl(config),
    bindings: [{ buffer: out.storage.buffer, write: true }, bind(a), bind(b), bind(q.aZeroPoint), bind(q.bColSum), bind(q.scale), bind(q.bias)],
    meta: meta.u,
    workgroups,
  });
}
