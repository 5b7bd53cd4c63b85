// .pth loading checked against files torch.save wrote (tests/reference/gen_resnet_io.py):
// every key, shape, dtype and byte of every tensor must equal PyTorch's.
import { existsSync, rmSync } from 'node:fs';
import { expect, it } from 'vitest';
import { FormatError, loadPth, PyOrderedDict, type RawTensor } from '../src/io/index.js';
import { describeWithReference, refBytes, refJson, sha256, type ExpectedTensor } from './helpers/reference.js';

type Expected = { files: Record<string, Record<string, ExpectedTensor>> };

/** The dtype Kiln widens a file dtype to by default. */
const WIDENED: Record<string, string> = { float16: 'float32', bfloat16: 'float32', float64: 'float32', int64: 'int32', int16: 'int32' };

function expectTensor(t: RawTensor, e: ExpectedTensor, key: string, widened: boolean): void {
  expect(t.shape, key).toEqual(e.shape);
  expect(t.data.length, key).toBe(e.shape.reduce((a, b) => a * b, 1));
  if (widened) {
    expect(t.dtype, key).toBe(WIDENED[e.dtype] ?? e.dtype);
    expect(sha256(t.data), `${key} bytes`).toBe(e.sha256Widened);
  } else {
    expect(t.dtype, key).toBe(e.dtype);
    expect(sha256(t.data), `${key} bytes`).toBe(e.sha256);
  }
}

describeWithReference('loadPth on files written by torch.save', () => {
  const expected = refJson<Expected>('weights/expected.json').files;

  it('reads a seeded torchvision resnet18 state dict: every key in order, every tensor byte-exact', () => {
    const want = expected['resnet18.pth']!;
    const file = loadPth(refBytes('weights/resnet18.pth'));
    expect([...file.stateDict.keys()]).toEqual(Object.keys(want));
    expect(file.stateDict.size).toBe(122);
    for (const [key, t] of file.stateDict) expectTensor(t, want[key]!, key, true);
    // num_batches_tracked (int64 scalar) narrows to an int32 scalar.
    const nbt = file.stateDict.get('bn1.num_batches_tracked')!;
    expect(nbt).toMatchObject({ dtype: 'int32', shape: [] });
    expect(Array.from(nbt.data as Int32Array)).toEqual([0]);
  });

  it('keeps the OrderedDict _metadata that BUILD attaches (the torchvision file layout)', () => {
    const file = loadPth(refBytes('weights/resnet18.pth'));
    expect(file.object).toBeInstanceOf(PyOrderedDict);
    const meta = file.metadata as Map<string, Map<string, unknown>>;
    expect(meta).toBeInstanceOf(Map);
    expect(meta.get('')?.get('version')).toBe(1);
    expect(meta.get('bn1')?.get('version')).toBe(2); // BatchNorm's state-dict version
    expect(meta.has('layer4.1.conv2')).toBe(true);
  });

  it('keepDtype returns int64 as BigInt64Array with the bytes PyTorch wrote', () => {
    const want = expected['resnet18.pth']!;
    const file = loadPth(refBytes('weights/resnet18.pth'), { keepDtype: true });
    for (const [key, t] of file.stateDict) expectTensor(t, want[key]!, key, false);
    expect(file.stateDict.get('layer1.0.bn1.num_batches_tracked')!.data).toBeInstanceOf(BigInt64Array);
  });

  it('reads fp16 weights (archive/ prefix, plain dict): exact float32 values by default, raw half bits with keepDtype', () => {
    const want = expected['resnet18_subset_fp16.pth']!;
    const bytes = refBytes('weights/resnet18_subset_fp16.pth');
    const wide = loadPth(bytes);
    const raw = loadPth(bytes, { keepDtype: true });
    expect([...wide.stateDict.keys()]).toEqual(Object.keys(want));
    for (const [key, t] of wide.stateDict) expectTensor(t, want[key]!, key, true);
    for (const [key, t] of raw.stateDict) expectTensor(t, want[key]!, key, false);
    expect(raw.stateDict.get('conv1.weight')!.dtype).toBe('float16');
  });

  it('reads every storage dtype (f32 f64 f16 bf16 i64 i32 i16 i8 u8 bool, 0-d, empty)', () => {
    const want = expected['dtypes.pth']!;
    const bytes = refBytes('weights/dtypes.pth');
    for (const [key, t] of loadPth(bytes).stateDict) expectTensor(t, want[key]!, key, true);
    for (const [key, t] of loadPth(bytes, { keepDtype: true }).stateDict) expectTensor(t, want[key]!, key, false);
  });

  it('rebuilds views sharing one storage: offsets, transposes, steps, 0-d, stride 0, fp16 views', () => {
    const want = expected['views.pth']!;
    const file = loadPth(refBytes('weights/views.pth'), { keepDtype: true });
    for (const key of 'abcdefghi') expectTensor(file.stateDict.get(key)!, want[key]!, key, false);
    // Non-tensor values come back as plain data; the tensor inside the list is rebuilt too.
    const list = (file.object as Map<string, unknown>).get('list') as [RawTensor, number, string];
    expect(list.slice(1)).toEqual([7, 'x']);
    expectTensor(list[0], (want['list'] as unknown as { value: [ExpectedTensor] }).value[0], 'list[0]', false);
    // Each result is its own copy: writing one view leaves the others alone.
    (file.stateDict.get('a')!.data as Float32Array)[1] = 99;
    expect((file.stateDict.get('b')!.data as Float32Array)[0]).toBe(0.5);
  });

  it('refuses to narrow an int64 value outside int32, and keeps it with keepDtype', () => {
    const bytes = refBytes('weights/int64_big.pth');
    expect(() => loadPth(bytes)).toThrow(/1099511627776.*int32.*keepDtype/);
    const big = loadPth(bytes, { keepDtype: true }).stateDict.get('big')!;
    expect(Array.from(big.data as BigInt64Array)).toEqual([2n ** 40n, -5n]);
  });

  it('rejects the legacy (pre-1.6) format with a message saying how to convert', () => {
    expect(() => loadPth(refBytes('weights/legacy.pth'))).toThrow(/legacy \(pre-1\.6\).*torch >= 1\.6/);
  });
});

describeWithReference('loadPth on hostile and damaged files', () => {
  const hostile = refJson<{ marker: string; files: Record<string, string[]> }>('hostile/index.json');
  const pthFiles = Object.entries(hostile.files).filter(([name]) => name.endsWith('.pth'));

  it.each(pthFiles)('rejects %s with a FormatError naming the problem', (name, words) => {
    rmSync(hostile.marker, { force: true });
    let error: unknown;
    try {
      loadPth(refBytes(`hostile/${name}`));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(FormatError);
    const message = (error as Error).message;
    expect(message.startsWith('loadPth: ')).toBe(true);
    for (const w of words) expect(message).toContain(w);
    expect(existsSync(hostile.marker), 'nothing was executed').toBe(false);
  });

  it('ends every truncation and byte flip of a real checkpoint in a result or a FormatError, never another error or a hang', () => {
    const good = refBytes('weights/views.pth');
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const variants: Uint8Array[] = [];
    for (let n = 0; n < good.length; n += 7) variants.push(good.subarray(0, n));
    for (let k = 0; k < 600; k++) {
      const v = good.slice();
      for (let j = 0; j < 3; j++) v[Math.floor(rand() * v.length)] = Math.floor(rand() * 256);
      variants.push(v);
    }
    for (const v of variants) {
      try {
        loadPth(v);
      } catch (e) {
        if (!(e instanceof FormatError)) throw e;
      }
    }
  });
});
