import type { TopLevelSpec } from './render.js';
import type { DemoResult } from '../results.js';

/** One chart of the report: its file name (under charts/), title and Vega-Lite spec. */
export interface ChartSpec {
  file: string;
  title: string;
  spec: TopLevelSpec;
}

const WIDTH = 420;
const HEIGHT = 220;
const base = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', width: WIDTH, height: HEIGHT, background: 'white' } as const;

/** Loss and test top-1 per epoch, transfer vs from scratch (and the pretraining run when it happened here). */
function curves(r: DemoResult): ChartSpec[] {
  const rows = [
    ...r.transfer.epochs.map((e) => ({ run: 'transfer (pretrained backbone)', ...e })),
    ...r.scratch.epochs.map((e) => ({ run: 'from scratch, same budget', ...e })),
  ];
  const line = (field: 'loss' | 'top1', title: string, file: string, format?: string): ChartSpec => ({
    file,
    title,
    spec: {
      ...base,
      title,
      data: { values: rows },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
        y: { field, type: 'quantitative', title: field === 'loss' ? 'mean training loss' : 'test top-1', scale: { zero: false }, ...(format ? { axis: { format } } : {}) },
        color: { field: 'run', type: 'nominal', title: null, legend: { orient: 'bottom', labelLimit: 0 } },
      },
    } as TopLevelSpec,
  });
  return [line('loss', 'Training loss: transfer vs from scratch', 'loss.svg'), line('top1', 'Test top-1: transfer vs from scratch', 'accuracy.svg', '.0%')];
}

/** Accuracy, size and latency of each model variant, side by side. */
function variants(r: DemoResult): ChartSpec[] {
  const rows = r.variants.filter((v) => v.top1 !== undefined);
  const bar = (field: 'top1' | 'megabytes' | 'msPerImage', title: string, file: string, axisTitle: string, format?: string): ChartSpec => ({
    file,
    title,
    spec: {
      ...base,
      height: 22 * rows.length,
      title,
      data: { values: rows.filter((v) => v[field] !== undefined) },
      layer: [
        { mark: 'bar', encoding: { color: { field: 'family', type: 'nominal', legend: { orient: 'bottom', title: null, labelLimit: 0 } } } },
        { mark: { type: 'text', align: 'left', dx: 3 }, encoding: { text: { field, type: 'quantitative', format: format ?? '.3~f' } } },
      ],
      encoding: {
        y: { field: 'name', type: 'nominal', sort: null, title: null },
        x: { field, type: 'quantitative', title: axisTitle, ...(field === 'top1' ? { scale: { domain: [0, 1] }, axis: { format: '.0%' } } : {}) },
      },
    } as TopLevelSpec,
  });
  return [
    bar('top1', 'Test top-1 per model variant', 'variants-accuracy.svg', 'test top-1', '.2%'),
    bar('megabytes', 'Weight size per model variant', 'variants-size.svg', 'MB of weights'),
    bar('msPerImage', 'Latency per model variant', 'variants-latency.svg', 'ms per image'),
  ];
}

/** The GPU timestamp profile: milliseconds per kernel for one forward of each variant. */
function profile(r: DemoResult): ChartSpec[] {
  if (r.timing.length === 0) return [];
  const rows = r.timing.flatMap((t) => t.kernels.map((k) => ({ variant: t.variant, kernel: k.kernel, ms: k.ms })));
  return [
    {
      file: 'kernel-profile.svg',
      title: `Kernel time of one forward (batch ${r.timing[0]!.batch}), per variant`,
      spec: {
        ...base,
        height: 26 * r.timing.length,
        title: `Kernel time of one forward (batch ${r.timing[0]!.batch}), ${r.timing[0]!.source}`,
        data: { values: rows },
        mark: 'bar',
        encoding: {
          y: { field: 'variant', type: 'nominal', sort: null, title: null },
          x: { field: 'ms', type: 'quantitative', aggregate: 'sum', title: 'ms (stacked by kernel)' },
          color: { field: 'kernel', type: 'nominal', legend: { orient: 'bottom', columns: 3, title: null, labelLimit: 0 } },
          order: { field: 'ms', type: 'quantitative', aggregate: 'sum', sort: 'descending' },
        },
      } as TopLevelSpec,
    },
  ];
}

/** Every chart of a run's report. */
export function reportCharts(r: DemoResult): ChartSpec[] {
  return [...curves(r), ...variants(r), ...profile(r)];
}
