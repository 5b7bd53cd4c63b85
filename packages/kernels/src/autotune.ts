/**
 * The conv autotuner. For each (adapter, strategy class, op, shape) it times
 * the routes that can compute the conv (im2col + GEMM, the direct kernel,
 * the vec4 direct kernel where the input's rows allow it, Winograd F(2x2) /
 * F(4x4) for 3x3 stride-1 convs; for the input gradient
 * the table's kernel or Winograd; for the weight gradient its kernel or
 * im2col + GEMMs) and keeps the fastest, in memory and, with
 * a cache file, in JSON keyed by adapter. Every candidate's output is first
 * checked against the direct kernel on the same random operands (within the
 * conv parity tolerance, rtol = atol = 1e-4); one that fails never wins.
 *
 * WebGPU work is asynchronous, so a conv call cannot stop to time
 * candidates: a call whose shape has no tuned route takes the tuning
 * table's and queues the shape, and `tunePending()` (the benchmarks call it
 * after warm-up; `kiln tune` after one forward of each model shape) times
 * the queue. Off unless enabled: tests never call `enableAutotune`, so they
 * run the fixed table; the cache file is `options.cache`, else
 * `KILN_TUNE_CACHE` (Node only; no file in a page).
 */
import type { Conv2dParams, View } from '@kiln/core';
import type { WebGPUBackend } from './backend.js';
import type { GPUStorage } from './pool.js';
import type { Runtime } from './runtime.js';
import { direct4Eligible } from './ops/conv-direct.js';

/** A way to compute a conv: see the module comment. 'table' is the tuning table's own choice. */
export type ConvRoute = 'table' | 'im2col' | 'direct' | 'direct4' | 'winograd2' | 'winograd4';

/** Options of {@link enableAutotune}. */
export interface AutotuneOptions {
  /** JSON cache file (default `KILN_TUNE_CACHE`; none when unset). */
  cache?: string;
  /** Timed runs per candidate after one warm-up (default 3; the minimum counts). */
  runs?: number;
}

/** One tuned shape: the winner and every candidate's time (ms; null: failed the correctness check). */
export interface TunedConv {
  /** The fastest candidate that passed the correctness check. */
  route: ConvRoute;
  /** Each timed candidate's best time in ms (minimum over the runs); null when it failed the correctness check. */
  ms: Partial<Record<ConvRoute, number | null>>;
}

/** The conv a route is tuned for. */
export interface ConvShape {
  /** Which conv is run: the forward conv, or the input or weight gradient of its backward. */
  dir: 'forward' | 'backwardInput' | 'backwardWeight';
  /** The forward input's shape [N, C, H, W]. */
  x: number[];
  /** The weight's shape [O, C / groups, KH, KW]. */
  w: number[];
  /** Stride, padding, dilation and groups. */
  p: Conv2dParams;
}

interface State {
  backend: WebGPUBackend;
  options: AutotuneOptions;
  file: string | null;
  adapterKey: string;
  tuned: Map<string, TunedConv>;
  pending: Map<string, ConvShape>;
}

const states = new WeakMap<Runtime, State>();

/** The key of a conv shape class (exact geometry). */
export function convShapeKey(s: ConvShape): string {
  const { p } = s;
  return `${s.dir}:x${s.x.join('x')}:w${s.w.join('x')}:s${p.stride.join('x')}:p${p.padding.join('x')}:d${p.dilation.join('x')}:g${p.groups}`;
}

function adapterKey(b: WebGPUBackend): string {
  const i = b.info;
  return `${i.vendor}|${i.architecture}|${i.device}|${i.description}|${b.tuning.strategy}`;
}

type CacheFile = { version: 1; adapters: Record<string, Record<string, TunedConv>> };

async function nodeFs(): Promise<typeof import('node:fs/promises') | null> {
  const env = (globalThis as { process?: { versions?: { node?: string } } }).process;
  if (!env?.versions?.node) return null;
  const specifier = 'node:fs/promises';
  return (await import(/* @vite-ignore */ specifier)) as typeof import('node:fs/promises');
}

async function readCache(file: string): Promise<CacheFile> {
  const fs = await nodeFs();
  try {
    const doc = JSON.parse(await fs!.readFile(file, 'utf8')) as CacheFile;
    if (doc.version === 1 && doc.adapters && typeof doc.adapters === 'object') return doc;
  } catch {
    // Missing or unreadable: start empty (tuning writes a fresh one).
  }
  return { version: 1, adapters: {} };
}

/**
 * Turns the autotuner on for `backend`: loads the winners the cache file
 * holds for this adapter and strategy class; later convs of those shapes
 * take them. Returns how many tuned shapes were loaded.
 */
export async function enableAutotune(backend: WebGPUBackend, options: AutotuneOptions = {}): Promise<number> {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const file = options.cache ?? env?.KILN_TUNE_CACHE ?? null;
  const state: State = { backend, options, file: file && (await nodeFs()) ? file : null, adapterKey: adapterKey(backend), tuned: new Map(), pending: new Map() };
  if (state.file) {
    const doc = await readCache(state.file);
    for (const [k, v] of Object.entries(doc.adapters[state.adapterKey] ?? {})) state.tuned.set(k, v);
  }
  states.set(backend.runtime, state);
  return state.tuned.size;
}

/** Turns the autotuner off for `backend` (the tuning table decides again). */
export function disableAutotune(backend: WebGPUBackend): void {
  states.delete(backend.runtime);
}

/**
 * The tuned route for a conv about to run, or 'table'. With the tuner on and
 * no winner yet, the shape is queued for {@link tunePending}.
 */
export function tunedRoute(rt: Runtime, s: ConvShape): ConvRoute {
  const state = states.get(rt);
  // Winners belong to one strategy class: after setStrategy() the table decides.
  if (!state || state.adapterKey !== adapterKey(state.backend)) return 'table';
  const key = convShapeKey(s);
  const hit = state.tuned.get(key);
  if (hit) return hit.route;
  if (!state.pending.has(key)) state.pending.set(key, { dir: s.dir, x: [...s.x], w: [...s.w], p: { ...s.p } });
  return 'table';
}

/** What {@link autotuneState} returns. */
export interface AutotuneState {
  /** Every tuned shape: its key -> the result. */
  tuned: Record<string, TunedConv>;
  /** How many shapes are queued for {@link tunePending}. */
  pending: number;
}

/** What the tuner knows for `backend`: tuned shapes (key -> result) and how many are queued; null when the tuner is off for it. */
export function autotuneState(backend: WebGPUBackend): AutotuneState | null {
  const s = states.get(backend.runtime);
  return s ? { tuned: Object.fromEntries(s.tuned), pending: s.pending.size } : null;
}

/**
 * Routes worth timing for a shape (the direct kernel is the correctness
 * reference and always a candidate). One-pixel single-tap convs
 * (ops/conv-tap.ts) take their GEMM under every non-Winograd route, so there
 * the tuner weighs the tap GEMM against Winograd F(2x2) / F(4x4).
 */
function candidates(s: ConvShape): ConvRoute[] {
  const [, C, KH, KW] = s.w;
  const one = (a: readonly number[]) => a[0] === 1 && a[1] === 1;
  const wino = KH === 3 && KW === 3 && s.p.groups === 1 && one(s.p.stride) && one(s.p.dilation) && s.p.padding[0]! <= 2 && s.p.padding[1]! <= 2;
  const routes: ConvRoute[] = ['direct'];
  if (s.dir === 'forward' && s.p.groups === 1 && (C! * KH! * KW!) % 4 === 0) routes.push('im2col');
  // The weight gradient: its kernel ('direct') or im2col + one GEMM per image (ops/conv-weight.ts).
  if (s.dir === 'backwardWeight') return s.p.groups === 1 ? ['direct', 'im2col'] : ['direct'];
  if (s.dir === 'forward' && direct4Eligible({ shape: s.x }, s.w, s.p)) routes.push('direct4');
  if (wino) routes.push('winograd2', 'winograd4');
  return routes;
}

/** The direct kernel of the forward is 'direct' (scalar loads) or 'direct4' (vec4 input rows); of the input gradient, the table's non-Winograd kernel. */
export function routeOverride(route: ConvRoute): RouteFields {
  switch (route) {
    case 'table': return {};
    case 'im2col': return { im2col: true, winograd: 0, vec4: false };
    case 'direct': return { im2col: false, winograd: 0, vec4: false };
    case 'direct4': return { im2col: false, winograd: 0, vec4: true };
    case 'winograd2': return { winograd: 2 };
    case 'winograd4': return { winograd: 4 };
  }
}

/** What a route fixes of ops/conv.ts's choices (unset fields: the tuning table decides). */
export interface RouteFields {
  /** Forward as im2col + GEMM. */
  im2col?: boolean;
  /** Winograd tile (0: none). */
  winograd?: 0 | 2 | 4;
  /** Forward by the vec4 direct kernel (wgsl/conv-direct.ts). */
  vec4?: boolean;
}

/** The route a candidate being timed forces (read by ops/conv.ts), else null. */
let forcing: RouteFields | null = null;

/** The route override of the candidate being timed, or null outside tuning. */
export function forcedRoute(): RouteFields | null {
  return forcing;
}

const force = (o: typeof forcing) => {
  forcing = o;
};

/**
 * Times every queued shape's candidates and keeps the winners (saved to the
 * cache file when there is one). Returns the shapes tuned now.
 */
export async function tunePending(backend: WebGPUBackend): Promise<Record<string, TunedConv>> {
  const state = states.get(backend.runtime);
  if (!state) return {};
  const done: Record<string, TunedConv> = {};
  for (const [key, shape] of [...state.pending]) {
    state.pending.delete(key);
    const result = await tuneOne(backend, shape, state.options.runs ?? 3);
    state.tuned.set(key, result);
    done[key] = result;
  }
  if (state.file && Object.keys(done).length) {
    const fs = await nodeFs();
    const doc = await readCache(state.file);
    doc.adapters[state.adapterKey] = { ...(doc.adapters[state.adapterKey] ?? {}), ...Object.fromEntries(state.tuned) };
    await fs!.writeFile(state.file, `${JSON.stringify(doc, null, 1)}\n`);
  }
  return done;
}

/** Queues a shape for tuning without running it (the `kiln tune` list). */
export function queueShape(backend: WebGPUBackend, s: ConvShape): void {
  const state = states.get(backend.runtime);
  if (state && !state.tuned.has(convShapeKey(s))) state.pending.set(convShapeKey(s), s);
}

/** The correctness gate: every element within the conv parity tolerance (|got - want| <= 1e-4 + 1e-4 |want|; NaN fails). */
export function withinConvTolerance(got: ArrayLike<number>, want: ArrayLike<number>): boolean {
  if (got.length !== want.length) return false;
  for (let i = 0; i < want.length; i++) if (!(Math.abs(got[i]! - want[i]!) <= 1e-4 + 1e-4 * Math.abs(want[i]!))) return false;
  return true;
}

/** Deterministic U(-1, 1) values (xorshift), scaled. */
function noise(n: number, seed: number, scale: number): Float32Array {
  let v = seed >>> 0 || 1;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    v ^= v << 13; v >>>= 0; v ^= v >>> 17; v ^= v << 5; v >>>= 0;
    a[i] = (v / 4294967296 * 2 - 1) * scale;
  }
  return a;
}

const dense = (shape: number[]) => shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
const outSize = (n: number, k: number, s: number, p: number, d: number) => Math.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1;

async function tuneOne(backend: WebGPUBackend, s: ConvShape, runs: number): Promise<TunedConv> {
  const { p } = s;
  const [N, , H, W] = s.x;
  const [O, CG, KH, KW] = s.w;
  const y = [N!, O!, outSize(H!, KH!, p.stride[0], p.padding[0], p.dilation[0]), outSize(W!, KW!, p.stride[1], p.padding[1], p.dilation[1])];
  const view = (shape: number[], data: Float32Array | null): View<GPUStorage> => {
    const st = backend.alloc(shape.reduce((a, b) => a * b, 1), 'float32');
    if (data) backend.write(st, data);
    return { storage: st, dtype: 'float32', shape, strides: dense(shape), offset: 0 };
  };
  const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  // Weights scaled by 1/sqrt(fan-in), as initialised nets have: outputs stay O(1).
  const x = view(s.x, noise(size(s.x), 1, 1));
  const w = view(s.w, noise(size(s.w), 2, Math.sqrt(3 / (CG! * KH! * KW!))));
  const dy = view(y, noise(size(y), 3, 1));
  const out = s.dir === 'forward' ? view(y, null) : s.dir === 'backwardInput' ? view(s.x, null) : view(s.w, null);
  const run = () => (s.dir === 'forward' ? backend.conv2d(x, w, out, p)
    : s.dir === 'backwardInput' ? backend.conv2dBackwardInput(dy, w, out, p) : backend.conv2dBackwardWeight(x, dy, out, p));
  const read = async () => (await backend.read(out.storage, 0, out.storage.size)) as Float32Array;
  const ms: TunedConv['ms'] = {};
  let reference: Float32Array | null = null;
  try {
    for (const route of candidates(s)) {
      force(routeOverride(route));
      try {
        run();
        const got = await read();
        reference ??= got; // 'direct' runs first: the reference.
        if (!withinConvTolerance(got, reference)) {
          ms[route] = null;
          continue;
        }
        let best = Infinity;
        for (let r = 0; r < runs; r++) {
          const t0 = performance.now();
          const kernels = await backend.profile(run);
          const gpu = kernels.reduce((a, k) => a + k.ms, 0);
          best = Math.min(best, gpu > 0 ? gpu : performance.now() - t0);
        }
        ms[route] = best;
      } finally {
        force(null);
      }
    }
  } finally {
    for (const v of [x, w, dy, out]) backend.release(v.storage);
  }
  const timed = Object.entries(ms).filter((e): e is [ConvRoute, number] => typeof e[1] === 'number');
  timed.sort((a, b) => a[1] - b[1]);
  return { route: timed[0]?.[0] ?? 'table', ms };
}
