import { mkdir } from 'node:fs/promises';
import { chooseBackend } from './backend.js';
import { buildTasks, stageRng, type DemoContext } from './context.js';
import { loadFashionMnist, resolveDataDir } from './data/fashion-mnist.js';
import { resolveOptions, type DemoOptions, type ResolvedOptions } from './options.js';
import { consoleIO, type DemoIO } from './progress.js';
import { demoPipelines } from './data/images.js';
import { accuracyBars } from './report/bars.js';
import { classNames } from './report/markdown.js';
import { writeReport, type ReportFiles } from './report/write.js';
import type { DemoResult, SkippedStage, TimingProfile, VariantRow } from './results.js';
import { featuresStage } from './stages/features.js';
import { measureVariant, profileVariant, sizeOf, type Variant } from './stages/measure.js';
import { PRUNED_VARIANT, pruneStage } from './stages/prune.js';
import { SHRUNK_VARIANT, shrinkStage } from './stages/shrink.js';
import { DYNAMIC_VARIANT, STATIC_VARIANT, quantizeDynamicStage } from './stages/quantize.js';
import { quantizeStaticStage } from './stages/quantize-static.js';
import { exportStage } from './stages/export.js';
import { pretrainStage } from './stages/pretrain.js';
import { transferStage } from './stages/transfer.js';
import { pct } from './train-loop.js';

/** What {@link runDemo} returns: the numbers and the files written. */
export interface DemoRun {
  result: DemoResult;
  files: ReportFiles;
  out: string;
}

/** Name of the fine-tuned fp32 model in the tables. */
export const FP32_VARIANT = 'Kiln fp32';

/**
 * The whole demo: pretraining, transfer learning (vs from scratch),
 * features, pruning, int8 quantization, ONNX export and timing on
 * Fashion-MNIST, then the report (report.md, report.html, charts/*.svg,
 * results.json) under `opts.out`.
 */
export async function runDemo(options: DemoOptions = {}, io: DemoIO = consoleIO()): Promise<DemoRun> {
  const t0 = performance.now();
  const opts = resolveOptions(options);
  await mkdir(opts.out, { recursive: true });
  const stageSeconds: Record<string, number> = {};
  const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const s = performance.now();
    try {
      return await fn();
    } finally {
      stageSeconds[name] = (performance.now() - s) / 1000;
    }
  };

  const { ctx, description } = await setUp(opts, io);
  const { device, data } = ctx;

  const pretrain = await timed('1 pretraining', () => pretrainStage(ctx));
  const { transfer, scratch, model } = await timed('2 transfer learning', () => transferStage(ctx, pretrain.checkpoint));
  io.log(`  transfer ${pct(transfer.top1)} vs from scratch ${pct(scratch.top1)} on the ${ctx.target.classes.length} target classes`);
  const features = await timed('3 features', () => featuresStage(ctx, model));

  const skipped: SkippedStage[] = [];
  const rows: VariantRow[] = [];
  const preds = new Map<string, Int32Array>();
  const measured: Variant[] = [];
  const measure = async (v: Variant) => {
    const { row, pred } = await measureVariant(v, ctx);
    rows.push(row);
    preds.set(v.name, pred);
    measured.push(v);
    io.log(`  ${row.name}: test top-1 ${pct(row.top1!)}, ${row.megabytes!.toFixed(2)} MB, ${row.msPerImage!.toFixed(2)} ms/image`);
    return row;
  };
  await timed('fp32 measurement', () => measure({ name: FP32_VARIANT, family: 'Kiln fp32', module: model, ...sizeOf(model) }));

  const pruned = await timed('4 pruning', async () => {
    const p = await pruneStage(ctx, model);
    await measure({ name: PRUNED_VARIANT, family: 'pruned', module: p.model, ...sizeOf(p.model), nonzero: p.result.nonzero });
    const sh = await shrinkStage(ctx, model);
    const row = await measure({ name: SHRUNK_VARIANT, family: 'pruned', module: sh.model, ...sizeOf(sh.model) });
    const fp32Ms = rows.find((r) => r.name === FP32_VARIANT)!.msPerImage!;
    p.result.shrunk = { ...sh.result, msPerImage: row.msPerImage!, fp32MsPerImage: fp32Ms };
    io.log(`  ${SHRUNK_VARIANT}: ${(fp32Ms / row.msPerImage!).toFixed(2)}× the fp32 model's speed (${row.msPerImage!.toFixed(2)} vs ${fp32Ms.toFixed(2)} ms/image)`);
    return { ...p, shrunk: sh.model };
  });
  const quantization: NonNullable<DemoResult['quantization']> = {};
  const dynamic = await timed('5 quantization', async () => {
    const q = await quantizeDynamicStage(ctx, model);
    // Quantized weights are buffers, not parameters: the weight count is the float model's.
    const weights = sizeOf(model).params;
    quantization.dynamicTop1 = (await measure({ name: DYNAMIC_VARIANT, family: 'int8', module: q.model, params: weights, bytes: sizeOf(q.model).bytes })).top1;
    const whole = await quantizeStaticStage(ctx, model);
    quantization.staticTop1 = (await measure({ name: STATIC_VARIANT, family: 'int8', module: whole, params: weights, bytes: sizeOf(whole).bytes })).top1;
    return { ...q, whole };
  });
  for (const s of skipped) io.log(`  not run: ${s.stage}: ${s.reason}`);

  const exported = await timed('6 ONNX export', () =>
    exportStage(ctx, [
      { name: FP32_VARIANT, file: 'resnet18-fp32.onnx', module: model, kilnPredictions: preds.get(FP32_VARIANT)! },
      { name: PRUNED_VARIANT, file: 'resnet18-pruned.onnx', module: pruned.model, kilnPredictions: preds.get(PRUNED_VARIANT)! },
      { name: SHRUNK_VARIANT, file: 'resnet18-shrunk.onnx', module: pruned.shrunk, kilnPredictions: preds.get(SHRUNK_VARIANT)! },
      { name: DYNAMIC_VARIANT, file: 'resnet18-int8-dynamic.onnx', module: dynamic.model, kilnPredictions: preds.get(DYNAMIC_VARIANT)! },
      { name: STATIC_VARIANT, file: 'resnet18-int8-static.onnx', module: dynamic.whole, kilnPredictions: preds.get(STATIC_VARIANT)! },
    ]),
  );
  const onnx: NonNullable<DemoResult['onnx']> = { files: [], agreement: {}, errors: {} };
  for (const o of exported) {
    if ('error' in o) onnx.errors[o.name] = o.error;
    else {
      onnx.files.push(o.file);
      onnx.agreement[o.name] = o.agreement;
      rows.push(o.row);
    }
  }

  const timing = await timed('7 timing', async () => {
    io.log(`[7/7] timing: kernel profile of one forward per variant`);
    const profiles: TimingProfile[] = [];
    for (const v of measured) profiles.push(await profileVariant(v, ctx));
    for (const p of profiles) io.log(`  ${p.variant}: ${p.totalMs.toFixed(1)} ms for batch ${p.batch} (${p.source}); slowest ${p.kernels.slice(0, 3).map((k) => `${k.kernel} ${k.ms.toFixed(1)} ms`).join(', ')}`);
    return profiles;
  });
  dynamic.dispose();
  dynamic.whole.dispose();
  pruned.model.dispose();
  pruned.shrunk.dispose();
  model.dispose();

  const result: DemoResult = {
    config: { ...opts },
    backend: device,
    device: description,
    data: { kind: data.kind, dir: data.dir, trainPool: data.train.count, testPool: data.test.count },
    sourceClasses: classNames(ctx.source.classes),
    targetClasses: classNames(ctx.target.classes),
    pretrain,
    transfer,
    scratch,
    features,
    variants: rows,
    pruning: pruned.result,
    quantization,
    onnx,
    timing,
    skipped,
    seconds: 0,
    stageSeconds,
  };
  result.seconds = (performance.now() - t0) / 1000;
  const files = await writeReport(result, opts.out);
  summary(result, io);
  io.log(`report: ${opts.out}/${files.markdown} and ${files.html} (${files.charts.length} charts), raw numbers in ${files.json}; ${result.seconds.toFixed(0)} s in all`);
  return { result, files, out: opts.out };
}

/** Backend, data and tasks of a run: what every stage gets. */
async function setUp(opts: ResolvedOptions, io: DemoIO): Promise<{ ctx: DemoContext; description: string }> {
  const { device, description } = await chooseBackend(opts.backend, io);
  const where = resolveDataDir(opts.data);
  const data = await loadFashionMnist(where.dir, where.kind);
  io.log(`data: ${where.kind === 'embedded' ? 'embedded Fashion-MNIST subset' : where.kind === 'debian' ? "Debian's Fashion-MNIST" : 'Fashion-MNIST'} (${where.dir}): ${data.train.count} training, ${data.test.count} test images${opts.quick ? '; --quick' : ''}`);
  const pipes = demoPipelines(opts);
  const tasks = buildTasks(data, opts, pipes.transfer);
  return { ctx: { opts, io, device, data, pipe: pipes.transfer, pretrainPipe: pipes.pretrain, ...tasks, rng: (k) => stageRng(opts.seed, k) }, description };
}

/**
 * Stage 1 alone: the backbone `runDemo` with the same options would
 * transfer from — reused from the cache (re-measured) when it is there,
 * else pretrained and cached (or the `weights` file, untouched). What a
 * later run's first stage finds; also a way to fill the cache ahead of time.
 */
export async function pretrainBackbone(options: DemoOptions = {}, io: DemoIO = consoleIO()): Promise<DemoResult['pretrain']> {
  const opts = resolveOptions(options);
  await mkdir(opts.out, { recursive: true });
  const { ctx } = await setUp(opts, io);
  return pretrainStage(ctx);
}

/** The closing table of the run output. */
function summary(r: DemoResult, io: DemoIO): void {
  io.log('');
  io.log('summary');
  io.log(`  ${'model'.padEnd(24)} ${'top-1'.padStart(9)} ${'params'.padStart(12)} ${'MB'.padStart(7)} ${'ms/img'.padStart(8)}`);
  for (const v of r.variants) {
    io.log(`  ${v.name.padEnd(24)} ${(v.top1 === undefined ? '—' : pct(v.top1)).padStart(9)} ${(v.params ?? 0).toLocaleString('en-US').padStart(12)} ${(v.megabytes ?? 0).toFixed(2).padStart(7)} ${(v.msPerImage ?? 0).toFixed(2).padStart(8)}`);
  }
  io.log(`  from scratch (same budget): ${pct(r.scratch.top1)}; nearest-neighbour recall@1 ${pct(r.features.recallAt1)}; fused features ${pct(r.features.fusion.fused)}`);
  for (const b of accuracyBars(r)) io.log(`  bar: ${b.name} ${b.target}: ${b.measured}${b.met === undefined ? '' : b.met ? ' — met' : ' — MISSED'}`);
  for (const s of r.skipped) io.log(`  not run: ${s.stage} (${s.reason})`);
}
