// The real tools every exported model is checked with, shared by
// packages/onnx/test and tests/onnx.*: onnx.checker (Debian's python3-onnx)
// and onnxruntime-node. Not a test file itself.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { readOnnx } from '@kiln/onnx';

/** Why onnx.checker cannot run here, or null when it can (python3-onnx importable). */
export function onnxCheckerProblem(): string | null {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import onnx'], { stdio: 'pipe' });
    return null;
  } catch {
    return 'python3-onnx is not installed (apt-get install python3-onnx)';
  }
}

/**
 * Runs onnx.checker.check_model(full_check=True) on the model (which also
 * runs ONNX's shape inference); throws with the checker's message when it fails.
 */
export function checkModel(bytes: Uint8Array): void {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-onnx-'));
  try {
    const file = join(dir, 'model.onnx');
    writeFileSync(file, bytes);
    execFileSync('/usr/bin/python3', ['-c', 'import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)', file], { stdio: 'pipe' });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`onnx.checker rejected the model: ${e.stderr?.toString().trim().split('\n').slice(-3).join(' ') ?? e.message}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One input for onnxruntime: float32 (default) or int32 data with its dims. */
export interface Feed {
  data: Float32Array | Int32Array;
  dims: readonly number[];
}

/**
 * Runs the model in onnxruntime-node (CPU) once per feed set (one session)
 * and returns every output's data per run.
 */
export async function runOrtRuns(bytes: Uint8Array, runs: readonly Record<string, Feed>[]): Promise<Record<string, Float32Array | Int32Array>[]> {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: 2 });
  try {
    const results: Record<string, Float32Array | Int32Array>[] = [];
    for (const feeds of runs) {
      const inputs = Object.fromEntries(Object.entries(feeds).map(([k, f]) => [k, new ort.Tensor(f.data instanceof Int32Array ? 'int32' : 'float32', f.data, [...f.dims])]));
      const out = await session.run(inputs);
      results.push(Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.data as Float32Array | Int32Array])));
    }
    return results;
  } finally {
    await session.release();
  }
}

/** Runs the model in onnxruntime-node (CPU) and returns every output's data. */
export async function runOrt(bytes: Uint8Array, feeds: Record<string, Feed>): Promise<Record<string, Float32Array | Int32Array>> {
  return (await runOrtRuns(bytes, [feeds]))[0]!;
}

/** op_type -> count over the graph's nodes. */
export function opHistogram(bytes: Uint8Array): Record<string, number> {
  const h: Record<string, number> = {};
  for (const n of readOnnx(bytes).graph.nodes) h[n.opType] = (h[n.opType] ?? 0) + 1;
  return h;
}

/** max |a - b| over two equally long arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/**
 * The graph onnxruntime-node actually runs: the model after its 'extended'
 * graph optimizations (QDQ groups fused into QLinearConv, QGemm, ...), read back.
 */
export async function ortOptimizedModel(bytes: Uint8Array): Promise<Uint8Array> {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-ort-'));
  try {
    const file = join(dir, 'optimized.onnx');
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], graphOptimizationLevel: 'extended', optimizedModelFilePath: file });
    await session.release();
    return new Uint8Array(readFileSync(file));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
