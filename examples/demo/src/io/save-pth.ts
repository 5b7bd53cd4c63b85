import { KilnError, type Tensor } from '@kiln/core';
import { zipSync } from 'fflate';

/**
 * Writes a state dict the way `torch.save(model.state_dict(), path)` does
 * (PyTorch's zip format, pickle protocol 2), so `torch.load` reads it and
 * `model.load_state_dict` takes it: a zip of `archive/data.pkl` (an
 * OrderedDict of `torch._utils._rebuild_tensor_v2` calls on persistent
 * storages), `archive/data/<n>` (each tensor's little-endian bytes) and
 * `archive/version`. float32 tensors become FloatStorage; int32 tensors
 * become LongStorage (torch's `num_batches_tracked` is int64, which Kiln
 * keeps as int32).
 *
 * The pickle is written by hand because it is one fixed shape (no memo, no
 * classes beyond the three globals above); the zip is fflate's.
 */
export async function savePth(stateDict: Record<string, Tensor>): Promise<Uint8Array> {
  const p = new PickleWriter();
  const files: Record<string, Uint8Array> = {};
  p.proto2();
  p.global('collections', 'OrderedDict');
  p.op(EMPTY_TUPLE);
  p.op(REDUCE);
  p.op(MARK);
  let key = 0;
  for (const [name, t] of Object.entries(stateDict)) {
    const storage = String(key++);
    const values = await t.toArray();
    let bytes: Uint8Array;
    let storageType: string;
    if (t.dtype === 'float32') {
      bytes = new Uint8Array(Float32Array.from(values as ArrayLike<number>).buffer);
      storageType = 'FloatStorage';
    } else if (t.dtype === 'int32') {
      bytes = new Uint8Array(BigInt64Array.from(values as ArrayLike<number>, (v) => BigInt(v)).buffer);
      storageType = 'LongStorage';
    } else {
      throw new KilnError('savePth', `cannot save '${name}' of dtype ${t.dtype} (expected float32 or int32)`);
    }
    files[`archive/data/${storage}`] = bytes;
    const shape = [...t.shape];
    const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
    p.unicode(name);
    p.global('torch._utils', '_rebuild_tensor_v2');
    p.op(MARK);
    p.op(MARK); // persistent id ('storage', torch.<Type>Storage, key, 'cpu', numel)
    p.unicode('storage');
    p.global('torch', storageType);
    p.unicode(storage);
    p.unicode('cpu');
    p.int(values.length);
    p.op(TUPLE);
    p.op(BINPERSID);
    p.int(0); // storage offset
    p.tuple(shape);
    p.tuple(strides);
    p.op(NEWFALSE); // requires_grad
    p.global('collections', 'OrderedDict'); // backward hooks
    p.op(EMPTY_TUPLE);
    p.op(REDUCE);
    p.op(TUPLE);
    p.op(REDUCE);
  }
  p.op(SETITEMS);
  p.op(STOP);
  files['archive/data.pkl'] = p.bytes();
  files['archive/version'] = new TextEncoder().encode('3\n');
  // Stored, not deflated: PyTorch's reader maps records straight from the archive.
  return zipSync(files, { level: 0 });
}

const MARK = 0x28; // (
const STOP = 0x2e; // .
const TUPLE = 0x74; // t
const EMPTY_TUPLE = 0x29; // )
const REDUCE = 0x52; // R
const SETITEMS = 0x75; // u
const BINPERSID = 0x51; // Q
const NEWFALSE = 0x89;

/** The few pickle opcodes a state dict needs, appended to a growing buffer. */
class PickleWriter {
  private chunks: number[] = [];

  op(code: number): void {
    this.chunks.push(code);
  }

  proto2(): void {
    this.chunks.push(0x80, 2);
  }

  /** GLOBAL: `c<module>\n<name>\n`. */
  global(module: string, name: string): void {
    this.op(0x63);
    this.raw(new TextEncoder().encode(`${module}\n${name}\n`));
  }

  /** BINUNICODE: 'X', uint32 length, UTF-8. */
  unicode(s: string): void {
    const b = new TextEncoder().encode(s);
    this.op(0x58);
    this.u32(b.length);
    this.raw(b);
  }

  /** BININT1 for 0..255, BININT (int32) up to 2^31 - 1. */
  int(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) throw new KilnError('savePth', `cannot pickle ${v} as a 32-bit int`);
    if (v < 256) this.chunks.push(0x4b, v);
    else {
      this.op(0x4a);
      this.u32(v);
    }
  }

  tuple(values: readonly number[]): void {
    if (values.length === 0) return this.op(EMPTY_TUPLE);
    this.op(MARK);
    for (const v of values) this.int(v);
    this.op(TUPLE);
  }

  private u32(v: number): void {
    this.chunks.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  }

  private raw(b: Uint8Array): void {
    for (const x of b) this.chunks.push(x);
  }

  bytes(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}
