/**
 * WGSL building blocks shared by every kernel family: the meta uniform
 * (one `array<vec4<u32>>` per dispatch, read by word index), dtype storage
 * (float32 -> f32; int32/int8/uint8/bool -> one i32 word each), casts into a
 * stored dtype with PyTorch's wrapping, NaN tests that survive fast-math,
 * and the flat invocation index over a 2-D grid of workgroups.
 */
import { BackendError, type DType } from '@kiln/core';

/** A WGSL scalar type a kernel computes or stores in. */
export type Scalar = 'f32' | 'i32';

/** The WGSL element type `dtype` is stored as (8-bit types widen to one word). */
export function storageOf(dtype: DType): Scalar {
  return dtype === 'float32' ? 'f32' : 'i32';
}

/** Meta uniform declaration with `words` 32-bit slots and accessors mu/mi/mf. */
export function metaDecl(words: number): string {
  const vecs = Math.max(1, Math.ceil(words / 4));
  return /* wgsl */ `
@group(0) @binding(0) var<uniform> kmeta: array<vec4<u32>, ${vecs}>;
fn mu(i: u32) -> u32 { return kmeta[i / 4u][i % 4u]; }
fn mi(i: u32) -> i32 { return bitcast<i32>(mu(i)); }
fn mf(i: u32) -> f32 { return bitcast<f32>(mu(i)); }
`;
}

/** Helpers every kernel may call. */
export const PRELUDE = /* wgsl */ `
fn isnan_(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn f2i(x: f32) -> i32 { return select(0, i32(x), abs(x) < 2147483648.0); }
fn wrap8(x: i32) -> i32 { return (x << 24u) >> 24u; }
// Through a var so no constant evaluation rejects the non-finite values.
fn fbits(b: u32) -> f32 { var v = b; return bitcast<f32>(v); }
`;

/** A storage buffer declaration at @binding(binding). */
export function bufferDecl(binding: number, name: string, type: Scalar, write = false): string {
  return `@group(0) @binding(${binding}) var<storage, ${write ? 'read_write' : 'read'}> ${name}: array<${type}>;`;
}

/** WGSL converting `e` (a `from` value) to compute type `to`. */
export function convert(e: string, from: Scalar, to: Scalar): string {
  if (from === to) return e;
  return to === 'f32' ? `f32(${e})` : `f2i(${e})`;
}

/** WGSL converting `e` (a `from` value) to the stored word of `dtype`, wrapping like PyTorch. */
export function toStored(e: string, from: Scalar, dtype: DType): string {
  switch (dtype) {
    case 'float32':
      return from === 'f32' ? e : `f32(${e})`;
    case 'int32':
      return convert(e, from, 'i32');
    case 'int8':
      return `wrap8(${convert(e, from, 'i32')})`;
    case 'uint8':
      return `(${convert(e, from, 'i32')} & 255)`;
    case 'bool':
      return from === 'f32' ? `select(0, 1, ${e} != 0.0)` : `select(0, 1, ${e} != 0)`;
    case 'float16':
      // float16 outputs are packed words, stored through wgsl/half.ts (HalfIO.st, or the pack kernel), never as one word each.
      throw new BackendError('toStored', 'expected a float16 output to be stored through HalfIO (wgsl/half.ts), got a direct store');
  }
}

/** Workgroup size of 1-D kernels. */
export const WG = 256;

/** Entry point header of a 1-D kernel: defines `gi`, the flat invocation index. */
export function entry1d(wg = WG): string {
  return `@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let gi = (wid.y * nwg.x + wid.x) * ${wg}u + lid;`;
}

/** Workgroup grid covering `invocations` threads with `wg` per group (x capped at 65535). */
export function grid1d(invocations: number, wg = WG): [number, number, number] {
  const groups = Math.ceil(invocations / wg);
  if (groups === 0) return [0, 1, 1];
  const x = Math.min(groups, 65535);
  return [x, Math.ceil(groups / x), 1];
}

/**
 * WGSL statements computing `off_<names[j]>` for the element with flat
 * index `idx` of a rank-`rank` shape at meta[shapeAt..], operand j having
 * its offset at meta[opAt[j]] and strides at meta[opAt[j] + 1 + d].
 */
export function stridedOffsets(idx: string, rank: number, shapeAt: number, ops: { name: string; at: number }[], tag = 'i'): string {
  const rem = `rem_${tag}`;
  const lines = [`var ${rem} = ${idx};`];
  for (const op of ops) lines.push(`var off_${op.name} = mu(${op.at}u);`);
  for (let d = rank - 1; d >= 0; d--) {
    lines.push(`{ let n = mu(${shapeAt + d}u); let c = ${rem} % n; ${rem} = ${rem} / n;`);
    for (const op of ops) lines.push(`  off_${op.name} += c * mu(${op.at + 1 + d}u);`);
    lines.push('}');
  }
  return lines.join('\n  ');
}
