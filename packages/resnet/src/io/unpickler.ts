import { FormatError } from '@kiln/core';

/**
 * A restricted pickle reader: a stack machine over the opcodes of pickle
 * protocols 2-5 that `torch.save` (and Python's pickler for plain data)
 * emits. It never imports or calls anything by itself: a GLOBAL / STACK_GLOBAL
 * is handed to `hooks.findGlobal`, which returns a value from an allow-list or
 * throws, and REDUCE only calls {@link PyCallable}s that hook returned.
 * Opcodes that build arbitrary objects (INST, OBJ, NEWOBJ, EXT*) and the
 * protocol-0 text opcodes are rejected.
 *
 * Python values map to: None -> null, bool, int -> number (bigint beyond
 * 2^53), float -> number, str -> string, bytes -> Uint8Array, list and tuple ->
 * array, dict -> Map, set -> Set.
 *
 * Every opcode consumes at least one byte and every length is checked
 * against the bytes left, so a hostile pickle ends in a FormatError, never a
 * hang or an allocation larger than the input.
 */

/** A Python callable the allow-list exposes to REDUCE. */
export interface PyCallable {
  /** Marks the value as a callable the unpickler may apply. */
  readonly kind: 'callable';
  /** `module.name`, for error messages. */
  readonly qualname: string;
  /** Applies it to the pickle's arguments. */
  call(args: unknown[]): unknown;
}

/** What {@link unpickle} asks its caller for. */
export interface UnpicklerHooks {
  /** Resolves GLOBAL `module name`; must throw for anything not allow-listed. */
  findGlobal(module: string, name: string): unknown;
  /** Resolves a BINPERSID id (torch: a storage reference tuple). */
  persistentLoad(pid: unknown): unknown;
  /** Applies BUILD's `state` to `obj`; absent or throwing means BUILD is refused. */
  build?(obj: unknown, state: unknown): void;
}

const OP = {
  MARK: 0x28, STOP: 0x2e, POP: 0x30, POP_MARK: 0x31, DUP: 0x32,
  BININT: 0x4a, BININT1: 0x4b, BININT2: 0x4d, NONE: 0x4e, BINPERSID: 0x51, REDUCE: 0x52,
  BINSTRING: 0x54, SHORT_BINSTRING: 0x55, BINUNICODE: 0x58, EMPTY_LIST: 0x5d,
  APPEND: 0x61, BUILD: 0x62, GLOBAL: 0x63, DICT: 0x64, APPENDS: 0x65, BINGET: 0x68,
  LONG_BINGET: 0x6a, LIST: 0x6c, BINPUT: 0x71, LONG_BINPUT: 0x72, SETITEM: 0x73,
  TUPLE: 0x74, SETITEMS: 0x75, EMPTY_DICT: 0x7d, EMPTY_TUPLE: 0x29, BINFLOAT: 0x47,
  BINBYTES: 0x42, SHORT_BINBYTES: 0x43,
  PROTO: 0x80, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87, NEWTRUE: 0x88, NEWFALSE: 0x89,
  LONG1: 0x8a, LONG4: 0x8b,
  SHORT_BINUNICODE: 0x8c, BINUNICODE8: 0x8d, BINBYTES8: 0x8e, EMPTY_SET: 0x8f,
  ADDITEMS: 0x90, FROZENSET: 0x91, STACK_GLOBAL: 0x93, MEMOIZE: 0x94, FRAME: 0x95,
} as const;

const NAMES = new Map<number, string>(Object.entries(OP).map(([k, v]) => [v, k]));

const utf8 = new TextDecoder('utf-8', { fatal: true });
const latin1 = new TextDecoder('latin1');

/**
 * Unpickles `bytes` (one pickle, up to its STOP) with the given hooks.
 * @throws FormatError naming the opcode and byte offset for malformed,
 *   truncated or disallowed input.
 */
export function unpickle(bytes: Uint8Array, hooks: UnpicklerHooks, op = 'unpickle'): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;
  let at = 0; // offset of the opcode being run, for messages

  const fail = (msg: string): never => {
    throw new FormatError(op, `bad pickle: ${msg} (at byte ${at})`);
  };
  const need = (n: number): number => {
    if (!Number.isSafeInteger(n) || n < 0 || pos + n > bytes.length) {
      fail(`needs ${n} more bytes but ${bytes.length - pos} remain (truncated pickle?)`);
    }
    const start = pos;
    pos += n;
    return start;
  };
  const u8 = () => bytes[need(1)]!;
  const u16 = () => view.getUint16(need(2), true);
  const u32 = () => view.getUint32(need(4), true);
  const u64 = () => {
    const v = view.getBigUint64(need(8), true);
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? fail(`length ${v} is too large`) : Number(v);
  };
  const take = (n: number) => bytes.subarray(need(n), pos);
  const text = (n: number) => {
    const raw = take(n);
    try {
      return utf8.decode(raw);
    } catch {
      return fail('string is not valid UTF-8');
    }
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail('GLOBAL name has no terminating newline (truncated pickle?)');
    return latin1.decode(take(end - pos + 1)).slice(0, -1);
  };
  // Values below the innermost MARK belong to an enclosing frame (Python's metastack).
  const floor = () => (marks.length ? marks[marks.length - 1]! : 0);
  const pop = () => (stack.length > floor() ? stack.pop() : fail('stack underflow'));
  const top = () => (stack.length > floor() ? stack[stack.length - 1] : fail('stack underflow'));
  const popMark = (): unknown[] => {
    const m = marks.pop();
    if (m === undefined) return fail('no MARK on the stack');
    return stack.splice(m);
  };
  const memoGet = (i: number) => (memo.has(i) ? memo.get(i) : fail(`memo entry ${i} was never stored`));
  const asMap = (o: unknown) => (o instanceof Map ? o : fail(`SETITEM(S) on a ${typeName(o)}, not a dict`));
  const asList = (o: unknown) => (Array.isArray(o) ? o : fail(`APPEND(S) on a ${typeName(o)}, not a list`));
  const global = (module: string, name: string) => hooks.findGlobal(module, name);

  for (;;) {
    at = pos;
    const code = u8();
    switch (code) {
      case OP.PROTO: {
        const v = u8();
        if (v > 5) fail(`pickle protocol ${v} is newer than 5`);
        break;
      }
      case OP.FRAME: u64(); break; // frames only group bytes for buffered readers
      case OP.STOP: {
        const result = pop();
        if (stack.length || marks.length) fail('STOP with values left on the stack');
        return result;
      }
      case OP.MARK: marks.push(stack.length); break;
      case OP.POP: pop(); break;
      case OP.POP_MARK: popMark(); break;
      case OP.DUP: stack.push(top()); break;
      case OP.NONE: stack.push(null); break;
      case OP.NEWTRUE: stack.push(true); break;
      case OP.NEWFALSE: stack.push(false); break;
      case OP.BININT: stack.push(view.getInt32(need(4), true)); break;
      case OP.BININT1: stack.push(u8()); break;
      case OP.BININT2: stack.push(u16()); break;
      case OP.LONG1: stack.push(readLong(take(u8()))); break;
      case OP.LONG4: {
        // BigInt assembly is quadratic in length; no tensor file needs > 64 bytes.
        const n = u32();
        stack.push(n <= 64 ? readLong(take(n)) : fail(`LONG4 of ${n} bytes is too long`));
        break;
      }
      case OP.BINFLOAT: stack.push(view.getFloat64(need(8), false)); break; // big-endian, per pickle
      case OP.BINUNICODE: stack.push(text(u32())); break;
      case OP.SHORT_BINUNICODE: stack.push(text(u8())); break;
      case OP.BINUNICODE8: stack.push(text(u64())); break;
      // Python 2 str: torch files from py2 era; read as latin-1 text.
      case OP.BINSTRING: stack.push(latin1.decode(take(u32()))); break;
      case OP.SHORT_BINSTRING: stack.push(latin1.decode(take(u8()))); break;
      case OP.BINBYTES: stack.push(take(u32()).slice()); break;
      case OP.SHORT_BINBYTES: stack.push(take(u8()).slice()); break;
      case OP.BINBYTES8: stack.push(take(u64()).slice()); break;
      case OP.EMPTY_TUPLE: stack.push([]); break;
      case OP.TUPLE1: stack.push([pop()]); break;
      case OP.TUPLE2: { const b = pop(); const a = pop(); stack.push([a, b]); break; }
      case OP.TUPLE3: { const c = pop(); const b = pop(); const a = pop(); stack.push([a, b, c]); break; }
      case OP.TUPLE: stack.push(popMark()); break;
      case OP.EMPTY_LIST: stack.push([]); break;
      case OP.LIST: stack.push(popMark()); break;
      case OP.APPEND: { const v = pop(); asList(top()).push(v); break; }
      case OP.APPENDS: { const items = popMark(); const list = asList(top()); for (const v of items) list.push(v); break; }
      case OP.EMPTY_DICT: stack.push(new Map()); break;
      case OP.DICT: stack.push(pairsToMap(popMark(), fail)); break;
      case OP.SETITEM: { const v = pop(); const k = pop(); asMap(top()).set(k, v); break; }
      case OP.SETITEMS: {
        const items = popMark();
        const map = asMap(top());
        for (const [k, v] of pairsToMap(items, fail)) map.set(k, v);
        break;
      }
      case OP.EMPTY_SET: stack.push(new Set()); break;
      case OP.FROZENSET: stack.push(new Set(popMark())); break;
      case OP.ADDITEMS: {
        const items = popMark();
        const set = top();
        if (!(set instanceof Set)) fail(`ADDITEMS on a ${typeName(set)}, not a set`);
        for (const v of items) (set as Set<unknown>).add(v);
        break;
      }
      case OP.BINPUT: memo.set(u8(), top()); break;
      case OP.LONG_BINPUT: memo.set(u32(), top()); break;
      case OP.MEMOIZE: memo.set(memo.size, top()); break;
      case OP.BINGET: stack.push(memoGet(u8())); break;
      case OP.LONG_BINGET: stack.push(memoGet(u32())); break;
      case OP.GLOBAL: { const module = line(); const name = line(); stack.push(global(module, name)); break; }
      case OP.STACK_GLOBAL: {
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(global(module as string, name as string));
        break;
      }
      case OP.REDUCE: {
        const args = pop();
        const fn = pop();
        if (!isCallable(fn)) return fail(`REDUCE on a ${typeName(fn)}, which is not an allowed callable`);
        if (!Array.isArray(args)) return fail(`REDUCE arguments are a ${typeName(args)}, not a tuple`);
        stack.push(fn.call(args));
        break;
      }
      case OP.BUILD: {
        const state = pop();
        const obj = top();
        if (!hooks.build) fail(`BUILD on a ${typeName(obj)} is not allowed`);
        hooks.build!(obj, state);
        break;
      }
      case OP.BINPERSID: stack.push(hooks.persistentLoad(pop())); break;
      default:
        fail(`opcode ${NAMES.get(code) ?? `0x${code.toString(16).padStart(2, '0')}`} is not supported by Kiln's restricted unpickler`);
    }
  }
}

/** A callable for the allow-list. */
export function pyCallable(qualname: string, call: (args: unknown[]) => unknown): PyCallable {
  return { kind: 'callable', qualname, call };
}

function isCallable(v: unknown): v is PyCallable {
  return typeof v === 'object' && v !== null && (v as PyCallable).kind === 'callable';
}

/** Two's-complement little-endian integer, as LONG1/LONG4 store it. */
function readLong(b: Uint8Array): number | bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  if (b.length && b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function pairsToMap(items: unknown[], fail: (msg: string) => never): Map<unknown, unknown> {
  if (items.length % 2) fail('odd number of items for a dict');
  const map = new Map<unknown, unknown>();
  for (let i = 0; i < items.length; i += 2) map.set(items[i], items[i + 1]);
  return map;
}

/** A short description of a value's Python-side type, for messages. */
export function typeName(v: unknown): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'list/tuple';
  if (v instanceof Map) return 'dict';
  if (isCallable(v)) return `callable ${v.qualname}`;
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return typeof v;
}
