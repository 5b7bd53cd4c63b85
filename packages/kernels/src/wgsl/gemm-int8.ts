/**
 * The int8 flavour of the register GEMM (gemm.ts, config flag `int8`):
 * out[b] = epilogue(Σ_k (a[m, k] - za) * b[k, n]) with a int8/uint8 and b
 * int8, both packed 4 per u32 along k (unit k-stride, word-aligned rows), K
 * a multiple of 4, int32 accumulation.
 *
 * One thread computes a TM x TN block of out, a workgroup of WX x WY
 * threads covers (WY*TM) x (WX*TN), as in the float register GEMM; per
 * k-word it reads TM words of A and TN of B from global memory and does
 * TM*TN 4-wide integer dot products: `dot4I8Packed` where the device has
 * the WGSL language feature packed_4x8_integer_dot_product ('dot4'),
 * `unpack4xI8` + dot ('unpack', same feature), or extractBits arithmetic on
 * any device ('bits'). uint8 A is made signed by flipping each byte's top
 * bit (a - 128), so every path is a signed x signed dot; the epilogue adds
 * (128 - za) * colSum[n] back. With shareA = S, lane s loads rows
 * m0 + g*S + s and subgroupBroadcast hands each row word to every lane.
 *
 * With `conv` set, A is not a matrix but a packed channels-last uint8/int8
 * activation [N, H, W, C] (C a multiple of 4, so each u32 word is 4
 * channels of one pixel) and the GEMM is an implicit-im2col convolution:
 * row m is the output pixel (n, oh, ow), K runs over (kh, kw, C/4) words as
 * the packed weight [O, kh, kw, C] does, and each thread walks the taps,
 * reading its TM pixels' words directly (no im2col buffer) and the input
 * zero point (4 copies of the byte) where a tap falls into the padding,
 * which the epilogue's zero-point correction cancels exactly as it cancels
 * an im2col padded with the zero point.
 *
 * Epilogue per element, v = acc + (shift - za) * colSum[n]:
 * float out:      y = f32(v) * scale[n] (+ bias[n]) (ReLU), plain store;
 * int8/uint8 out: q = clamp(round(f32(v + bias[n]) * scale[n]) + zo, lo, hi)
 *                 (int32 bias), or round(f32(v) * scale[n] + bias[n]) (float32 bias),
 *                 stored into its byte of the packed output with two atomics.
 */
import { metaDecl } from './common.js';
import type { GemmConfig } from './gemm.js';

/** What makes a GEMM the int8 one. */
export interface Int8Gemm {
  /** A's element type; 'u8' is shifted to signed by flipping the top bit of each byte. */
  a: 'i8' | 'u8';
  /** Inner product: dot4I8Packed, unpack4xI8 + dot (both need packed_4x8_integer_dot_product), or extractBits. */
  dot: 'dot4' | 'unpack' | 'bits';
  /** Output: float32, or requantized int8 / uint8 (packed). */
  out: 'f32' | 'i8' | 'u8';
  /** A requantized output's bias: int32 added to the accumulator, or float32 added after scaling. */
  bias?: 'i32' | 'f32';
  /** Implicit-GEMM convolution: A is a packed channels-last activation, the geometry in the GQC meta words. */
  conv?: boolean;
}

/** Meta word layout of the int8 GEMM (epi bit 0: bias, bit 1: relu; *At: element offsets of the epilogue operands). */
export const GQ = { M: 0, N: 1, K: 2, B: 3, a: 4, b: 8, out: 12, epi: 16, zo: 17, lo: 18, hi: 19, zpAt: 20, csAt: 21, scAt: 22, biasAt: 23, words: 24 };

/**
 * Meta words of the implicit-GEMM conv (after {@link GQ}'s): input height,
 * width, channel words, kernel h/w, stride h/w, dilation h/w, output h/w,
 * element strides of the input's n, h and w (its channel stride is 1), and
 * padding h/w.
 */
export const GQC = { H: 24, W: 25, C4: 26, KH: 27, KW: 28, SH: 29, SW: 30, DH: 31, DW: 32, OH: 33, OW: 34, sN: 35, sH: 36, sW: 37, PH: 38, PW: 39, words: 40 };

/** Cache-key part of the int8 flag. */
export function int8Key(q: Int8Gemm): string {
  return `i8:${q.a}:${q.dot}:${q.out}:${q.bias ?? 'i32'}${q.conv ? ':conv' : ''}`;
}

/** The WGSL language feature the 'dot4' and 'unpack' paths need. */
export const PACKED_DOT_FEATURE = 'packed_4x8_integer_dot_product';

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

function dotFn(dot: Int8Gemm['dot']): string {
  if (dot === 'dot4') return 'fn dot8(a: u32, b: u32) -> i32 { return dot4I8Packed(a, b); }';
  if (dot === 'unpack') return 'fn dot8(a: u32, b: u32) -> i32 { return dot(unpack4xI8(a), unpack4xI8(b)); }';
  const lane = (x: string, i: number) => `extractBits(${x}, ${8 * i}u, 8u)`;
  return `fn dot8(a: u32, b: u32) -> i32 {
  let x = bitcast<i32>(a); let y = bitcast<i32>(b);
  return ${range(4).map((i) => `${lane('x', i)} * ${lane('y', i)}`).join(' + ')};
}`;
}

function decls(q: Int8Gemm): string {
  return [
    q.out === 'f32'
      ? '@group(0) @binding(1) var<storage, read_write> out: array<f32>;'
      : '@group(0) @binding(1) var<storage, read_write> out: array<atomic<u32>>;',
    '@group(0) @binding(2) var<storage, read> A: array<u32>;',
    '@group(0) @binding(3) var<storage, read> Bm: array<u32>;',
    '@group(0) @binding(4) var<storage, read> azp: array<i32>;',
    '@group(0) @binding(5) var<storage, read> colSum: array<i32>;',
    '@group(0) @binding(6) var<storage, read> scl: array<f32>;',
    `@group(0) @binding(7) var<storage, read> bias: array<${q.out === 'f32' || q.bias === 'f32' ? 'f32' : 'i32'}>;`,
  ].join('\n');
}

function epilogue(q: Int8Gemm): string {
  const g = GQ;
  const shift = q.a === 'u8' ? 128 : 0;
  const index = `mu(${g.out}u) + bt * mu(${g.out + 1}u) + m * mu(${g.out + 2}u) + n * mu(${g.out + 3}u)`;
  const head = `
fn store(bt: u32, m: u32, n: u32, acc: i32) {
  let epi = mu(${g.epi}u);
  let v = acc + (${shift} - azp[mu(${g.zpAt}u)]) * colSum[mu(${g.csAt}u) + n];
  let sc = scl[mu(${g.scAt}u) + n];
  let bn = mu(${g.biasAt}u) + n;`;
  if (q.out === 'f32') {
    return `${head}
  // Product and bias rounded separately (no fma), as PyTorch's onednn kernels and the CPU reference.
  var y = f32(v) * sc;
  if ((epi & 1u) != 0u) { y = y + bias[bn]; }
  if ((epi & 2u) != 0u) { y = select(y, 0.0, y < 0.0); }
  out[${index}] = y;
}`;
  }
  return `${head}
${q.bias === 'f32'
    ? `  var r = f32(v) * sc;
  if ((epi & 1u) != 0u) { r = r + bias[bn]; }`
    : `  var w = v;
  if ((epi & 1u) != 0u) { w = w + bias[bn]; }
  let r = f32(w) * sc;`}
  // Clamped in float first: i32() of a float beyond int32 is not portable.
  let t = clamp(round(r), -1073741824.0, 1073741824.0);
  let qv = clamp(i32(t) + mi(${g.zo}u), mi(${g.lo}u), mi(${g.hi}u));
  let e = ${index};
  let sh = (e % 4u) * 8u;
  atomicAnd(&out[e / 4u], ~(255u << sh));
  atomicOr(&out[e / 4u], (bitcast<u32>(qv) & 255u) << sh);
}`;
}

function body(c: GemmConfig, q: Int8Gemm): string {
  const { tm, tn } = c;
  const [wx, wy] = c.wg;
  const g = GQ;
  const S = c.shareA;
  const L: string[] = [];
  const [colWg, rowWg] = c.grid === 'mn' ? ['wid.y', 'wid.x'] : ['wid.x', 'wid.y'];
  L.push(`let M = mu(${g.M}u); let N = mu(${g.N}u); let K4 = mu(${g.K}u) / 4u; let bt = wid.z;`);
  L.push(`let m0 = ${wy === 1 ? rowWg : `(${rowWg} * ${wy}u + lid.y)`} * ${tm}u;`);
  for (const j of range(tn)) L.push(`let cu${j} = (${colWg} * ${wx}u + lid.x) * ${tn}u + ${j}u;`);
  L.push(`let sam = mu(${g.a + 2}u); let sbn = mu(${g.b + 3}u);`);
  L.push(`let aBase = mu(${g.a}u) + bt * mu(${g.a + 1}u); let bBase = mu(${g.b}u) + bt * mu(${g.b + 1}u);`);
  const aRows = S ? tm / S : tm;
  const row = (i: number) => `min(m0 + ${S ? `${i * S}u + sid` : `${i}u`}, M - 1u)`;
  const flip = q.a === 'u8' ? ' ^ 0x80808080u' : '';
  // The A word of row r at k-word `k` (conv: within the current tap).
  let aWord: (r: number) => string;
  if (q.conv) {
    const c = GQC;
    L.push(`let OW = mu(${c.OW}u); let OHW = mu(${c.OH}u) * OW; let C4 = mu(${c.C4}u); let KW = mu(${c.KW}u);`);
    L.push(`let H = i32(mu(${c.H}u)); let W = i32(mu(${c.W}u)); let sH = mu(${c.sH}u); let sW = mu(${c.sW}u);`);
    L.push(`let zpw = (bitcast<u32>(azp[mu(${g.zpAt}u)]) & 255u) * 0x01010101u;`);
    for (const r of range(aRows)) {
      L.push(`let am${r} = ${row(r)}; let ow${r} = am${r} % OW; let oh${r} = (am${r} % OHW) / OW;`);
      L.push(`let ih${r} = i32(oh${r} * mu(${c.SH}u)) - mi(${c.PH}u); let iw${r} = i32(ow${r} * mu(${c.SW}u)) - mi(${c.PW}u);`);
      L.push(`let px${r} = aBase + (am${r} / OHW) * mu(${c.sN}u);`);
    }
    aWord = (r) => `select(zpw, A[p${r} + c], ok${r})`;
  } else {
    for (const r of range(aRows)) L.push(`let ar${r} = (aBase + ${row(r)} * sam) / 4u;`);
    aWord = (r) => `A[ar${r} + k]`;
  }
  for (const j of range(tn)) L.push(`let bc${j} = (bBase + min(cu${j}, N - 1u) * sbn) / 4u;`);
  for (const i of range(tm)) for (const j of range(tn)) L.push(`var acc${i}_${j} = 0;`);
  const inner: string[] = [];
  if (S) {
    for (const r of range(aRows)) inner.push(`let al${r} = ${aWord(r)}${flip};`);
    for (const i of range(tm)) inner.push(`let a${i} = subgroupBroadcast(al${Math.floor(i / S)}, ${i % S}u);`);
  } else for (const i of range(tm)) inner.push(`let a${i} = ${aWord(i)}${flip};`);
  for (const j of range(tn)) inner.push(`let b${j} = Bm[bc${j} + k];`);
  for (const i of range(tm)) for (const j of range(tn)) inner.push(`acc${i}_${j} += dot8(a${i}, b${j});`);
  if (q.conv) {
    const c = GQC;
    // Taps outside, channel words inside: the bounds check and address are per tap, not per word.
    L.push(`for (var ti = 0u; ti < mu(${c.KH}u); ti++) { for (var tj = 0u; tj < KW; tj++) {`);
    L.push(`  let kb = (ti * KW + tj) * C4;`);
    for (const r of range(aRows)) {
      L.push(`  let y${r} = ih${r} + i32(ti * mu(${c.DH}u)); let x${r} = iw${r} + i32(tj * mu(${c.DW}u));`);
      L.push(`  let ok${r} = y${r} >= 0 && y${r} < H && x${r} >= 0 && x${r} < W;`);
      L.push(`  let p${r} = select(0u, (px${r} + u32(max(y${r}, 0)) * sH + u32(max(x${r}, 0)) * sW) / 4u, ok${r});`);
    }
    L.push('  for (var c = 0u; c < C4; c++) {');
    L.push('    let k = kb + c;');
    for (const line of inner) L.push(`    ${line}`);
    L.push('  }');
    L.push('} }');
  } else {
    L.push('for (var k = 0u; k < K4; k++) {');
    for (const line of inner) L.push(`  ${line}`);
    L.push('}');
  }
  // One rolled store loop (one inlined epilogue), as the float GEMM does.
  L.push(`var ov: array<i32, ${tm * tn}>;`);
  for (const i of range(tm)) for (const j of range(tn)) L.push(`ov[${i * tn + j}] = acc${i}_${j};`);
  L.push(`let c0 = cu0;`);
  L.push(`for (var i = 0u; i < ${tm}u; i++) { for (var j = 0u; j < ${tn}u; j++) {
    let n = c0 + j;
    if (m0 + i < M && n < N) { store(bt, m0 + i, n, ov[i * ${tn}u + j]); }
  } }`);
  return `@compute @workgroup_size(${wx}, ${wy})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>${S ? ', @builtin(subgroup_invocation_id) sid: u32' : ''}) {
  ${L.join('\n  ')}
}`;
}

/** WGSL of the int8 register GEMM for `c` (c.int8 set). */
export function gemmInt8Wgsl(c: GemmConfig, q: Int8Gemm): string {
  return `${c.shareA ? 'enable subgroups;' : ''}
${metaDecl(q.conv ? GQC.words : GQ.words)}
${decls(q)}
${dotFn(q.dot)}
${epilogue(q)}
${body(c, q)}
`;
}
