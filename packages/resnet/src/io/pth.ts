import { unzipSync } from 'fflate';
import { FormatError } from '@kiln/core';
import { allocRaw, rawFromBytes, rawItemSize, widenToKiln, type RawArray, type RawDType, type RawTensor, type WidenOptions } from '@kiln/core';
import { pyCallable, typeName, unpickle, type UnpicklerHooks } from './unpickler.js';

/**
 * Reader for PyTorch's zip checkpoint format, what `torch.save(obj, f)` has
 * written since torch 1.6: `<top>/data.pkl` (a pickle whose tensors point at
 * storages through persistent ids), `<top>/data/<key>` (each storage's raw
 * little-endian bytes, stored uncompressed), `<top>/version`, and in torch 2
 * `<top>/byteorder`. `<top>` is the saved file's stem, or `archive`.
 *
 * Safety: the pickle is read by {@link unpickle} with an allow-list of the
 * globals a state dict needs (OrderedDict, tensor/parameter rebuilders,
 * storage classes); anything else, e.g. `posix.system`, fails naming it.
 * Nothing is ever executed.
 */

const OP = 'loadPth';

/** Options for {@link loadPth}. */
export interface LoadPthOptions extends WidenOptions {
  /**
   * Keep each tensor in the file's dtype (float16/bfloat16 as raw bits,
   * int64 as BigInt64Array) instead of widening to Kiln's dtypes with
   * {@link widenToKiln}. Default false.
   */
  keepDtype?: boolean;
  /** Largest total uncompressed archive size accepted, in bytes. Default 4 GiB. */
  maxBytes?: number;
  /**
   * Largest element count of one tensor. A view with a zero stride can
   * describe far more elements than its storage holds; this bounds what a
   * hostile file can make us allocate. Default 2^28.
   */
  maxTensorElements?: number;
}

/** An OrderedDict from the pickle; `attributes` holds what BUILD set (a state dict's `_metadata`). */
export class PyOrderedDict extends Map<unknown, unknown> {
  /** Instance attributes set by BUILD, e.g. `_metadata` (per-module state-dict versions). */
  readonly attributes = new Map<string, unknown>();
}

/** What {@link loadPth} returns. */
export interface PthFile {
  /**
   * The tensors of the top-level dict in file order, keyed exactly as in
   * PyTorch (`layer1.0.conv1.weight`, `bn1.num_batches_tracked`). Each is a
   * fresh contiguous copy: views that shared a storage in PyTorch do not
   * share memory here. Empty when the file's top level is not a dict.
   */
  stateDict: Map<string, RawTensor>;
  /**
   * The whole unpickled object: dicts as Map (OrderedDict as
   * {@link PyOrderedDict}), lists and tuples as arrays, tensors as RawTensor.
   */
  object: unknown;
  /** The state dict's `_metadata` attribute, when the file has one. */
  metadata?: unknown;
}

type StorageClass = { kind: 'storage-class'; dtype: RawDType };
/** One decoded storage; a class so a pickle cannot forge one (REDUCE args are checked with instanceof). */
class Storage {
  constructor(
    readonly key: string,
    readonly dtype: RawDType,
    readonly data: RawArray,
  ) {}
}

const STORAGE_CLASSES: Record<string, RawDType> = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46];

/**
 * Reads a `.pth` file written by `torch.save` (e.g. torchvision's
 * `resnet18-f37072fd.pth`, an OrderedDict state dict) from its bytes.
 * @throws FormatError for a non-zip or legacy-format file, a damaged zip, a
 *   pickle that is malformed or names a global outside the allow-list, a
 *   missing storage, or a tensor view reaching outside its storage.
 */
export function loadPth(bytes: Uint8Array, opts: LoadPthOptions = {}): PthFile {
  const entries = readArchive(bytes, opts.maxBytes ?? 2 ** 32);
  const names = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (names.length !== 1) {
    throw new FormatError(OP, `expected exactly one '<top>/data.pkl' in the archive, found ${names.length ? names.join(', ') : 'none'} (is this a torch.save file?)`);
  }
  const prefix = names[0]!.slice(0, -'data.pkl'.length);
  const byteorder = entries.get(`${prefix}byteorder`);
  if (byteorder && new TextDecoder().decode(byteorder).trim() !== 'little') {
    throw new FormatError(OP, `the file was saved on a big-endian machine (byteorder '${new TextDecoder().decode(byteorder).trim()}'); Kiln reads little-endian files only`);
  }

  const maxElements = opts.maxTensorElements ?? 2 ** 28;
  const storages = new Map<string, Storage>();
  const tensors = new WeakSet<object>();

  const storage = (pid: unknown): Storage => {
    if (!Array.isArray(pid) || pid.length < 5 || pid[0] !== 'storage') {
      throw new FormatError(OP, `unexpected persistent id ${describe(pid)}; expected ('storage', StorageClass, key, location, numel)`);
    }
    const [, cls, key, , numel] = pid as [string, unknown, unknown, unknown, unknown];
    if (!isStorageClass(cls)) throw new FormatError(OP, `persistent id names ${typeName(cls)}, not a torch storage class`);
    if (typeof key !== 'string' || !/^[\w.-]+$/.test(key)) throw new FormatError(OP, `bad storage key ${describe(key)}`);
    if (!isCount(numel)) throw new FormatError(OP, `storage '${key}' has a bad element count ${describe(numel)}`);
    const cached = storages.get(key);
    if (cached) {
      if (cached.dtype !== cls.dtype || cached.data.length !== numel) {
        throw new FormatError(OP, `storage '${key}' is referenced as ${cached.dtype}[${cached.data.length}] and as ${cls.dtype}[${numel}]`);
      }
      return cached;
    }
    const entry = entries.get(`${prefix}data/${key}`);
    if (!entry) throw new FormatError(OP, `storage entry '${prefix}data/${key}' is missing from the archive`);
    const nbytes = numel * rawItemSize(cls.dtype);
    if (entry.byteLength < nbytes) {
      throw new FormatError(OP, `storage '${prefix}data/${key}' holds ${entry.byteLength} bytes, but the pickle says ${numel} ${cls.dtype} elements (${nbytes} bytes)`);
    }
    const s = new Storage(key, cls.dtype, rawFromBytes(cls.dtype, entry.subarray(0, nbytes)));
    storages.set(key, s);
    return s;
  };

  const rebuildTensor = (args: unknown[]): RawTensor => {
    const [s, offset, size, stride] = args;
    if (!(s instanceof Storage)) throw new FormatError(OP, `_rebuild_tensor expects a storage, got ${typeName(s)}`);
    const raw = gatherView(s, offset, size, stride, maxElements);
    const t = opts.keepDtype ? raw : widenToKiln(raw, OP, `storage ${s.key}`, opts);
    tensors.add(t);
    return t;
  };

  const globals: Record<string, unknown> = {
    'collections.OrderedDict': pyCallable('collections.OrderedDict', (args) => {
      const d = new PyOrderedDict();
      if (args.length === 1 && Array.isArray(args[0])) {
        for (const pair of args[0]) if (Array.isArray(pair) && pair.length === 2) d.set(pair[0], pair[1]);
      } else if (args.length) {
        throw new FormatError(OP, `OrderedDict called with ${args.length} unsupported arguments`);
      }
      return d;
    }),
    'torch._utils._rebuild_tensor_v2': pyCallable('torch._utils._rebuild_tensor_v2', rebuildTensor),
    'torch._utils._rebuild_tensor': pyCallable('torch._utils._rebuild_tensor', rebuildTensor),
    // A saved nn.Parameter: the tensor is all Kiln needs; requires_grad is the model's business.
    'torch._utils._rebuild_parameter': pyCallable('torch._utils._rebuild_parameter', (args) => args[0]),
    'torch._utils._rebuild_parameter_with_state': pyCallable('torch._utils._rebuild_parameter_with_state', (args) => args[0]),
  };
  for (const [name, dtype] of Object.entries(STORAGE_CLASSES)) {
    globals[`torch.${name}`] = { kind: 'storage-class', dtype } satisfies StorageClass;
  }

  const hooks: UnpicklerHooks = {
    findGlobal(module, name) {
      const qualname = `${module}.${name}`;
      if (Object.hasOwn(globals, qualname)) return globals[qualname];
      throw new FormatError(OP, `global '${qualname}' is not allowed in a weight file: Kiln only rebuilds tensors, storages and dicts (allowed: ${Object.keys(globals).join(', ')})`);
    },
    persistentLoad: storage,
    build(obj, state) {
      // torch.save of a state dict BUILDs its OrderedDict with {'_metadata': ...}.
      const dictState = Array.isArray(state) && state.length === 2 ? state[0] : state;
      if (!(obj instanceof PyOrderedDict) || !(dictState instanceof Map)) {
        throw new FormatError(OP, `BUILD of ${typeName(obj)} with ${typeName(state)} is not allowed`);
      }
      for (const [k, v] of dictState) obj.attributes.set(String(k), v);
    },
  };

  const object = unpickle(entries.get(names[0]!)!, hooks, OP);
  const stateDict = new Map<string, RawTensor>();
  if (object instanceof Map) {
    for (const [k, v] of object) if (typeof k === 'string' && typeof v === 'object' && v !== null && tensors.has(v)) stateDict.set(k, v as RawTensor);
  }
  const metadata = object instanceof PyOrderedDict ? object.attributes.get('_metadata') : undefined;
  return metadata === undefined ? { stateDict, object } : { stateDict, object, metadata };
}

/** Unzips with limits: the entry count and declared sizes are checked before anything is inflated. */
function readArchive(bytes: Uint8Array, maxBytes: number): Map<string, Uint8Array> {
  if (startsWith(bytes, LEGACY_MAGIC)) {
    throw new FormatError(OP, "this is PyTorch's legacy (pre-1.6) serialization format, which Kiln does not read; re-save it with torch >= 1.6: torch.save(torch.load(path), new_path)");
  }
  if (!startsWith(bytes, [0x50, 0x4b])) {
    const head = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new FormatError(OP, `not a PyTorch zip checkpoint: expected a zip archive starting with 'PK', got bytes ${head || '(empty file)'}`);
  }
  // A central directory entry takes >= 46 bytes; more entries than that means
  // a forged count, which would otherwise keep fflate looping for a long time.
  const maxEntries = Math.floor(bytes.length / 46);
  let count = 0;
  let total = 0;
  try {
    // A Map, not the plain object fflate returns, so entry names like '__proto__' stay inert.
    return new Map(Object.entries(unzipSync(bytes, {
      filter(file) {
        if (++count > maxEntries) throw new Error(`more entries than a ${bytes.length}-byte archive can hold`);
        total += file.originalSize;
        if (total > maxBytes) throw new Error(`archive expands to more than ${maxBytes} bytes`);
        return true;
      },
    })));
  } catch (e) {
    throw new FormatError(OP, `damaged or unreadable zip archive (${(e as Error).message})`);
  }
}

/** Copies a (possibly strided, offset, overlapping) view of a storage into a contiguous array. */
function gatherView(s: Storage, offset: unknown, size: unknown, stride: unknown, maxElements: number): RawTensor {
  if (!isCount(offset) || !Array.isArray(size) || !Array.isArray(stride) || size.length !== stride.length || !size.every(isCount) || !stride.every(isCount)) {
    throw new FormatError(OP, `bad tensor geometry: offset ${describe(offset)}, size ${describe(size)}, stride ${describe(stride)}`);
  }
  const shape = size as number[];
  const strides = stride as number[];
  let n = 1;
  let last = offset;
  for (let d = 0; d < shape.length; d++) {
    n *= shape[d]!;
    last += (shape[d]! - 1) * strides[d]!;
  }
  if (n > maxElements) throw new FormatError(OP, `tensor of shape [${shape.join(', ')}] has ${n} elements, over the limit of ${maxElements} (maxTensorElements)`);
  if (n > 0 && (!Number.isSafeInteger(last) || last >= s.data.length)) {
    throw new FormatError(OP, `tensor view (offset ${offset}, size [${shape.join(', ')}], stride [${strides.join(', ')}]) reaches element ${last}, outside its storage '${s.key}' of ${s.data.length} elements`);
  }
  // Fast path: a row-major contiguous view (every state-dict parameter) is one slice.
  let expectStride = 1;
  let contiguous = true;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d]! !== 1 && strides[d]! !== expectStride) contiguous = false;
    expectStride *= shape[d]!;
  }
  if (contiguous) return { dtype: s.dtype, shape: [...shape], data: s.data.slice(offset, offset + n) };

  const out = allocRaw(s.dtype, n) as unknown as { [i: number]: number | bigint };
  const src = s.data as unknown as { [i: number]: number | bigint };
  // Odometer over the index space; `p` follows the storage position.
  const nd = shape.length;
  const idx = new Array<number>(nd).fill(0);
  let p = offset;
  for (let i = 0; i < n; i++) {
    out[i] = src[p]!;
    for (let d = nd - 1; d >= 0; d--) {
      p += strides[d]!;
      if (++idx[d]! < shape[d]!) break;
      p -= strides[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
  return { dtype: s.dtype, shape: [...shape], data: out as unknown as RawArray };
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isStorageClass = (v: unknown): v is StorageClass => typeof v === 'object' && v !== null && (v as StorageClass).kind === 'storage-class';
const startsWith = (b: Uint8Array, prefix: number[]) => prefix.every((x, i) => b[i] === x);

function describe(v: unknown): string {
  try {
    const s = JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}` : x));
    return s === undefined ? typeName(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
  } catch {
    return typeName(v);
  }
}
