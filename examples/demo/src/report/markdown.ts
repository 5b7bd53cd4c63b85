import { FASHION_CLASSES } from '../data/fashion-mnist.js';
import type { DemoResult } from '../results.js';
import { pct } from '../train-loop.js';
import { accuracyBars } from './bars.js';
import type { ChartSpec } from './charts.js';

const img = (charts: ChartSpec[], file: string) => {
  const c = charts.find((x) => x.file === file);
  return c ? `![${c.title}](charts/${c.file})\n` : '';
};
const num = (x: number | undefined, digits = 2) => (x === undefined || Number.isNaN(x) ? '—' : x.toFixed(digits));
const int = (x: number | undefined) => (x === undefined ? '—' : x.toLocaleString('en-US'));
const p = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '—' : pct(x));
const table = (head: string[], rows: (string | number)[][], align?: string[]) =>
  [`| ${head.join(' | ')} |`, `|${(align ?? head.map(() => '--')).map((a) => (a === 'r' ? '--:' : ':--')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');

/** SGD settings in words ('SGD' when the record has none). */
const sgd = (s: { lr: number; momentum: number; weightDecay: number } | undefined) => (s ? `SGD lr ${s.lr} momentum ${s.momentum} weight decay ${s.weightDecay}` : 'SGD');

/** The run's report in Markdown; charts are linked from charts/. Every number comes from `r`. */
export function reportMarkdown(r: DemoResult, charts: ChartSpec[]): string {
  const out: string[] = [];
  const cfg = r.config;
  out.push('# Kiln demo: ResNet18 on Fashion-MNIST, from pretraining to int8 ONNX\n');
  out.push(
    `Backend **${r.backend}** (${r.device}); data: ${r.data.kind === 'embedded' ? 'the embedded subset' : r.data.kind === 'debian' ? "Debian's full Fashion-MNIST" : 'Fashion-MNIST'} in \`${r.data.dir}\` ` +
      `(${int(r.data.trainPool)} training / ${int(r.data.testPool)} test images); input ${cfg.imageSize}×${cfg.imageSize}, grey replicated to RGB, ImageNet mean/std; ` +
      `batch ${cfg.batchSize}, seed ${cfg.seed}${cfg.quick ? '; **--quick** (a sliver of the data: the numbers show the pipeline works, not what it can reach)' : ''}. ` +
      `Whole run ${num(r.seconds, 0)} s.\n`,
  );
  out.push(`Source classes (pretraining): ${r.sourceClasses.join(', ')}. Target classes (transfer): ${r.targetClasses.join(', ')}. All accuracies are on the official test split.\n`);

  out.push('## Summary\n');
  out.push(
    table(
      ['model', 'test top-1', 'parameters', 'non-zero', 'MB', 'ms / image', 'predictions equal to Kiln'],
      r.variants.map((v) => [v.name, p(v.top1), int(v.params), int(v.nonzeroParams), num(v.megabytes), num(v.msPerImage), v.agreement === undefined ? '' : pct(v.agreement)]),
      ['l', 'r', 'r', 'r', 'r', 'r', 'r'],
    ) + '\n',
  );
  out.push(table(['bar (default run)', 'target', 'measured', 'met'], accuracyBars(r).map((b) => [b.name, b.target, b.measured, b.met === undefined ? 'not run' : b.met ? 'yes' : '**no**'])) + '\n');
  if (r.skipped.length) out.push(`Stages not run: ${r.skipped.map((s) => `**${s.stage}** (${s.reason})`).join('; ')}.\n`);

  out.push('## 1. Pretraining\n');
  const pre = r.pretrain;
  if (pre.origin === 'weights') out.push(`Skipped: the backbone is \`${pre.checkpoint}\` (\`--weights\`).\n`);
  else {
    out.push(
      `A torchvision-shaped resnet18 trained from random weights (\`zeroInitResidual: true\`, torchvision's \`zero_init_residual\`) on the ${r.sourceClasses.length} source classes ` +
        `(${int(pre.trainImages)} images, ${pre.epochs.length} epochs, batch ${String(cfg.pretrainBatchSize)}, ${sgd(pre.sgd)}, warm-up then cosine, RandomResizedCrop scale [0.6, 1] + horizontal flip): ` +
        `source-class test top-1 **${p(pre.top1)}**${pre.origin === 'cache' ? ' (reused from the cache, re-measured in this run)' : ` in ${num(pre.seconds, 0)} s`}. ` +
        `Saved as \`backbone.pth\` (torch.save's format: \`torch.load\` reads it) and \`backbone.safetensors\`.\n`,
    );
  }

  out.push('## 2. Transfer learning vs from scratch\n');
  out.push(
    `The checkpoint loaded into a fresh \`resnet18()\`, \`fc\` replaced by \`Linear(512, ${r.targetClasses.length})\`, everything frozen except \`layer4\` and \`fc\`; ` +
      `SGD parameter groups (layer4 lr 1e-3, fc lr 1e-2, momentum 0.9), warm-up then cosine, batch ${String(cfg.batchSize)}; frozen BatchNorm in eval mode (layer4's trains, its running statistics re-estimated before each evaluation); ` +
      `RandomResizedCrop at scale [1, 1] (the whole item) + horizontal flip. ` +
      `${int(r.transfer.trainImages)} training images. From scratch: the same network, images and epochs with the recipe that trains it from random weights ` +
      `(every layer, ${sgd(r.scratch.sgd)}, batch ${String(r.scratch.batchSize ?? cfg.batchSize)}, BatchNorm in training mode).\n`,
  );
  out.push(
    table(
      ['epoch', 'transfer loss', 'transfer top-1', 'transfer top-2', 'scratch loss', 'scratch top-1', 'scratch top-2'],
      r.transfer.epochs.map((e, i) => {
        const s = r.scratch.epochs[i];
        return [e.epoch, num(e.loss, 4), pct(e.top1), pct(e.top2), num(s?.loss, 4), p(s?.top1), p(s?.top2)];
      }),
      ['r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ) + '\n',
  );
  out.push(`Final: transfer **${pct(r.transfer.top1)}** (${num(r.transfer.seconds, 0)} s) vs from scratch **${pct(r.scratch.top1)}** (${r.scratch.cached ? `reused from the cache and re-measured in ${num(r.scratch.seconds, 0)} s; its epochs are the run that trained it` : `${num(r.scratch.seconds, 0)} s`}).\n`);
  out.push(img(charts, 'loss.svg') + img(charts, 'accuracy.svg'));

  out.push('## 3. Features\n');
  const f = r.features;
  out.push(
    `Pooled 512-d features of the fine-tuned backbone. Nearest-neighbour retrieval (cosine, ${int(f.queries)} test queries against ${int(f.gallery)} training images): ` +
      `recall@1 **${pct(f.recallAt1)}**. Fusion with a second vector (${f.fusion.descriptorName}), concatenated after standardising each, one linear layer:\n`,
  );
  out.push(table(['input of the linear head', 'test top-1'], [['visual features (512)', pct(f.fusion.visual)], [`${f.fusion.descriptorName}`, pct(f.fusion.descriptor)], ['fused (concatenated)', pct(f.fusion.fused)]], ['l', 'r']) + '\n');

  out.push('## 4. Pruning\n');
  const pr = r.pruning;
  if (pr) {
    out.push(
      `\`prune.globalUnstructured\` with \`prune.L1Unstructured\` over every conv and linear weight (${int(pr.prunableWeights)} weights), amount ${pct(pr.amount)}: ` +
        `measured sparsity ${pct(pr.sparsity)} (${int(pr.nonzero)} non-zero). Test top-1 ${pct(pr.beforeFinetune)} right after pruning, **${pct(pr.top1)}** after a short fine-tune ` +
        `(the transfer recipe; masked weights stay zero), then \`prune.remove\` makes it permanent. Unstructured zeros keep the dense size and speed.\n`,
    );
    const sh = pr.shrunk;
    if (sh) {
      const widths = [...new Set(Object.values(sh.widths))].join(' / ');
      out.push(
        `Channel shrinking: \`pruneInnerChannels(model, ${sh.amount})\` (the smallest-L2 ${pct(sh.amount)} of every BasicBlock's inner channels, \`prune.ln_structured\` on conv1 with bn1 masked alike), ` +
          `then \`shrinkInnerChannels\` removes them: inner widths ${widths} (multiples of 8, which the kernels tile evenly), ${int(sh.params)} parameters (was ${int(sh.paramsBefore)}). ` +
          `Test top-1 ${pct(sh.beforeFinetune)} right after shrinking, **${pct(sh.top1)}** after the same short fine-tune; ` +
          `**${num(sh.msPerImage)} ms/image** vs ${num(sh.fp32MsPerImage)} for the fp32 model (${num(sh.fp32MsPerImage / sh.msPerImage)}× its speed, wall clock, batch ${cfg.quick ? 8 : 32})` +
          `${shrunkKernelTimes(r)}.\n`,
      );
    }
  }
  out.push(skippedText(r, ['channel shrinking']));
  out.push('## 5. Quantization\n');
  const q = r.quantization;
  if (q?.dynamicTop1 !== undefined) out.push(`\`quantizeDynamic(model, { types: [Linear], dtype: 'qint8' })\` (the seed's \`quantize_dynamic\`): int8 \`fc\`, test top-1 **${pct(q.dynamicTop1)}**.\n`);
  if (q?.staticTop1 !== undefined) out.push(`Static int8 of the whole network, calibrated on training images: test top-1 **${pct(q.staticTop1)}**.\n`);
  out.push(skippedText(r, ['static int8']));
  out.push('## 6. ONNX export\n');
  if (r.onnx) {
    const agree = Object.entries(r.onnx.agreement);
    if (agree.length) out.push(`\`exportOnnx(model, dummy, { dynamicAxes })\`, run in onnxruntime-node; predictions equal to Kiln's for the same model: ${agree.map(([k, v]) => `${k} **${pct(v)}**`).join(', ')} (files: ${r.onnx.files.map((x) => `\`${x}\``).join(', ')}).\n`);
    for (const [k, e] of Object.entries(r.onnx.errors)) out.push(`Not exported: ${k}: ${e}\n`);
  }
  out.push(skippedText(r, ['export']));

  out.push('## Model variants\n');
  out.push(img(charts, 'variants-accuracy.svg') + img(charts, 'variants-size.svg') + img(charts, 'variants-latency.svg'));

  out.push('## 7. Timing\n');
  if (r.timing.length) {
    out.push(`One eval forward of batch ${r.timing[0]!.batch} per variant, ${r.timing[0]!.source}.\n`);
    out.push(img(charts, 'kernel-profile.svg'));
    out.push(
      table(
        ['variant', 'total ms', 'slowest kernels (ms, dispatches)'],
        r.timing.map((t) => [t.variant, num(t.totalMs, 1), t.kernels.slice(0, 4).map((k) => `${k.kernel} ${num(k.ms, 1)} (${k.count})`).join(', ')]),
        ['l', 'r', 'l'],
      ) + '\n',
    );
  }
  out.push('## Stage times\n');
  out.push(table(['stage', 'seconds'], Object.entries(r.stageSeconds).map(([k, v]) => [k, num(v, 1)]), ['l', 'r']) + '\n');
  out.push(`Raw numbers: [results.json](results.json). Options: \`${JSON.stringify(cfg)}\`.\n`);
  return out.join('\n');
}

/** ", kernel time X vs Y ms" from the timing stage's profiles of the shrunk and fp32 models, when both ran. */
function shrunkKernelTimes(r: DemoResult): string {
  const find = (name: string) => r.timing.find((t) => t.variant === name);
  const [shrunk, fp32] = [find('channel-shrunk (fine-tuned)'), find('Kiln fp32')];
  if (!shrunk || !fp32) return '';
  return `; ${shrunk.source} of one batch-${shrunk.batch} forward: ${num(shrunk.totalMs, 1)} vs ${num(fp32.totalMs, 1)} ms (${num(fp32.totalMs / shrunk.totalMs)}×)`;
}

function skippedText(r: DemoResult, stages: string[]): string {
  return r.skipped.filter((s) => stages.includes(s.stage)).map((s) => `Not run: ${s.stage}: ${s.reason}.\n`).join('');
}

/** Class names of label ids. */
export const classNames = (ids: readonly number[]) => ids.map((c) => FASHION_CLASSES[c]!);
