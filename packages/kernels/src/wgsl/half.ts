/**
 * float16 storage: float16 tensors keep 2 elements per u32 word on the GPU
 * (element e is the low (e even) or high (e odd) 16 bits of word e / 2,
 * little-endian, the same bytes as an `array<f16>`), so they take 2 bytes
 * per element on every adapter. Kernels compute in f32. The GEMM and conv
 * generators read and write such operands directly through {@link HalfIO}
 * (a config flag per operand); the two kernels below move between that
 * layout and one f32 per element for everything else (copy, casts, and the
 * primitives that run on core's float32 stand-ins).
 *
 * Why packed words and not `enable f16;`: the words need no `shader-f16`
 * (SwiftShader, the browser's adapter here, has none), so one kernel text
 * serves every adapter, and the arithmetic is f32 either way (PyTorch
 * accumulates half GEMMs, convs and reductions in f32). Reads use
 * `unpack2x16float` (f16 -> f32 is exact). Writes do not use
 * `pack2x16float` or `f16()`: WGSL lets a conversion to a narrower float
 * round either way when the value is not representable (the rounding mode
 * is not specified), so f32 -> f16 is integer code on the bit patterns
 * (`half_bits`): round to nearest, ties to even, with subnormals, overflow
 * to inf and NaN kept, as PyTorch's `.half()`.
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

/**
 * Which operands of one kernel are float16 (packed words) and the WGSL that
 * reads and writes them; the other operands stay `array<f32>` and are
 * indexed directly, so a float32 kernel's text is unchanged.
 */
export class HalfIO {
  private readonly half: ReadonlySet<string>;
  private readonly fns: string[] = [];
  private bits = false;
  constructor(half: Iterable<string> = []) {
    this.half = new Set(half);
  }
  /** Whether operand `name` is float16. */
  has(name: string): boolean {
    return this.half.has(name);
  }
  /** Pipeline-cache key suffix ('' when every operand is f32). */
  key(): string {
    return this.half.size ? `:f16=${[...this.half].sort().join(',')}` : '';
  }
  /**
   * Declaration of operand `name` at @binding(binding). `vec4`: read as
   * vec4<f32> (vec2<u32> words when float16: elements 4i..4i+3). `write`:
   * stored one element at a time (float16: atomic words, see st()); `words`:
   * float16 stored 4 elements at a time as whole words (st4()).
   */
  decl(binding: number, name: string, o: { write?: boolean; vec4?: boolean; pairs?: boolean } = {}): string {
    const access = o.write ? 'read_write' : 'read';
    if (!this.has(name)) return `@group(0) @binding(${binding}) var<storage, ${access}> ${name}: array<${o.vec4 ? 'vec4<f32>' : 'f32'}>;`;
    if (o.pairs && o.write) {
      // One thread owns each word it stores (st2()): plain words, no atomics.
      this.bits = true;
      return `@group(0) @binding(${binding}) var<storage, read_write> ${name}: array<u32>;`;
    }
    if (o.vec4) {
      if (o.write) this.bits = true;
      else this.fns.push(`fn ld4_${name}(i: u32) -> vec4<f32> { let w = ${name}[i]; return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }`);
      return `@group(0) @binding(${binding}) var<storage, ${access}> ${name}: array<vec2<u32>>;`;
    }
    if (o.write) {
      this.bits = true;
      // An in-place kernel also reads the words it writes: its own half, which no other thread changes.
      this.fns.push(`fn ld_${name}(i: u32) -> f32 { return unpack2x16float(atomicLoad(&${name}[i >> 1u]))[i & 1u]; }`);
      this.fns.push(`fn st_${name}(i: u32, v: f32) {
  let sh = (i & 1u) * 16u;
  atomicAnd(&${name}[i >> 1u], ~(0xffffu << sh));
  atomicOr(&${name}[i >> 1u], half_bits(v) << sh);
}`);
      return `@group(0) @binding(${binding}) var<storage, read_write> ${name}: array<atomic<u32>>;`;
    }
    this.fns.push(`fn ld_${name}(i: u32) -> f32 { return unpack2x16float(${name}[i >> 1u])[i & 1u]; }`);
    return `@group(0) @binding(${binding}) var<storage, read> ${name}: array<u32>;`;
  }
  /** f32 value of element `i` of `name`. */
  ld(name: string, i: string): string {
    return this.has(name) ? `ld_${name}(${i})` : `${name}[${i}]`;
  }
  /** vec4<f32> of elements 4i..4i+3 of `name` (declared with vec4). */
  ld4(name: string, i: string): string {
    return this.has(name) ? `ld4_${name}(${i})` : `${name}[${i}]`;
  }
  /** Statement storing f32 `v` as element `i` of `name` (float16: rounded to nearest even; threads sharing a word keep each other's halves). */
  st(name: string, i: string, v: string): string {
    return this.has(name) ? `st_${name}(${i}, ${v});` : `${name}[${i}] = ${v};`;
  }
  /** Statement storing vec4<f32> `v` as elements 4i..4i+3 of `name` (declared with vec4: whole words, no atomics). */
  st4(name: string, i: string, v: string): string {
    if (!this.has(name)) return `${name}[${i}] = ${v};`;
    return `{ let h = ${v}; ${name}[${i}] = vec2<u32>(half_bits(h.x) | (half_bits(h.y) << 16u), half_bits(h.z) | (half_bits(h.w) << 16u)); }`;
  }
  /**
   * Statement storing the elements of word `k` of `name` (declared with
   * pairs): `lo` and `hi` are f32 expressions of its two halves, `hasLo` /
   * `hasHi` whether each belongs to the output view; a half outside it (the
   * first or last word of a view at an odd offset or of odd length) keeps
   * the value it had, read from the word. The calling thread must be the
   * only one writing word `k`.
   */
  st2(name: string, k: string, lo: string, hi: string, hasLo: string, hasHi: string): string {
    return `if (${hasLo} && ${hasHi}) { ${name}[${k}] = half_bits(${lo}) | (half_bits(${hi}) << 16u); }
  else {
    let w = ${name}[${k}];
    var lo_bits = w & 0xffffu;
    var hi_bits = w & 0xffff0000u;
    if (${hasLo}) { lo_bits = half_bits(${lo}); }
    if (${hasHi}) { hi_bits = half_bits(${hi}) << 16u; }
    ${name}[${k}] = lo_bits | hi_bits;
  }`;
  }
  /** The helper functions the declarations and stores so far need (emit after the declarations). */
  helpers(): string {
    return `${this.bits ? HALF_BITS : ''}\n${this.fns.join('\n')}`;
  }
}

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

const HALF_BITS = /* wgsl */ `
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
` + HALF_BITS;

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
