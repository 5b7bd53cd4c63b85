// The restricted unpickler on hand-assembled pickles: values, memo, marks,
// and that nothing outside the allow-list is ever resolved or called.
import { describe, expect, it } from 'vitest';
import { FormatError, pyCallable, unpickle, type UnpicklerHooks } from '../src/io/index.js';

const enc = new TextEncoder();
const u32 = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24];
const str = (s: string) => [0x58, ...u32(enc.encode(s).length), ...enc.encode(s)]; // BINUNICODE
const global = (m: string, n: string) => [0x63, ...enc.encode(`${m}\n${n}\n`)];
const pickle = (...ops: number[]) => new Uint8Array([0x80, 0x02, ...ops, 0x2e]);

const denyAll: UnpicklerHooks = {
  findGlobal: (m, n) => {
    throw new FormatError('test', `global '${m}.${n}' is not allowed`);
  },
  persistentLoad: () => {
    throw new FormatError('test', 'no persistent ids');
  },
};

describe('unpickle', () => {
  it('reads ints of every width, floats, strings, None and booleans', () => {
    const v = unpickle(
      pickle(0x28, 0x4b, 7, 0x4d, 0x34, 0x12, 0x4a, ...u32(-5 >>> 0), 0x8a, 2, 0x00, 0x80, 0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0x80, 0,
        0x47, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, ...str('é'), 0x4e, 0x88, 0x89, 0x74),
      denyAll,
    );
    // LONG1 0x8000 (2 bytes, little endian) is -32768; the 9-byte one is 2^63, past Number's exact range.
    expect(v).toEqual([7, 0x1234, -5, -32768, 2n ** 63n, 1.5, 'é', null, true, false]);
  });

  it('builds dicts and lists with SETITEMS / APPENDS and shares memoised objects', () => {
    const v = unpickle(
      pickle(0x7d, 0x71, 0, 0x28, ...str('a'), 0x5d, 0x71, 1, 0x28, 0x4b, 1, 0x4b, 2, 0x65, ...str('b'), 0x68, 1, 0x75),
      denyAll,
    ) as Map<string, number[]>;
    expect([...v.keys()]).toEqual(['a', 'b']);
    expect(v.get('a')).toEqual([1, 2]);
    expect(v.get('b')).toBe(v.get('a'));
  });

  it('calls only callables the hook returned, with the REDUCE arguments', () => {
    const calls: unknown[] = [];
    const hooks: UnpicklerHooks = {
      ...denyAll,
      findGlobal: (m, n) => (m === 'ok' ? pyCallable(`${m}.${n}`, (args) => (calls.push(args), 'done')) : denyAll.findGlobal(m, n)),
    };
    expect(unpickle(pickle(...global('ok', 'f'), 0x4b, 3, 0x85, 0x52), hooks)).toBe('done');
    expect(calls).toEqual([[3]]);
    expect(() => unpickle(pickle(...global('posix', 'system'), ...str('id'), 0x85, 0x52), hooks)).toThrow(/posix\.system.*not allowed/);
    // STACK_GLOBAL goes through the same hook.
    expect(() => unpickle(pickle(0x8c, 2, ...enc.encode('os'), 0x8c, 6, ...enc.encode('system'), 0x93), hooks)).toThrow(/os\.system/);
    // REDUCE on a plain value (not an allow-listed callable) is refused.
    expect(() => unpickle(pickle(...str('x'), 0x29, 0x52), hooks)).toThrow(/REDUCE on a string/);
  });

  it('refuses object-building opcodes and reports truncation, bad memo and stack underflow', () => {
    expect(() => unpickle(pickle(0x81), denyAll)).toThrow(/opcode 0x81 is not supported/); // NEWOBJ
    expect(() => unpickle(pickle(0x69), denyAll)).toThrow(/opcode 0x69/); // INST
    expect(() => unpickle(new Uint8Array([0x80, 0x02, 0x58, 255, 255, 255, 127]), denyAll)).toThrow(/truncated/);
    expect(() => unpickle(new Uint8Array([0x80, 0x02, 0x4b]), denyAll)).toThrow(FormatError);
    expect(() => unpickle(pickle(0x68, 9), denyAll)).toThrow(/memo entry 9/);
    expect(() => unpickle(pickle(0x28, 0x85), denyAll)).toThrow(/stack underflow/);
    expect(() => unpickle(pickle(0x8b, ...u32(100000)), denyAll)).toThrow(/LONG4/);
    expect(() => unpickle(new Uint8Array([0x80, 0x09]), denyAll)).toThrow(/protocol 9/);
  });
});
