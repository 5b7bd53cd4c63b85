/**
 * float16 storage: float16 tensors keep 2 elements per u32 word on the GPU
 * (element e is the low (e even) or high (e odd) 16 bits of word e / 2,
 * little-endian, the same bytes as an `array<f16>`), so they take 2 bytes
 * per element on every adapter. The kernel families compute in f32; these
 * two kernels move between that layout and one f32 per element.
 *
 * The conversions are integer code on the bit patterns rather than
 * `f16()`/`pack2x16float`, whose rounding WGSL leaves to the implementation
 * and which need `shader-f16` (SwiftShader has none): f32 -> f16 rounds to
 * nearest, ties to even, with subnormals, overflow to inf and NaN kept, as
 * PyTorch's `.half()`; f16 -> f32 is exact.
 *
 * unpack: one thread per element of a strided float16 view; it walks the
 * view's strides to its element, reads the word holding it and writes the
 * f32 value to a contiguous array (at a meta offset).
 * pack: one thread per element of a strided float16 destination; it rounds
 * the contiguous f32 source element and replaces its half of the word with
 * two atomics, so threads sharing a word never lose each other's halves.
 * Shapes and strides are uniforms (rank compiled in); no shared memory.
 */
import { entry1d, metaDecl, stridedOffsets } from './common.js';

/** Meta layout: [0] element count, [1..rank] shape, [P] float16 view offset, [P+1..P+rank] its strides, [P+rank+1] contiguous f32 offset. */
export const halfViewAt = (rank: number): number => 1 + rank;
/** Meta word of the contiguous f32 operand's offset. */
export const halfFlatAt = (rank: number): number => 2 + 2 * rank;
/** Meta words a float16 conversion kernel of `rank` uses. */
export const halfWords = (rank: number): number => 3 + 2 * rank;

/** Cache key of the unpack/pack kernel for a view of `rank`. */
export function halfKey(dir: 'pack' | 'unpack', rank: number): string {
  return `half:${dir}:r${rank}`;
}

const CONVERT = /* wgsl */ `
fn half_value(h: u32) -> f32 {
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  var v: f32;
  if (e == 0u) { v = f32(m) * 5.9604644775390625e-8; }
  else if (e == 31u) { v = bitcast<f32>(0x7f800000u | (m << 13u)); }
  else { v = bitcast<f32>(((e + 112u) << 23u) | (m << 13u)); }
  return select(v, -v, (h & 0x8000u) != 0u);
}
fn half_bits(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  let sign = (b >> 16u) & 0x8000u;
  let a = b & 0x7fffffffu;
  if (a > 0x7f800000u) { return sign | 0x7e00u | ((a >> 13u) & 0x3ffu); }
  if (a >= 0x477ff000u) { return sign | 0x7c00u; }
  if (a >= 0x38800000u) { return sign | ((a + 0xfffu + ((a >> 13u) & 1u) - 0x38000000u) >> 13u); }
  if (a < 0x33000000u) { return sign; }
  let shift = 126u - (a >> 23u);
  let m = (a & 0x7fffffu) | 0x800000u;
  var q = m >> shift;
  let rem = m & ((1u << shift) - 1u);
  let half = 1u << (shift - 1u);
  if (rem > half || (rem == half && (q & 1u) == 1u)) { q = q + 1u; }
  return sign | q;
}
`;

/** WGSL of the unpack (float16 view -> contiguous f32) or pack (contiguous f32 -> float16 view) kernel. */
export function halfWgsl(dir: 'pack' | 'unpack', rank: number): string {
  const offsets = stridedOffsets('gi', rank, 1, [{ name: 'h', at: halfViewAt(rank) }]);
  const flat = `mu(${halfFlatAt(rank)}u) + gi`;
  if (dir === 'unpack') {
    return `${metaDecl(halfWords(rank))}
${CONVERT}
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<u32>;
${entry1d()}
  if (gi >= mu(0u)) { return; }
  ${offsets}
  dst[${flat}] = half_value((src[off_h / 2u] >> ((off_h % 2u) * 16u)) & 0xffffu);
}
`;
  }
  return `${metaDecl(halfWords(rank))}
${CONVERT}
@group(0) @binding(1) var<storage, read_write> dst: array<atomic<u32>>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
${entry1d()}
  if (gi >= mu(0u)) { return; }
  ${offsets}
  let sh = (off_h % 2u) * 16u;
  atomicAnd(&dst[off_h / 2u], ~(0xffffu << sh));
  atomicOr(&dst[off_h / 2u], half_bits(src[${flat}]) << sh);
}
`;
}
