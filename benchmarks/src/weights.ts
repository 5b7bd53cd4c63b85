/**
 * The ResNet18 every implementation runs: torchvision's seeded model as
 * written by tests/reference/bench_torch.py into benchmarks/.cache/resnet18
 * (weights, a seeded input batch, PyTorch's logits, the ONNX export), and
 * eval-mode BatchNorm folded into the convolutions on the host, so Kiln and
 * TF.js run the very same folded numbers.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { log } from './report.js';
import { RESNET18_BLOCKS } from './architecture.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCRIPT = join(ROOT, 'tests', 'reference', 'bench_torch.py');
export const CACHE_DIR = join(ROOT, 'benchmarks', '.cache', 'resnet18');
export const TORCH_PEER_SCRIPT = SCRIPT;

/** A host tensor. */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

export interface ResNetAssets {
  /** State-dict float tensors by torchvision name. */
  params: Map<string, HostTensor>;
  /** [8, 3, 224, 224] seeded input. */
  input: HostTensor;
  labels: number[];
  /** PyTorch's eval logits of `input` [8, 1000], when PyTorch wrote the assets. */
  torchLogits: HostTensor | null;
  /** PyTorch's loss of the first training step from these weights. */
  torchTrainLoss: number | null;
  sgdLr: number;
  onnxPath: string | null;
  /** 'torch': torchvision's seeded model; 'js-seeded': PyTorch was unavailable. */
  source: 'torch' | 'js-seeded';
  /** Why PyTorch's assets are missing (null when source is 'torch'): reported in the lines PyTorch's peers would fill. */
  unavailable: string | null;
}

const readF32 = (path: string): Float32Array => {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

const sleepMs = (ms: number): void => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
};

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Takes the cache's lock (an exclusively created file holding our pid), so
 * two bench runs on one checkout never prepare into the same place: a
 * concurrent run once removed the other's half-written directory, and that
 * run fell back to JS-seeded weights with no PyTorch or ONNX Runtime peer.
 * Waits while a live process holds it; a dead holder's lock is taken over.
 */
function lockCache(): () => void {
  const lock = `${CACHE_DIR}.lock`;
  mkdirSync(dirname(CACHE_DIR), { recursive: true });
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      return () => rmSync(lock, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = Number(readFileSync(lock, 'utf8') || '0');
    if (holder && !alive(holder)) {
      rmSync(lock, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`${lock} held by process ${holder} for over 10 minutes`);
    sleepMs(500);
  }
}

/**
 * Runs bench_torch.py prepare when the cache is missing or older than the
 * script; returns null when the cache is ready, else why PyTorch's assets
 * are unavailable.
 */
function ensureCache(python: string): string | null {
  const hash = createHash('sha256').update(readFileSync(SCRIPT)).digest('hex');
  const stamp = join(CACHE_DIR, 'script.sha256');
  const ready = () => existsSync(stamp) && readFileSync(stamp, 'utf8') === hash;
  if (ready()) return null;
  if (!existsSync(python)) return `${python} not found`;
  const unlock = lockCache();
  try {
    if (ready()) return null; // another run prepared it while we waited
    log(`preparing ResNet18 assets with ${python} ${SCRIPT} (once)`);
    const tmp = `${CACHE_DIR}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    const r = spawnSync(python, [SCRIPT, 'prepare', tmp], { encoding: 'utf8' });
    if (r.status !== 0) {
      rmSync(tmp, { recursive: true, force: true });
      return `bench_torch.py prepare failed (${r.status ?? r.error?.message}): ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`;
    }
    writeFileSync(join(tmp, 'script.sha256'), hash);
    rmSync(CACHE_DIR, { recursive: true, force: true });
    renameSync(tmp, CACHE_DIR);
    return null;
  } finally {
    unlock();
  }
}

/** Loads the PyTorch-written assets, or seeds a stand-in in JS when PyTorch is unavailable (`unavailable` says why). */
export function loadAssets(python: string): ResNetAssets {
  const unavailable = ensureCache(python);
  if (unavailable) {
    log(`PyTorch unavailable (${unavailable}): ResNet18 uses JS-seeded weights; the PyTorch peer and torch's ONNX export are skipped`);
    return { ...seededAssets(), unavailable };
  }
  const manifest = JSON.parse(readFileSync(join(CACHE_DIR, 'weights.json'), 'utf8')) as { tensors: { name: string; shape: number[]; offset: number }[] };
  const meta = JSON.parse(readFileSync(join(CACHE_DIR, 'meta.json'), 'utf8')) as { inputShape: number[]; labels: number[]; trainLoss: number; sgdLr: number };
  const flat = readF32(join(CACHE_DIR, 'weights.bin'));
  const params = new Map<string, HostTensor>();
  for (const t of manifest.tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    params.set(t.name, { shape: t.shape, data: flat.subarray(t.offset, t.offset + n) });
  }
  return {
    params,
    input: { shape: meta.inputShape, data: readF32(join(CACHE_DIR, 'input.bin')) },
    labels: meta.labels,
    torchLogits: { shape: [meta.inputShape[0]!, 1000], data: readF32(join(CACHE_DIR, 'logits.bin')) },
    torchTrainLoss: meta.trainLoss,
    sgdLr: meta.sgdLr,
    onnxPath: join(CACHE_DIR, 'resnet18.onnx'),
    source: 'torch',
    unavailable: null,
  };
}

/** A deterministic normal stream (mulberry32 + Box-Muller), for the PyTorch-less fallback only. */
function normals(seed: number): () => number {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

function seededAssets(): ResNetAssets {
  const randn = normals(0);
  const params = new Map<string, HostTensor>();
  const conv = (name: string, o: number, c: number, k: number) => {
    const std = Math.sqrt(2 / (o * k * k)); // kaiming_normal_, fan_out, as torchvision
    params.set(`${name}.weight`, { shape: [o, c, k, k], data: Float32Array.from({ length: o * c * k * k }, () => randn() * std) });
  };
  const bn = (name: string, c: number) => {
    params.set(`${name}.weight`, { shape: [c], data: Float32Array.from({ length: c }, () => 1 + 0.1 * randn()) });
    params.set(`${name}.bias`, { shape: [c], data: Float32Array.from({ length: c }, () => 0.1 * randn()) });
    params.set(`${name}.running_mean`, { shape: [c], data: new Float32Array(c) });
    params.set(`${name}.running_var`, { shape: [c], data: new Float32Array(c).fill(1) });
  };
  conv('conv1', 64, 3, 7);
  bn('bn1', 64);
  for (const b of RESNET18_BLOCKS) {
    conv(`${b.prefix}.conv1`, b.out, b.in, 3);
    bn(`${b.prefix}.bn1`, b.out);
    conv(`${b.prefix}.conv2`, b.out, b.out, 3);
    bn(`${b.prefix}.bn2`, b.out);
    if (b.downsample) {
      conv(`${b.prefix}.downsample.0`, b.out, b.in, 1);
      bn(`${b.prefix}.downsample.1`, b.out);
    }
  }
  params.set('fc.weight', { shape: [1000, 512], data: Float32Array.from({ length: 512000 }, () => randn() / Math.sqrt(512) / 1.7) });
  params.set('fc.bias', { shape: [1000], data: Float32Array.from({ length: 1000 }, () => randn() * 0.02) });
  const input = { shape: [8, 3, 224, 224], data: Float32Array.from({ length: 8 * 3 * 224 * 224 }, randn) };
  const labels = Array.from({ length: 8 }, (_, i) => (i * 137) % 1000);
  return { params, input, labels, torchLogits: null, torchTrainLoss: null, sgdLr: 0.01, onnxPath: null, source: 'js-seeded', unavailable: 'not prepared' };
}

/** The BatchNorm that follows a convolution, by torchvision's naming. */
export function bnOf(conv: string): string {
  if (conv === 'conv1') return 'bn1';
  if (conv.endsWith('downsample.0')) return conv.replace(/0$/, '1');
  return conv.replace(/conv(\d)$/, 'bn$1');
}

/** A convolution with its eval-mode BatchNorm folded in: w' = w·γ/√(σ²+ε), b' = β − μ·γ/√(σ²+ε). */
export function foldConvBn(params: Map<string, HostTensor>, conv: string, eps = 1e-5): { weight: HostTensor; bias: HostTensor } {
  const get = (n: string) => {
    const t = params.get(n);
    if (!t) throw new Error(`ResNet18 weights lack ${n}`);
    return t;
  };
  const w = get(`${conv}.weight`);
  const bn = bnOf(conv);
  const [gamma, beta, mean, variance] = ['weight', 'bias', 'running_mean', 'running_var'].map((s) => get(`${bn}.${s}`).data) as [Float32Array, Float32Array, Float32Array, Float32Array];
  const O = w.shape[0]!;
  const per = w.data.length / O;
  const weight = new Float32Array(w.data.length);
  const bias = new Float32Array(O);
  for (let o = 0; o < O; o++) {
    const scale = gamma[o]! / Math.sqrt(variance[o]! + eps);
    bias[o] = beta[o]! - mean[o]! * scale;
    for (let i = 0; i < per; i++) weight[o * per + i] = w.data[o * per + i]! * scale;
  }
  return { weight: { shape: w.shape, data: weight }, bias: { shape: [O], data: bias } };
}

/** Rows [0, batch) of the input batch. */
export function inputBatch(assets: ResNetAssets, batch: number): HostTensor {
  const per = assets.input.data.length / assets.input.shape[0]!;
  return { shape: [batch, ...assets.input.shape.slice(1)], data: assets.input.data.subarray(0, batch * per) };
}

/** Largest |a - b| over two equally long arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
