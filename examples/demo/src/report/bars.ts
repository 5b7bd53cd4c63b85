import type { DemoResult } from '../results.js';
import { PRUNED_VARIANT } from '../stages/prune.js';
import { DYNAMIC_VARIANT, STATIC_VARIANT } from '../stages/quantize.js';

/** One of the accuracy bars for the default run, as measured by this run. */
export interface AccuracyBar {
  name: string;
  /** The rule, in words. */
  target: string;
  /** The measured value, formatted. */
  measured: string;
  /** undefined when the stage did not run. */
  met?: boolean;
}

const points = (x: number) => `${(100 * x).toFixed(2)} points`;

/**
 * The default run's accuracy bars: transfer ≥ 90 % top-1; pruned within 1.5
 * points of it; int8 within 1 point; ONNX predictions equal to Kiln's on ≥
 * 99.5 % of test images. (`--quick` runs are far too small to be held to them.)
 */
export function accuracyBars(r: DemoResult): AccuracyBar[] {
  const t = r.transfer.top1;
  const row = (name: string) => r.variants.find((v) => v.name === name);
  const within = (names: string[], label: string, pts: number): AccuracyBar => {
    const v = names.map(row).find((x) => x?.top1 !== undefined);
    const drop = v?.top1 === undefined ? undefined : t - v.top1;
    return {
      name: label,
      target: `within ${pts} points of transfer`,
      measured: drop === undefined ? 'not run' : `${v!.name}: ${(100 * v!.top1!).toFixed(2)} % (${drop >= 0 ? '−' : '+'}${points(Math.abs(drop))})`,
      met: drop === undefined ? undefined : drop <= pts / 100 + 1e-12,
    };
  };
  const agreements = Object.values(r.onnx?.agreement ?? {});
  const onnx = agreements.length ? Math.min(...agreements) : undefined;
  return [
    { name: 'transfer top-1', target: '≥ 90 %', measured: `${(100 * t).toFixed(2)} %`, met: t >= 0.9 },
    within([PRUNED_VARIANT], 'pruned top-1', 1.5),
    // The static model is the int8 network; while that flow is missing, the dynamic one stands in.
    within([STATIC_VARIANT, DYNAMIC_VARIANT], 'int8 top-1', 1),
    {
      name: 'ONNX agreement',
      target: '≥ 99.5 % of predictions equal',
      measured: onnx === undefined ? 'not run' : `${(100 * onnx).toFixed(2)} % (lowest over exported models)`,
      met: onnx === undefined ? undefined : onnx >= 0.995,
    },
  ];
}
