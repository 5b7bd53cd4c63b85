/**
 * Packed 8-bit storage: int8/uint8 tensors keep 4 elements per u32 word on
 * the GPU (element e is byte e % 4 of word e / 4, little-endian), so they
 * take 1 byte per element. These two kernels move between that layout and
 * one i32 word per element, which the kernel families that read any dtype
 * (elementwise, reduction, indexing) compute in.
 *
 * unpack: one thread per element of a strided packed view; it walks the
 * view's strides to its byte, reads the word holding it and writes the
 * sign- (int8) or zero-extended (uint8) value to a contiguous i32 array.
 * pack: one thread per element of a strided packed destination view; it
 * clears its byte and ORs in the low 8 bits of the contiguous i32 source
 * with two atomics, so threads sharing a word never lose each other's bytes.
 * Shapes and strides are uniforms (rank compiled in); no shared memory.
 */
import { entry1d, metaDecl, stridedOffsets } from './common.js';

/** Meta layout: [0] element count, [1..rank] shape, [P] view offset, [P+1..] view strides. */
export const packedViewAt = (rank: number): number => 1 + rank;

/** Meta words a packed kernel of `rank` uses. */
export const packedWords = (rank: number): number => 2 + 2 * rank;

/** Cache key of the unpack/pack kernel for a view of `rank`. */
export function packedKey(dir: 'pack' | 'unpack', rank: number, signed: boolean): string {
  return `packed:${dir}:r${rank}:${signed ? 'i8' : 'u8'}`;
}

/** WGSL of the unpack (packed view -> contiguous i32) or pack (contiguous i32 -> packed view) kernel. */
export function packedWgsl(dir: 'pack' | 'unpack', rank: number, signed: boolean): string {
  const at = packedViewAt(rank);
  const offsets = stridedOffsets('gi', rank, 1, [{ name: 'p', at }]);
  if (dir === 'unpack') {
    const value = signed ? 'extractBits(bitcast<i32>(w), sh, 8u)' : 'i32(extractBits(w, sh, 8u))';
    return `${metaDecl(packedWords(rank))}
@group(0) @binding(1) var<storage, read_write> dst: array<i32>;
@group(0) @binding(2) var<storage, read> src: array<u32>;
${entry1d()}
  if (gi >= mu(0u)) { return; }
  ${offsets}
  let w = src[off_p / 4u];
  let sh = (off_p % 4u) * 8u;
  dst[gi] = ${value};
}
`;
  }
  return `${metaDecl(packedWords(rank))}
@group(0) @binding(1) var<storage, read_write> dst: array<atomic<u32>>;
@group(0) @binding(2) var<storage, read> src: array<i32>;
${entry1d()}
  if (gi >= mu(0u)) { return; }
  ${offsets}
  let sh = (off_p % 4u) * 8u;
  let b = (bitcast<u32>(src[gi]) & 255u) << sh;
  atomicAnd(&dst[off_p / 4u], ~(255u << sh));
  atomicOr(&dst[off_p / 4u], b);
}
`;
}
