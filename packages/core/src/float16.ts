// float16 on the host. Node 20 has no Float16Array, so a float16 tensor's
// host array is a Uint16Array of IEEE 754 binary16 bit patterns; the
// conversions (round to nearest, ties to even, with subnormals, inf and
// NaN) come from @petamoriken/float16.
import { f16round, getFloat16, setFloat16 } from '@petamoriken/float16';

const scratch = new DataView(new ArrayBuffer(2));

/** `x` rounded to the nearest float16 value (ties to even), as a number. */
export function roundHalf(x: number): number {
  return f16round(x);
}

/** The binary16 bit pattern of `x` rounded to float16. */
export function halfBits(x: number): number {
  setFloat16(scratch, 0, x, true);
  return scratch.getUint16(0, true);
}

/** The value of a binary16 bit pattern. */
export function halfValue(bits: number): number {
  scratch.setUint16(0, bits, true);
  return getFloat16(scratch, 0, true);
}

/** Bit patterns of `values` rounded to float16. */
export function encodeHalf(values: ArrayLike<number | boolean>, out = new Uint16Array(values.length)): Uint16Array {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let i = 0; i < values.length; i++) setFloat16(view, 2 * i, Number(values[i]), true);
  return out;
}

/** The float32 values of binary16 bit patterns (exact: every float16 is a float32). */
export function decodeHalf(bits: Uint16Array, out = new Float32Array(bits.length)): Float32Array {
  const view = new DataView(bits.buffer, bits.byteOffset, bits.byteLength);
  for (let i = 0; i < bits.length; i++) out[i] = getFloat16(view, 2 * i, true);
  return out;
}
