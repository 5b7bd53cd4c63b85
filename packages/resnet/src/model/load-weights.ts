import { KilnError, bitsToFloat32, fromArray, type Tensor } from '@kiln/core';
import type { LoadResult, Module } from '@kiln/nn';
import { FormatError, loadPth, readSafetensors, widenToKiln, type RawTensor, type WidenOptions } from '../io/index.js';

/** Which reader a weight file needs. */
export type WeightsFormat = 'pth' | 'safetensors';

/** Options of {@link loadWeights}. */
export interface LoadWeightsOptions extends WidenOptions {
  /** Every model key must be in the file and every file key in the model (default true), as load_state_dict. */
  strict?: boolean;
  /** Force a reader instead of detecting it from the bytes. */
  format?: WeightsFormat;
}

/** The reader `bytes` needs: torch.save files are zip archives, safetensors start with a little-endian header length and `{`. */
export function detectWeightsFormat(bytes: Uint8Array): WeightsFormat | null {
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) return 'pth';
  if (bytes.length >= 9 && bytes[8] === 0x7b) return 'safetensors';
  return null;
}

const isRaw = (v: unknown): v is RawTensor =>
  typeof v === 'object' && v !== null && 'dtype' in v && 'shape' in v && 'data' in v && ArrayBuffer.isView((v as RawTensor).data);

/**
 * The state dict inside a torch.save object: the top-level dict itself, or
 * a training checkpoint's `state_dict` / `model` entry.
 */
function pthStateDict(file: ReturnType<typeof loadPth>, source: string, keepDtype: boolean, widen: WidenOptions): Map<string, RawTensor> {
  if (file.stateDict.size > 0) return file.stateDict;
  const obj = file.object;
  if (obj instanceof Map) {
    for (const key of ['state_dict', 'model', 'model_state_dict']) {
      const inner = obj.get(key);
      if (inner instanceof Map && inner.size > 0 && [...inner.values()].every(isRaw)) {
        return new Map([...inner].map(([k, v]) => [String(k), keepDtype ? (v as RawTensor) : widenToKiln(v as RawTensor, 'loadWeights', String(k), widen)]));
      }
    }
  }
  throw new FormatError('loadWeights', `${source} holds no state dict (expected a dict of tensors, or a checkpoint with a 'state_dict' or 'model' entry)`);
}

/** Options of {@link readWeights}. */
export interface ReadWeightsOptions extends WidenOptions {
  /** Force a reader instead of detecting it from the bytes. */
  format?: WeightsFormat;
  /** Names the file in error messages. */
  source?: string;
  /** Keep the file's dtypes (int64 as BigInt64Array, ...) instead of Kiln's. */
  keepDtype?: boolean;
}

/**
 * Reads the tensors of a weight file, keyed as in PyTorch, in Kiln's dtypes
 * (int64 `num_batches_tracked` becomes int32, float16/64 become float32)
 * unless `keepDtype`; `{ float16: 'keep' }` keeps float16 tensors float16.
 * @throws FormatError when the file is neither a torch.save zip nor safetensors, or is malformed.
 */
export function readWeights(bytes: Uint8Array, opts: ReadWeightsOptions = {}): Map<string, RawTensor> {
  const source = opts.source ?? 'the weights';
  const format = opts.format ?? detectWeightsFormat(bytes);
  const keepDtype = opts.keepDtype ?? false;
  const widen: WidenOptions = { float16: opts.float16 };
  if (format === 'pth') return pthStateDict(loadPth(bytes, { keepDtype, ...widen }), source, keepDtype, widen);
  if (format === 'safetensors') return readSafetensors(bytes, { keepDtype, ...widen }).tensors;
  throw new FormatError('loadWeights', `${source} is neither a PyTorch .pth (zip) nor a .safetensors file (first bytes ${[...bytes.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ')})`);
}

/**
 * Reads a file (Node only). `node:fs/promises` is imported on demand through
 * a variable specifier, so browser bundlers neither follow nor reject it; in
 * a page a path is refused with a message saying to pass the file's bytes.
 */
export async function readFileBytes(path: string, op = 'loadWeights'): Promise<Uint8Array> {
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  if (typeof proc?.versions?.node !== 'string') {
    throw new KilnError(op, `cannot read '${path}': file paths need Node; in a browser pass the file's bytes (new Uint8Array(await file.arrayBuffer()))`);
  }
  const fsModule = 'node:fs/promises';
  const { readFile } = (await import(/* @vite-ignore */ fsModule)) as typeof import('node:fs/promises');
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    throw new KilnError(op, `cannot read '${path}': ${why}`);
  }
}

/**
 * Loads PyTorch weights into `model` (torchvision's resnet18-f37072fd.pth,
 * a `torch.save(model.state_dict())` file, or .safetensors), from a path
 * (Node only) or the file's bytes (anywhere, a browser included). Tensors are created on the device of the
 * model's parameters. Like PyTorch's `load_state_dict`, strict loading
 * fails listing every missing key, unexpected key and shape mismatch at once.
 * Values go into the model's parameters and buffers in their dtypes (as
 * `load_state_dict` copies); for fp16 weights that stay fp16, make the model
 * float16 first and read the file's float16 tensors as they are:
 *
 * ```ts
 * const model = resnet18();
 * await loadWeights(model, 'resnet18.pth');
 * const half = resnet18().half();
 * await loadWeights(half, 'resnet18_fp16.pth', { float16: 'keep' }); // no float32 copy on the way
 * ```
 * @returns the missing and unexpected keys (both empty under strict loading).
 */
export async function loadWeights(model: Module, source: Uint8Array | string, opts: LoadWeightsOptions = {}): Promise<LoadResult> {
  const name = typeof source === 'string' ? `'${source}'` : 'the weights';
  const bytes = typeof source === 'string' ? await readFileBytes(source) : source;
  return loadRawWeights(model, readWeights(bytes, { format: opts.format, source: name, float16: opts.float16 }), opts);
}

/** A Kiln tensor of a widened raw tensor (float16 data are bit patterns: their values are exact in float32). */
function tensorOf(t: RawTensor, device: string | undefined): Tensor {
  const values = t.dtype === 'float16' ? bitsToFloat32('float16', t.data as Uint16Array) : (t.data as ArrayLike<number>);
  return fromArray(values, t.shape, { dtype: t.dtype as Tensor['dtype'], device });
}

/** Copies tensors read by {@link readWeights} into `model` on its device (the second half of {@link loadWeights}). */
export function loadRawWeights(model: Module, raw: Map<string, RawTensor>, opts: { strict?: boolean } = {}): LoadResult {
  const device = model.parameters()[0]?.device ?? model.buffers()[0]?.device;
  const tensors = new Map<string, Tensor>();
  try {
    for (const [key, t] of raw) tensors.set(key, tensorOf(t, device));
    return model.loadStateDict(tensors, { strict: opts.strict ?? true });
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}
