/**
 * Classification of one preprocessed image: top-k classes with softmax
 * probabilities, and the time from upload to the logits on the host.
 */
import { fromArray, noGrad } from '@kiln/core';
import type { ImageTensor, ResNet } from '@kiln/resnet';

/** One ranked class. */
export interface Prediction {
  index: number;
  label: string;
  probability: number;
  logit: number;
}

/** What {@link classify} returns. */
export interface Classification {
  top: Prediction[];
  /** The raw logits [numClasses]. */
  logits: Float32Array;
  /** Milliseconds from upload to the logits read back. */
  ms: number;
}

/** Softmax in float64 (the probabilities shown must not be float32-rounded twice). */
function softmax(row: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  const out = Float64Array.from(row, (v) => Math.exp(v - max));
  const sum = out.reduce((a, b) => a + b, 0);
  return out.map((v) => v / sum);
}

/** The `k` largest of `logits`, highest first (ties: lower index first). */
export function topK(logits: Float32Array, labels: readonly string[], k: number): Prediction[] {
  const probs = softmax(logits);
  const order = [...logits.keys()].sort((a, b) => logits[b]! - logits[a]! || a - b).slice(0, k);
  return order.map((index) => ({ index, label: labels[index] ?? `class ${index}`, probability: probs[index]!, logit: logits[index]! }));
}

/** Runs the model in eval mode (fused path) on one image on `device`. */
export async function classify(model: ResNet, image: ImageTensor, labels: readonly string[], device: string, k = 5): Promise<Classification> {
  const start = performance.now();
  const x = fromArray(image.data, [1, ...image.shape], { device });
  const out = noGrad(() => model.call(x));
  let logits: Float32Array;
  try {
    logits = (await out.toArray()) as Float32Array;
  } finally {
    x.dispose();
    out.dispose();
  }
  const ms = performance.now() - start;
  return { top: topK(logits, labels, k), logits, ms };
}
