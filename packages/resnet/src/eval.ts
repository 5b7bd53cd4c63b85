import { KilnError, noGrad, tidy, type Tensor } from '@kiln/core';
import type { Module } from '@kiln/nn';

/** One evaluation batch: images [B, 3, H, W] and their class ids. */
export interface EvalBatch {
  /** The input batch, [B, 3, H, W]. */
  images: Tensor;
  /** The true class of each image, [B]. */
  labels: Tensor | ArrayLike<number>;
}

/** What {@link evaluateAccuracy} returns. */
export interface AccuracyResult {
  /** Fraction of samples whose label is the top prediction. */
  top1: number;
  /** Fraction of samples whose label is among the 5 top predictions. */
  top5: number;
  /** Samples seen. */
  count: number;
  /** Correct samples per k in `topk`. */
  correct: Record<number, number>;
}

/** Options of {@link evaluateAccuracy}. */
export interface EvaluateOptions {
  /** The k to count (default [1, 5]); `top1`/`top5` are always reported. */
  topk?: number[];
  /** Called after each batch with the samples seen so far (progress bars). */
  onBatch?: (seen: number) => void;
}

/**
 * How many rows of `logits` [B, C] have their label among the k largest
 * values, per k. Ties count as PyTorch's topk breaks them (lower index first).
 */
export async function topkCorrect(logits: Tensor, labels: Tensor | ArrayLike<number>, ks: readonly number[] = [1, 5]): Promise<Record<number, number>> {
  if (logits.dim() !== 2) throw new KilnError('topkCorrect', `expected logits [B, C], got shape [${logits.shape.join(', ')}]`);
  const [B, C] = logits.shape as [number, number];
  const lab = 'dim' in labels && typeof labels.dim === 'function' ? await (labels as Tensor).toArray() : (labels as ArrayLike<number>);
  if (lab.length !== B) throw new KilnError('topkCorrect', `got ${lab.length} labels for ${B} rows of logits`);
  const values = await logits.toArray();
  const correct: Record<number, number> = Object.fromEntries(ks.map((k) => [k, 0]));
  for (let b = 0; b < B; b++) {
    const label = Number(lab[b]);
    if (!Number.isInteger(label) || label < 0 || label >= C) throw new KilnError('topkCorrect', `label ${lab[b]} of row ${b} is not a class id in [0, ${C})`);
    const mine = values[b * C + label]!;
    // Rank of the label's score: how many classes beat it (greater, or equal with a lower index).
    let rank = 0;
    for (let c = 0; c < C; c++) {
      const v = values[b * C + c]!;
      if (v > mine || (v === mine && c < label)) rank++;
    }
    for (const k of ks) if (rank < k) correct[k]!++;
  }
  return correct;
}

/**
 * Top-1 / top-5 accuracy of `model` over batches (an array, a generator or
 * an async iterator, e.g. a data loader), in eval mode without autograd.
 * The model's training mode is restored afterwards.
 */
export async function evaluateAccuracy(model: Module, batches: Iterable<EvalBatch> | AsyncIterable<EvalBatch>, opts: EvaluateOptions = {}): Promise<AccuracyResult> {
  const ks = [...new Set([1, 5, ...(opts.topk ?? [])])];
  const correct: Record<number, number> = Object.fromEntries(ks.map((k) => [k, 0]));
  let count = 0;
  const wasTraining = model.training;
  model.eval();
  try {
    for await (const { images, labels } of batches as AsyncIterable<EvalBatch>) {
      const logits = noGrad(() => tidy(() => model.call(images) as Tensor));
      try {
        const c = await topkCorrect(logits, labels, ks);
        for (const k of ks) correct[k]! += c[k]!;
      } finally {
        logits.dispose();
      }
      count += images.shape[0]!;
      opts.onBatch?.(count);
    }
  } finally {
    if (wasTraining) model.train();
  }
  const frac = (k: number) => (count === 0 ? 0 : correct[k]! / count);
  return { top1: frac(1), top5: frac(5), count, correct };
}
