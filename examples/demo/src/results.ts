import type { EpochRecord } from './train-loop.js';

/** One model variant in the comparison table (fp32, pruned, int8, ONNX...). */
export interface VariantRow {
  name: string;
  /** Groups the bars of a chart: 'Kiln fp32', 'pruned', 'int8', 'ONNX Runtime'. */
  family: string;
  /** Test top-1 (fraction). */
  top1?: number;
  /** Parameters (weights and biases; buffers not counted). */
  params?: number;
  /** Weights that are not zero (pruned variants). */
  nonzeroParams?: number;
  /** Megabytes (10^6 bytes) of the state dict: fp32 4 bytes a value, int8 1 plus scales. */
  megabytes?: number;
  /** Milliseconds per image of a batched forward (best of the timed repeats). */
  msPerImage?: number;
  /** Fraction of test images whose predicted class equals Kiln's fp32 model's (ONNX rows). */
  agreement?: number;
}

/** Kernel times of one forward of a variant (GPU timestamps, or wall clock on the CPU backend). */
export interface TimingProfile {
  variant: string;
  batch: number;
  /** 'GPU timestamps' or 'wall clock'. */
  source: string;
  totalMs: number;
  kernels: { kernel: string; ms: number; count: number }[];
}

/** A stage that did not run, and why. */
export interface SkippedStage {
  stage: string;
  reason: string;
}

/** What a training stage measured. */
export interface TrainingResult {
  epochs: EpochRecord[];
  /** Final test top-1 / top-2 (fractions). */
  top1: number;
  top2: number;
  /** Wall-clock seconds of the stage (training and evaluation). */
  seconds: number;
  trainImages: number;
  /** Batch size of its training steps. */
  batchSize?: number;
  /** SGD settings of a run trained from random weights (pretraining, from scratch). */
  sgd?: { lr: number; momentum: number; weightDecay: number };
  /** The from-scratch run only: loaded from the cache and re-measured (its epoch records are the run that trained it). */
  cached?: boolean;
}

/** Everything one run computed; the report and results.json are written from this alone. */
export interface DemoResult {
  /** The options the run used (after defaults). */
  config: Record<string, unknown>;
  backend: string;
  /** Adapter / CPU description. */
  device: string;
  data: { kind: string; dir: string; trainPool: number; testPool: number };
  sourceClasses: string[];
  targetClasses: string[];
  pretrain: TrainingResult & { origin: 'trained' | 'cache' | 'weights'; checkpoint: string; safetensors?: string };
  transfer: TrainingResult;
  scratch: TrainingResult;
  features: {
    /** Nearest neighbour (cosine) in the training images' features has the query's class. */
    recallAt1: number;
    gallery: number;
    queries: number;
    /** Linear heads trained on visual features, the second vector, and both concatenated. */
    fusion: { visual: number; descriptor: number; fused: number; descriptorName: string };
  };
  variants: VariantRow[];
  pruning?: {
    /** Fraction asked for, and the global fraction of zeros measured over the pruned weights. */
    amount: number;
    sparsity: number;
    /** Weights ranked by global pruning, and how many of them are not zero. */
    prunableWeights: number;
    nonzero: number;
    beforeFinetune: number;
    top1: number;
    /** The channel-shrunk model, when that step ran. */
    shrunk?: {
      /** Fraction of every block's inner channels removed (a multiple of 1/8). */
      amount: number;
      /** Inner channels kept per BasicBlock, e.g. `{ 'layer1.0': 48, ... }`. */
      widths: Record<string, number>;
      /** Parameters after and before shrinking. */
      params: number;
      paramsBefore: number;
      /** Test top-1 right after shrinking, and after the short fine-tune. */
      beforeFinetune: number;
      top1: number;
      /** Milliseconds per image of a batched forward, and the fp32 model's in the same run. */
      msPerImage: number;
      fp32MsPerImage: number;
    };
  };
  quantization?: { dynamicTop1?: number; staticTop1?: number };
  onnx?: {
    files: string[];
    /** Variant name -> fraction of test predictions equal to Kiln's for the same model. */
    agreement: Record<string, number>;
    /** Variant name -> why the exporter could not export it. */
    errors: Record<string, string>;
  };
  timing: TimingProfile[];
  skipped: SkippedStage[];
  /** Whole-run wall clock in seconds. */
  seconds: number;
  /** Stage name -> seconds. */
  stageSeconds: Record<string, number>;
}
