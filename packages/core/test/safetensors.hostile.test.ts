// readSafetensors on hostile files: every way a header can lie about its
// tensors (overlapping, out-of-range or gapped offsets, trailing bytes,
// byte counts that do not match dtype x shape, unknown dtypes, duplicate
// names, names that are not UTF-8, absurd shapes and lengths) is rejected
// with a FormatError saying what is wrong; and 2,000 random mutations of a
// valid file either parse to tensors whose sizes match their shapes or are
// rejected the same way, never another error.
import { describe, expect, it } from 'vitest';
import { FormatError, readSafetensors, shapeSize, writeSafetensors } from '@kiln/core';

/** A file from a header given as text (or raw bytes) and a data section of `dataBytes` bytes. */
function file(header: string | Uint8Array, dataBytes: number, headerLength?: bigint): Uint8Array {
  const json = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

const entry = (dtype: string, shape: unknown, offsets: unknown) => JSON.stringify({ dtype, shape, data_offsets: offsets });
const rejects = (bytes: Uint8Array, message: RegExp) => {
  let error: unknown;
  try {
    readSafetensors(bytes);
  } catch (e) {
    error = e;
  }
  expect(error, `expected a FormatError matching ${message}`).toBeInstanceOf(FormatError);
  expect((error as Error).message).toMatch(message);
};

describe('readSafetensors rejects hostile headers', () => {
  it('offsets that overlap, leave a gap, run past the data, or leave bytes after the last tensor', () => {
    rejects(file(`{"a":${entry('F32', [2], [0, 8])},"b":${entry('F32', [2], [4, 12])}}`, 12), /tensor 'b' \(data_offsets \[4, 12\]\) overlaps the tensor before it, which ends at 8/);
    rejects(file(`{"a":${entry('F32', [1], [0, 4])},"b":${entry('F32', [1], [8, 12])}}`, 12), /gap in the data: tensor 'b' starts at 8, the previous one ends at 4/);
    rejects(file(`{"a":${entry('F32', [4], [0, 16])}}`, 8), /data_offsets \[0, 16\] of 'a' run past the end of the 8-byte data section/);
    rejects(file(`{"a":${entry('F32', [1], [0, 4])}}`, 12), /8 bytes of data after the last tensor/);
    rejects(file(`{"a":${entry('F32', [0], [4, 0])}}`, 4), /bad data_offsets \[4,0\]/);
    for (const bad of [[-4, 0], [0, 1.5], [0], [0, 2 ** 60], '0,4', null]) rejects(file(`{"a":${entry('U8', [1], bad)}}`, 1), /tensor 'a': bad data_offsets/);
  });

  it('byte counts that do not match dtype x shape, unknown dtypes, bad and unaddressable shapes', () => {
    rejects(file(`{"w":${entry('F32', [2, 2], [0, 12])}}`, 12), /tensor 'w': shape \[2, 2\] of F32 needs 16 bytes, but data_offsets \[0, 12\] span 12/);
    rejects(file(`{"w":${entry('F16', [3], [0, 12])}}`, 12), /needs 6 bytes/);
    rejects(file(`{"w":${entry('F8_E4M3', [1], [0, 1])}}`, 1), /tensor 'w': unsupported dtype 'F8_E4M3'/);
    rejects(file(`{"w":${entry('f32', [1], [0, 4])}}`, 4), /unsupported dtype 'f32'/);
    for (const shape of [[-1], [1.5], ['2'], 7, null]) rejects(file(`{"w":${entry('U8', shape, [0, 0])}}`, 0), /tensor 'w': bad shape/);
    rejects(file(`{"w":${entry('F64', [2 ** 30, 2 ** 30, 2 ** 30], [0, 8])}}`, 8), /too large to address/);
    rejects(file(`{"w":7}`, 0), /tensor 'w': entry is not an object/);
  });

  it('duplicate names, even with identical entries (JSON.parse would keep only the last)', () => {
    const e = entry('F32', [1], [0, 4]);
    rejects(file(`{"w":${e},"w":${e}}`, 4), /header names 'w' twice/);
    rejects(file(`{"w":${entry('F32', [1], [0, 4])},"v":${entry('F32', [1], [4, 8])},"w":${entry('F32', [2], [0, 8])}}`, 8), /header names 'w' twice/);
    rejects(file(`{"__metadata__":{"a":"1"},"__metadata__":{"a":"2"}}`, 0), /header names '__metadata__' twice/);
    // An escaped spelling of the same name is the same name.
    rejects(file(`{"w":${e},"\\u0077":${e}}`, 4), /header names 'w' twice/);
    // Equal keys inside different entries are not duplicates.
    expect(readSafetensors(file(`{"a":${entry('F32', [1], [0, 4])},"b":${entry('F32', [1], [4, 8])}}`, 8)).tensors.size).toBe(2);
  });

  it('names that are not UTF-8: raw invalid bytes, and unpaired surrogate escapes', () => {
    const prefix = new TextEncoder().encode('{"');
    const suffix = new TextEncoder().encode(`":${entry('U8', [1], [0, 1])}}`);
    for (const bad of [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xe2, 0x28, 0xa1]]) {
      rejects(file(Uint8Array.from([...prefix, 0x77, ...bad, ...suffix]), 1), /header is not valid UTF-8/);
    }
    rejects(file(`{"w\\ud800":${entry('U8', [1], [0, 1])}}`, 1), /a tensor name is not valid UTF-8 \(it holds an unpaired surrogate escape\)/);
    rejects(file(`{"\\udc00w":${entry('U8', [1], [0, 1])}}`, 1), /unpaired surrogate/);
    // A paired escape is a valid (astral) character.
    expect([...readSafetensors(file(`{"\\ud83d\\ude00":${entry('U8', [1], [0, 1])}}`, 1)).tensors.keys()]).toEqual(['\u{1F600}']);
  });

  it('header lengths that are huge or run past the file, headers that are not JSON objects, bad metadata', () => {
    rejects(file('{}', 0, 2n ** 63n), /header length 9223372036854775808 exceeds the 100000000-byte limit/);
    rejects(file('{}', 0, 1000n), /header length 1000 runs past the end of the 10-byte file/);
    rejects(new Uint8Array(5), /shorter than the 8-byte header length/);
    rejects(file('{"a":', 0), /header is not valid JSON/);
    rejects(file('[1,2]', 0), /header JSON must be an object/);
    rejects(file('"w"', 0), /header JSON must be an object/);
    rejects(file('{"__metadata__":{"a":1}}', 0), /__metadata__ must be an object of string values/);
    rejects(file('{"__metadata__":"x"}', 0), /__metadata__ must be an object of string values/);
  });

  it('2,000 mutations of a valid file: each parses to right-sized tensors or throws a FormatError', () => {
    const valid = writeSafetensors({
      'layer.weight': { dtype: 'float32', shape: [3, 2], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
      'layer.bias': { dtype: 'float32', shape: [3], data: Float32Array.from([7, 8, 9]) },
      steps: { dtype: 'int64', shape: [], data: BigInt64Array.from([3n]) },
      mask: { dtype: 'uint8', shape: [4], data: Uint8Array.from([1, 0, 1, 1]) },
    }, { format: 'pt' });
    let s = 0x9e3779b9;
    const r = () => ((s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 4294967296);
    let parsed = 0;
    let rejected = 0;
    for (let i = 0; i < 2000; i++) {
      const b = Uint8Array.from(valid);
      for (let k = 1 + Math.floor(r() * 3); k > 0; k--) {
        // Mostly inside the header, where a lie is most harmful.
        const pos = r() < 0.8 ? 8 + Math.floor(r() * (b.length - 8 - 33)) : Math.floor(r() * b.length);
        b[pos] = r() < 0.5 ? Math.floor(r() * 256) : b[pos]! ^ (1 << Math.floor(r() * 8));
      }
      try {
        const out = readSafetensors(b.subarray(0, r() < 0.1 ? Math.floor(r() * b.length) : b.length));
        for (const [name, t] of out.tensors) expect(t.data.length, `mutation ${i}: '${name}'`).toBe(shapeSize(t.shape));
        parsed++;
      } catch (e) {
        if (!(e instanceof FormatError)) throw new Error(`mutation ${i}: ${(e as Error).constructor.name}: ${(e as Error).message}`);
        rejected++;
      }
    }
    console.log(`safetensors fuzz: 2000 mutations, ${parsed} parsed, ${rejected} rejected (FormatError)`);
    expect(rejected).toBeGreaterThan(500);
  });
});
