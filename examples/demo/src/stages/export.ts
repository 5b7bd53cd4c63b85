import { fromArray, type Tensor } from '@kiln/core';
import type { Module } from '@kiln/nn';
import { exportOnnx } from '@kiln/onnx';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { DemoContext } from '../context.js';
import type { VariantRow } from '../results.js';
import { accuracyOf, agreementOf } from './measure.js';

/** A Kiln model to export, and the predictions Kiln made with it (to compare with ONNX Runtime's). */
export interface ExportJob {
  name: string;
  file: string;
  module: Module;
  kilnPredictions: Int32Array;
}

/** What exporting one model gave: its table row, or why it could not be exported. */
export type ExportOutcome = { name: string; file: string; row: VariantRow; agreement: number } | { name: string; file: string; error: string };

const argmaxRows = (logits: Float32Array, rows: number, cols: number, out: Int32Array, at: number) => {
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (logits[r * cols + c]! > logits[r * cols + best]!) best = c;
    out[at + r] = best;
  }
};

/** Runs an ONNX model in onnxruntime-node over the test images: predictions and ms per image of a batch of 32. */
async function runInOrt(bytes: Uint8Array, ctx: DemoContext): Promise<{ pred: Int32Array; msPerImage: number }> {
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all' });
  try {
    const { set, values } = ctx.target.test;
    const s = ctx.pipe.size;
    const plane = 3 * s * s;
    const n = set.indices.length;
    const pred = new Int32Array(n);
    for (let start = 0; start < n; start += 64) {
      const rows = Math.min(64, n - start);
      const input = new ort.Tensor('float32', values.slice(start * plane, (start + rows) * plane), [rows, 3, s, s]);
      const out = (await session.run({ input })).logits!;
      argmaxRows(out.data as Float32Array, rows, out.dims[1]!, pred, start);
    }
    const b = Math.min(32, n);
    const x = new ort.Tensor('float32', values.slice(0, b * plane), [b, 3, s, s]);
    await session.run({ input: x });
    let best = Infinity;
    for (let r = 0; r < 3; r++) {
      const t0 = performance.now();
      await session.run({ input: x });
      best = Math.min(best, performance.now() - t0);
    }
    return { pred, msPerImage: best / b };
  } finally {
    await session.release();
  }
}

/**
 * Stage 6: each model to ONNX (`exportOnnx(model, dummy, { dynamicAxes })`,
 * as torch.onnx.export), written under the output folder and run in
 * onnxruntime-node on the same test images: agreement of its predictions
 * with Kiln's, accuracy and ms per image. A model the exporter cannot map
 * is reported with the exporter's error, not skipped silently.
 */
export async function exportStage(ctx: DemoContext, jobs: ExportJob[]): Promise<ExportOutcome[]> {
  ctx.io.log(`[6/7] ONNX export: ${jobs.map((j) => j.file).join(', ')}, run in onnxruntime-node ${ort.env.versions.common}`);
  const s = ctx.pipe.size;
  const dummy: Tensor = fromArray(ctx.target.test.values.subarray(0, 3 * s * s), [1, 3, s, s], { device: ctx.device });
  const outcomes: ExportOutcome[] = [];
  try {
    for (const job of jobs) {
      let bytes: Uint8Array;
      try {
        bytes = await exportOnnx(job.module, dummy, { inputNames: ['input'], outputNames: ['logits'], dynamicAxes: { input: { 0: 'batch' }, logits: { 0: 'batch' } } });
      } catch (e) {
        // The exporter names the op it cannot map (int8 modules, say): report it, go on with the others.
        if (!(e instanceof Error)) throw e;
        const error = e.message.split('\n')[0]!;
        ctx.io.log(`  ${job.file}: not exported: ${error}`);
        outcomes.push({ name: job.name, file: job.file, error });
        continue;
      }
      await writeFile(join(ctx.opts.out, job.file), bytes);
      const { pred, msPerImage } = await runInOrt(bytes, ctx);
      const agreement = agreementOf(pred, job.kilnPredictions);
      const top1 = accuracyOf(pred, ctx.target.test.set.labels);
      ctx.io.log(`  ${job.file} (${(bytes.length / 1e6).toFixed(2)} MB): predictions equal to Kiln's on ${(100 * agreement).toFixed(2)} % of ${pred.length} images, top-1 ${(100 * top1).toFixed(2)} %, ${msPerImage.toFixed(2)} ms/image`);
      outcomes.push({ name: job.name, file: job.file, agreement, row: { name: `ONNX Runtime: ${job.name}`, family: 'ONNX Runtime', top1, megabytes: bytes.length / 1e6, msPerImage, agreement } });
    }
  } finally {
    dummy.dispose();
  }
  return outcomes;
}
