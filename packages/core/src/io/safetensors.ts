import { FormatError } from './errors.js';
import { rawFromBytes, rawItemSize, rawToBytes, shapeSize, widenToKiln, type RawDType, type RawTensor, type WidenOptions } from './raw-tensor.js';

/**
 * safetensors read and write (https://github.com/huggingface/safetensors):
 *
 *     u64 LE  N            header length
 *     N bytes JSON         {"__metadata__": {str: str}?, name: {dtype, shape, data_offsets: [begin, end]}, ...}
 *     ...     data         each tensor's row-major little-endian bytes at data[begin:end]
 *
 * Validation follows the reference (Rust) reader: header size capped, JSON an
 * object, every dtype known, every byte count equal to shape x item size,
 * tensors tiling the data exactly (no gaps, no overlap, nothing after). The
 * writer lays files out byte for byte as the Rust crate does, so a file
 * Kiln writes is the file Python's `safetensors.torch.save_file` would.
 *
 * Depends only on raw-tensor.ts and errors.ts, so it can move to core/io as is.
 */

/** The reference reader's cap on the header, so a forged length cannot make us allocate gigabytes. */
export const SAFETENSORS_MAX_HEADER = 100_000_000;

/** safetensors dtype names for the dtypes Kiln reads; listed in the Rust `Dtype` enum order the writer sorts by. */
const DTYPES: ReadonlyArray<readonly [string, RawDType]> = [
  ['BOOL', 'bool'],
  ['U8', 'uint8'],
  ['I8', 'int8'],
  ['I16', 'int16'],
  ['F16', 'float16'],
  ['BF16', 'bfloat16'],
  ['I32', 'int32'],
  ['F32', 'float32'],
  ['F64', 'float64'],
  ['I64', 'int64'],
];
const FROM_NAME = new Map(DTYPES);
const TO_NAME = new Map(DTYPES.map(([name, dtype]) => [dtype, name]));
const ORDER = new Map(DTYPES.map(([name], i) => [name, i]));

/** What {@link readSafetensors} returns. */
export interface SafetensorsFile {
  /** Tensors in data order (the order the file stores them). */
  tensors: Map<string, RawTensor>;
  /** The `__metadata__` string map, when present. */
  metadata?: Record<string, string>;
}

/** Options for {@link readSafetensors}. */
export interface ReadSafetensorsOptions extends WidenOptions {
  /** Keep file dtypes (F16/BF16 as raw bits, I64 as BigInt64Array) instead of widening to Kiln's (see `widenToKiln`). */
  keepDtype?: boolean;
}

interface Entry {
  name: string;
  dtype: RawDType;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Parses a safetensors file.
 * @throws FormatError when the header is too large, runs past the file, is
 *   not a JSON object, names an unknown dtype, or its offsets do not tile
 *   the data exactly.
 */
export function readSafetensors(bytes: Uint8Array, opts: ReadSafetensorsOptions = {}): SafetensorsFile {
  const op = 'readSafetensors';
  if (bytes.byteLength < 8) throw new FormatError(op, `file is ${bytes.byteLength} bytes, shorter than the 8-byte header length`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(SAFETENSORS_MAX_HEADER)) throw new FormatError(op, `header length ${n} exceeds the ${SAFETENSORS_MAX_HEADER}-byte limit`);
  const headerLen = Number(n);
  if (8 + headerLen > bytes.byteLength) {
    throw new FormatError(op, `header length ${headerLen} runs past the end of the ${bytes.byteLength}-byte file`);
  }
  let header: unknown;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch (e) {
    throw new FormatError(op, `header is not valid UTF-8 (${(e as Error).message})`);
  }
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new FormatError(op, `header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new FormatError(op, 'header JSON must be an object of tensor entries');
  }
  // JSON.parse keeps the last of two equal keys: a second entry could silently replace a tensor.
  const duplicate = firstDuplicateKey(text);
  if (duplicate !== null) throw new FormatError(op, `header names '${duplicate}' twice`);

  let metadata: Record<string, string> | undefined;
  const entries: Entry[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(info, op);
      continue;
    }
    entries.push(parseEntry(name, info, op));
  }

  const data = bytes.subarray(8 + headerLen);
  entries.sort((a, b) => a.begin - b.begin);
  let expected = 0;
  for (const e of entries) {
    if (e.begin < expected) throw new FormatError(op, `tensor '${e.name}' (data_offsets [${e.begin}, ${e.end}]) overlaps the tensor before it, which ends at ${expected}`);
    if (e.begin > expected) throw new FormatError(op, `gap in the data: tensor '${e.name}' starts at ${e.begin}, the previous one ends at ${expected}`);
    if (e.end > data.byteLength) throw new FormatError(op, `data_offsets [${e.begin}, ${e.end}] of '${e.name}' run past the end of the ${data.byteLength}-byte data section`);
    expected = e.end;
  }
  if (expected !== data.byteLength) throw new FormatError(op, `${data.byteLength - expected} bytes of data after the last tensor; a safetensors file must end with its last tensor`);

  const tensors = new Map<string, RawTensor>();
  for (const e of entries) {
    const raw: RawTensor = { dtype: e.dtype, shape: e.shape, data: rawFromBytes(e.dtype, data.subarray(e.begin, e.end)) };
    tensors.set(e.name, opts.keepDtype ? raw : widenToKiln(raw, op, e.name, opts));
  }
  return metadata ? { tensors, metadata } : { tensors };
}

function parseMetadata(info: unknown, op: string): Record<string, string> {
  if (typeof info !== 'object' || info === null || Array.isArray(info) || !Object.values(info).every((v) => typeof v === 'string')) {
    throw new FormatError(op, '__metadata__ must be an object of string values');
  }
  return { ...(info as Record<string, string>) };
}

/**
 * The first key that occurs twice at the top level of the JSON object
 * `text` (already known to parse), or null. Scans strings and nesting only.
 */
function firstDuplicateKey(text: string): string | null {
  const seen = new Set<string>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (seen.has(key)) return key;
        seen.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === '{' || c === '[') {
      depth++;
      expectKey = depth === 1;
    } else if (c === '}' || c === ']') {
      depth--;
    } else if (c === ',' && depth === 1) {
      expectKey = true;
    }
  }
  return null;
}

/** True when `s` holds a UTF-16 surrogate without its pair (a `\\ud800` escape): no UTF-8 encoding exists. */
function hasLoneSurrogate(s: string): boolean {
  return /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}

function parseEntry(name: string, info: unknown, op: string): Entry {
  const bad = (what: string): never => {
    throw new FormatError(op, `tensor '${name}': ${what}`);
  };
  if (hasLoneSurrogate(name)) throw new FormatError(op, `a tensor name is not valid UTF-8 (it holds an unpaired surrogate escape): ${JSON.stringify(name)}`);
  if (typeof info !== 'object' || info === null) return bad('entry is not an object');
  const { dtype: dt, shape, data_offsets: offsets } = info as Record<string, unknown>;
  const dtype = typeof dt === 'string' ? FROM_NAME.get(dt) : undefined;
  if (!dtype) return bad(`unsupported dtype '${String(dt)}' (Kiln reads ${[...FROM_NAME.keys()].join(', ')})`);
  const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (!Array.isArray(shape) || !shape.every(isCount)) return bad(`bad shape ${JSON.stringify(shape)}`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
    return bad(`bad data_offsets ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  const nbytes = shapeSize(shape) * rawItemSize(dtype);
  if (!Number.isSafeInteger(nbytes)) bad(`shape [${shape.join(', ')}] of ${dt} is too large to address`);
  if (nbytes !== end - begin) bad(`shape [${shape.join(', ')}] of ${dt} needs ${nbytes} bytes, but data_offsets [${begin}, ${end}] span ${end - begin}`);
  return { name, dtype, shape: [...shape], begin, end };
}

/**
 * Serialises tensors (and optional string metadata) to safetensors bytes,
 * laid out as the Rust crate writes them: tensors sorted by dtype (widest
 * first, in the crate's enum order) then by name, compact header JSON
 * padded with spaces to a multiple of 8 bytes so the data is 8-byte aligned.
 * @throws FormatError when a tensor's data length does not match its shape
 *   or its array type does not match its dtype, or metadata is not strings.
 */
export function writeSafetensors(tensors: Map<string, RawTensor> | Record<string, RawTensor>, metadata?: Record<string, string>): Uint8Array {
  const op = 'writeSafetensors';
  const items = [...(tensors instanceof Map ? tensors : Object.entries(tensors))];
  for (const [name, t] of items) {
    if (name === '__metadata__') throw new FormatError(op, "'__metadata__' is reserved and cannot name a tensor");
    if (!TO_NAME.has(t.dtype)) throw new FormatError(op, `tensor '${name}' has unsupported dtype '${t.dtype}'`);
    if (t.data.length !== shapeSize(t.shape) || t.data.BYTES_PER_ELEMENT !== rawItemSize(t.dtype)) {
      throw new FormatError(op, `tensor '${name}': ${t.data.constructor.name}(${t.data.length}) does not hold a ${t.dtype} tensor of shape [${t.shape.join(', ')}]`);
    }
  }
  if (metadata && !Object.values(metadata).every((v) => typeof v === 'string')) {
    throw new FormatError(op, 'metadata values must be strings');
  }
  const order = (t: RawTensor) => ORDER.get(TO_NAME.get(t.dtype)!)!;
  items.sort(([an, a], [bn, b]) => order(b) - order(a) || (an < bn ? -1 : an > bn ? 1 : 0));

  // The JSON is assembled by hand: a JS object would move integer-like names ("0") to the front.
  const parts: string[] = [];
  if (metadata) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  let offset = 0;
  for (const [name, t] of items) {
    const end = offset + t.data.byteLength;
    parts.push(`${JSON.stringify(name)}:{"dtype":"${TO_NAME.get(t.dtype)}","shape":${JSON.stringify(t.shape)},"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLen = Math.ceil(json.byteLength / 8) * 8;

  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.byteLength, 8 + headerLen);
  let pos = 8 + headerLen;
  for (const [, t] of items) {
    out.set(rawToBytes(t.data), pos);
    pos += t.data.byteLength;
  }
  return out;
}
