// safetensors: round trips, byte-identical output to the reference layout,
// reading Python-written files, and rejecting malformed ones.
import { expect, it, describe } from 'vitest';
import { FormatError, readSafetensors, writeSafetensors, type RawTensor } from '../src/io/index.js';
import { describeWithReference, refBytes, refJson, sha256, type ExpectedTensor } from './helpers/reference.js';

describe('safetensors round trip (no reference needed)', () => {
  const tensors: Record<string, RawTensor> = {
    w: { dtype: 'float32', shape: [2, 3], data: new Float32Array([1, -2, 3.5, 0, 1e-8, -0]) },
    '0': { dtype: 'int64', shape: [2], data: new BigInt64Array([-(2n ** 40n), 7n]) },
    h: { dtype: 'float16', shape: [3], data: new Uint16Array([0x3c00, 0xc000, 0x7c00]) }, // 1, -2, inf
    mask: { dtype: 'bool', shape: [], data: new Uint8Array([1]) },
    empty: { dtype: 'int8', shape: [0, 5], data: new Int8Array(0) },
  };

  it('writes an 8-byte aligned header and reads every tensor back unchanged (keepDtype)', () => {
    const bytes = writeSafetensors(tensors, { format: 'pt' });
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLen % 8).toBe(0);
    const back = readSafetensors(bytes, { keepDtype: true });
    expect(back.metadata).toEqual({ format: 'pt' });
    for (const [name, t] of Object.entries(tensors)) {
      const got = back.tensors.get(name)!;
      expect(got.dtype, name).toBe(t.dtype);
      expect(got.shape, name).toEqual(t.shape);
      expect(Array.from(got.data as ArrayLike<number | bigint>), name).toEqual(Array.from(t.data as ArrayLike<number | bigint>));
    }
  });

  it('widens by default: f16 -> f32 exactly, an int64 outside int32 is an error naming the tensor', () => {
    const small = writeSafetensors({ h: tensors.h!, i: { dtype: 'int64', shape: [1], data: new BigInt64Array([5n]) } });
    const got = readSafetensors(small).tensors;
    expect(Array.from(got.get('h')!.data as Float32Array)).toEqual([1, -2, Infinity]);
    expect(got.get('i')).toMatchObject({ dtype: 'int32', shape: [1] });
    expect(() => readSafetensors(writeSafetensors(tensors))).toThrow(/'0' holds int64 value -1099511627776/);
  });

  it('rejects tensors whose data does not match shape or dtype', () => {
    expect(() => writeSafetensors({ a: { dtype: 'float32', shape: [3], data: new Float32Array(2) } })).toThrow(FormatError);
    expect(() => writeSafetensors({ a: { dtype: 'float16', shape: [1], data: new Float32Array(1) } })).toThrow(/does not hold a float16/);
    expect(() => writeSafetensors({ __metadata__: tensors.w! })).toThrow(/reserved/);
  });

  it('rejects short files and headers that do not fit', () => {
    expect(() => readSafetensors(new Uint8Array(4))).toThrow(/shorter than the 8-byte/);
    const lying = new Uint8Array(16);
    new DataView(lying.buffer).setBigUint64(0, 9n, true);
    expect(() => readSafetensors(lying)).toThrow(/runs past the end/);
  });
});

describeWithReference('safetensors files written by Python', () => {
  const expected = refJson<{ files: Record<string, Record<string, ExpectedTensor>> }>('weights/expected.json').files;

  it.each(['resnet18_subset.safetensors', 'dtypes.safetensors'])('reads %s: every tensor byte-exact, widened and raw', (name) => {
    const want = expected[name]!;
    const bytes = refBytes(`weights/${name}`);
    const raw = readSafetensors(bytes, { keepDtype: true });
    const wide = readSafetensors(bytes);
    expect(new Set(raw.tensors.keys())).toEqual(new Set(Object.keys(want)));
    for (const [key, t] of raw.tensors) {
      expect(t.shape, key).toEqual(want[key]!.shape);
      expect(t.dtype, key).toBe(want[key]!.dtype);
      expect(sha256(t.data), key).toBe(want[key]!.sha256);
      expect(sha256(wide.tensors.get(key)!.data), `${key} widened`).toBe(want[key]!.sha256Widened);
    }
  });

  it.each(['resnet18_subset.safetensors', 'dtypes.safetensors'])('rewrites %s byte for byte as the reference layout', (name) => {
    const bytes = refBytes(`weights/${name}`);
    const file = readSafetensors(bytes, { keepDtype: true });
    const again = writeSafetensors(file.tensors, file.metadata);
    expect(again.length).toBe(bytes.length);
    expect(Buffer.compare(Buffer.from(again), Buffer.from(bytes))).toBe(0);
  });

  const hostile = refJson<{ files: Record<string, string[]> }>('hostile/index.json');
  it.each(Object.entries(hostile.files).filter(([n]) => n.endsWith('.safetensors')))('rejects %s naming the problem', (name, words) => {
    let error: unknown;
    try {
      readSafetensors(refBytes(`hostile/${name}`));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(FormatError);
    for (const w of words) expect((error as Error).message).toContain(w);
  });
});
