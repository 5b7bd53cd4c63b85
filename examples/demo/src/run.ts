import { mkdir } from 'node:fs/promises';
import { chooseBackend } from './backend.js';
import { buildTasks, stageRng, type DemoContext } from './context.js';
import { loadFashionMnist, resolveDataDir } from './data/fashion-mnist.js';
import { resolveOptions, type DemoOptions } from './options.js';
import { consoleIO, type DemoIO } from './progress.js';
import { accuracyBars } from './report/bars.js';
import { classNames } from './report/markdown.js';
import { writeReport, type ReportFiles } from './report/write.js';
import type { DemoResult, SkippedStage, VariantRow } from './results.js';
import { featuresStage } from './stages/features.js';
import { fp32Size, measureVariant, profileVariant, type Variant } from './stages/measure.js';
import { pretrainStage } from './stages/pretrain.js';
import { transferStage } from './stages/transfer.js';
import { pct } from './train-loop.js';

/** What {@link runDemo} returns: the numbers and the files written. */
export interface DemoRun {
  result: DemoResult;
  files: ReportFiles;
  out: string;
}

/** Stages whose Kiln API is not in this tree yet: said once in the output and in the report. */
const NOT_LANDED: SkippedStage[] = [
  { stage: 'pruning', reason: '`prune` is not exported by @kiln/nn yet (torch.nn.utils.prune, packages/nn/src/prune/)' },
  { stage: 'quantization', reason: '`quantizeDynamic` and static quantization are not exported by @kiln/nn yet (packages/nn/src/quantization/)' },
  { stage: 'export', reason: '`exportOnnx` (packages/onnx) is not in this tree yet' },
];

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

  const { device, description } = await chooseBackend(opts.backend, io);
  const where = resolveDataDir(opts.data);
  const data = await loadFashionMnist(where.dir, where.kind);
  io.log(`data: ${where.kind === 'embedded' ? 'embedded Fashion-MNIST subset' : where.kind === 'debian' ? "Debian's Fashion-MNIST" : 'Fashion-MNIST'} (${where.dir}): ${data.train.count} training, ${data.test.count} test images${opts.quick ? '; --quick' : ''}`);
  const pipe = { size: opts.imageSize, cropScale: [0.6, 1] as const };
  const tasks = buildTasks(data, opts, pipe);
  const ctx: DemoContext = { opts, io, device, data, pipe, ...tasks, rng: (k) => stageRng(opts.seed, k) };

  const pretrain = await timed('1 pretraining', () => pretrainStage(ctx));
  const { transfer, scratch, model } = await timed('2 transfer learning', () => transferStage(ctx, pretrain.checkpoint));
  io.log(`  transfer ${pct(transfer.top1)} vs from scratch ${pct(scratch.top1)} on the ${ctx.target.classes.length} target classes`);
  const features = await timed('3 features', () => featuresStage(ctx, model));

  const skipped = [...NOT_LANDED];
  for (const s of skipped) io.log(`[${s.stage === 'pruning' ? 4 : s.stage === 'quantization' ? 5 : 6}/7] ${s.stage}: not run: ${s.reason}`);

  const variants: Variant[] = [{ name: 'Kiln fp32', family: 'Kiln fp32', module: model, ...fp32Size(model) }];
  const rows: VariantRow[] = [];
  const timing = await timed('7 timing', async () => {
    io.log(`[7/7] timing: accuracy, size and latency per variant; kernel profile of one forward`);
    const profiles = [];
    for (const v of variants) {
      rows.push(await measureVariant(v, ctx));
      profiles.push(await profileVariant(v, ctx));
    }
    return profiles;
  });
  for (const r of rows) io.log(`  ${r.name.padEnd(24)} top-1 ${r.top1 === undefined ? '—' : pct(r.top1)}  ${(r.megabytes ?? 0).toFixed(2)} MB  ${(r.msPerImage ?? 0).toFixed(2)} ms/image`);
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
