import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** Options of {@link runDemo} (the command line's flags). */
export interface DemoOptions {
  /** Every stage on a sliver of the data, in well under a minute (what CI runs). */
  quick?: boolean;
  /** Epochs of transfer learning (and of the from-scratch comparison). */
  epochs?: number;
  /** Epochs of pretraining the backbone. */
  pretrainEpochs?: number;
  /** Batch size of transfer learning, the from-scratch comparison and the pruning fine-tune. */
  batchSize?: number;
  /** Batch size of pretraining. */
  pretrainBatchSize?: number;
  /** Square input size the 28×28 images are upscaled to. */
  imageSize?: number;
  /** Output folder (report, charts, checkpoints, results.json). */
  out?: string;
  /** 'webgpu', 'cpu', or 'auto' (WebGPU when an adapter exists). */
  backend?: 'auto' | 'webgpu' | 'cpu';
  /** A torchvision resnet18 .pth (e.g. resnet18-f37072fd.pth): skips pretraining and transfers from it. */
  weights?: string;
  seed?: number;
  /** Pretrain again even when a cached backbone exists. */
  retrain?: boolean;
  /** A directory with the four Fashion-MNIST idx(.gz) files (default: Debian's full set when installed, else the embedded subset). */
  data?: string;
  /** Where pretrained backbones are cached (default $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln). */
  cacheDir?: string;
  /** Training images per source class for pretraining. */
  pretrainPerClass?: number;
  /** Training images per target class for transfer learning (the "small training set"). */
  trainPerClass?: number;
  /** Test images per class (held-out evaluation, official test split). */
  testPerClass?: number;
  /** Fraction of conv/linear weights global L1 pruning removes. */
  pruneAmount?: number;
  /** Fraction of every BasicBlock's inner channels channel shrinking removes (rounded to a multiple of 1/8). */
  shrinkAmount?: number;
  /**
   * Compute the frozen prefix (conv1 to layer3) of the seed-recipe runs once
   * per image and train layer4 + fc on its activations (default true; false
   * runs the frozen layers every step: slower, the same items and order).
   */
  storePrefix?: boolean;
}

/** Options with every default filled in. */
export type ResolvedOptions = Required<Omit<DemoOptions, 'weights' | 'data'>> & { weights?: string; data?: string };

/**
 * The default run's budget, sized for a 2-core machine with lavapipe (see the
 * demo README for the measurement): the whole run ≤ 10 minutes, a rerun with
 * the cached backbone ≤ 3 minutes.
 */
export const DEFAULTS = {
  epochs: 10,
  pretrainEpochs: 4,
  batchSize: 8,
  pretrainBatchSize: 32,
  imageSize: 32,
  pretrainPerClass: 600,
  trainPerClass: 100,
  testPerClass: 100,
  pruneAmount: 0.5,
  shrinkAmount: 0.25,
} as const;

/** `--quick`: every stage, on a sliver. */
export const QUICK = {
  epochs: 2,
  pretrainEpochs: 1,
  batchSize: 8,
  pretrainBatchSize: 16,
  imageSize: 32,
  pretrainPerClass: 32,
  trainPerClass: 16,
  testPerClass: 16,
  pruneAmount: 0.5,
  shrinkAmount: 0.25,
} as const;

/** The cache root torch hub would use, Kiln's flavour: $KILN_CACHE_DIR, $XDG_CACHE_HOME/kiln or ~/.cache/kiln. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KILN_CACHE_DIR) return resolve(env.KILN_CACHE_DIR);
  return join(env.XDG_CACHE_HOME ? resolve(env.XDG_CACHE_HOME) : join(homedir(), '.cache'), 'kiln');
}

/** Fills in defaults (the quick ones under `quick`); explicit options win. */
export function resolveOptions(o: DemoOptions): ResolvedOptions {
  const d = o.quick ? QUICK : DEFAULTS;
  const pick = <K extends keyof typeof d>(k: K, v: number | undefined) => v ?? d[k];
  const r: ResolvedOptions = {
    quick: o.quick ?? false,
    epochs: pick('epochs', o.epochs),
    pretrainEpochs: pick('pretrainEpochs', o.pretrainEpochs),
    batchSize: pick('batchSize', o.batchSize),
    pretrainBatchSize: pick('pretrainBatchSize', o.pretrainBatchSize),
    imageSize: pick('imageSize', o.imageSize),
    pretrainPerClass: pick('pretrainPerClass', o.pretrainPerClass),
    trainPerClass: pick('trainPerClass', o.trainPerClass),
    testPerClass: pick('testPerClass', o.testPerClass),
    pruneAmount: pick('pruneAmount', o.pruneAmount),
    shrinkAmount: pick('shrinkAmount', o.shrinkAmount),
    out: resolve(o.out ?? 'demo-output'),
    backend: o.backend ?? 'auto',
    seed: o.seed ?? 0,
    retrain: o.retrain ?? false,
    storePrefix: o.storePrefix ?? true,
    cacheDir: o.cacheDir ? resolve(o.cacheDir) : defaultCacheDir(),
    weights: o.weights,
    data: o.data,
  };
  for (const k of ['epochs', 'pretrainEpochs', 'batchSize', 'pretrainBatchSize', 'imageSize', 'pretrainPerClass', 'trainPerClass', 'testPerClass'] as const) {
    if (!Number.isInteger(r[k]) || r[k] < 1) throw new DemoError(`--${kebab(k)} must be a positive integer, got ${r[k]}`);
  }
  if (r.imageSize < 32) throw new DemoError(`--image-size must be at least 32 (ResNet18 downsamples by 32), got ${r.imageSize}`);
  if (r.batchSize < 2 || r.pretrainBatchSize < 2) throw new DemoError('--batch-size and --pretrain-batch-size must be at least 2 (BatchNorm trains on batch statistics)');
  if (!(r.pruneAmount > 0 && r.pruneAmount < 1)) throw new DemoError(`--prune-amount must be in (0, 1), got ${r.pruneAmount}`);
  if (!(r.shrinkAmount >= 1 / 16 && r.shrinkAmount < 15 / 16)) throw new DemoError(`--shrink-amount must be in [0.0625, 0.9375) (it is rounded to a multiple of 1/8), got ${r.shrinkAmount}`);
  if (!['auto', 'webgpu', 'cpu'].includes(r.backend)) throw new DemoError(`--backend must be auto, webgpu or cpu, got '${r.backend}'`);
  return r;
}

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** A user-facing failure of the demo (bad option, unreadable data): printed as one line, exit 1. */
export class DemoError extends Error {
  override name = 'DemoError';
}
