import { setDefaultBackend } from '@kiln/core';
import { SingleBar } from 'cli-progress';
import { readFileBytes, readWeights } from '../model/load-weights.js';
import { loadRawWeights } from '../model/load-weights.js';
import { resnetForWeights } from '../model/from-weights.js';
import type { ResNet } from '../model/resnet.js';
import { CliError, type CliIO } from './io.js';

/** Backends `--backend` accepts. */
export const BACKENDS = ['cpu', 'webgpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** Makes `name` the default backend, initialising WebGPU (Dawn in Node) when asked for. */
export async function useBackend(name: string): Promise<BackendName> {
  if (!(BACKENDS as readonly string[]).includes(name)) throw new CliError(`unknown backend '${name}' (expected ${BACKENDS.join(' or ')})`);
  if (name === 'webgpu') {
    try {
      const { initWebGPU } = await import('@kiln/kernels');
      await initWebGPU();
    } catch (e) {
      throw new CliError(`WebGPU is not available (${(e as Error).message.split('\n')[0]}); use --backend cpu`);
    }
  }
  setDefaultBackend(name);
  return name as BackendName;
}

/** Reads a file, failing with a one-line message naming it. */
export async function readInput(path: string, what: string): Promise<Uint8Array> {
  try {
    return await readFileBytes(path, what);
  } catch (e) {
    throw new CliError(`cannot read ${what} '${path}': ${(e as Error).message.replace(/^.*: /, '')}`);
  }
}

/** A resnet18/34 built to the weights' shape and loaded with them, in eval mode. */
export async function modelFromWeights(path: string, device: string): Promise<{ model: ResNet; arch: string }> {
  const bytes = await readInput(path, 'weights file');
  const raw = readWeights(bytes, { source: `'${path}'` });
  const { model, arch } = resnetForWeights(raw, { device });
  loadRawWeights(model, raw);
  return { model: model.eval(), arch };
}

/** A progress bar on stderr when it is a terminal (cli-progress), or a no-op. */
export function progressBar(io: CliIO, enabled: boolean, total: number, label: string): { update(n: number): void; stop(): void } {
  if (!enabled || !io.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new SingleBar({ format: `${label} [{bar}] {value}/{total} images | {duration_formatted}`, stream: io.stderr, hideCursor: true, clearOnComplete: true });
  bar.start(total, 0);
  return { update: (n) => bar.update(n), stop: () => bar.stop() };
}

/** `[1, 2, 3, ...]` split into chunks of `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Parses a positive integer option. */
export function positiveInt(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new CliError(`${name} must be a positive integer, got '${v}'`);
    return n;
  };
}
