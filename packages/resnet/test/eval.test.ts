// Top-1 / top-5 accuracy helpers over sync and async batch iterators.
import { describe, expect, it } from 'vitest';
import { fromArray, tensor, type Tensor } from '@kiln/core';
import { Module } from '@kiln/nn';
import { evaluateAccuracy, topkCorrect } from '@kiln/resnet';

/** "Model" whose logits are its input: tests choose the scores directly. */
class Scores extends Module {
  calls = 0;
  override forward(x: Tensor): Tensor {
    this.calls++;
    expect(this.training).toBe(false);
    return x.clone();
  }
}

// 6 classes; row scores make the label rank 0, 1, 5 and 2.
const rows = [
  [0, 9, 1, 2, 3, 4], // label 1: rank 0
  [9, 8, 0, 0, 0, 0], // label 1: rank 1
  [5, 4, 3, 2, 1, 0], // label 5: rank 5
  [1, 1, 1, 0, 0, 0], // label 2: tie with 0 and 1, lower index first -> rank 2
];
const labels = [1, 1, 5, 2];

describe('accuracy', () => {
  it('topkCorrect counts labels within the k best scores, ties broken by index as torch.topk', async () => {
    const logits = fromArray(rows.flat(), [4, 6]);
    expect(await topkCorrect(logits, labels, [1, 2, 3, 5])).toEqual({ 1: 1, 2: 2, 3: 3, 5: 3 });
    expect(await topkCorrect(logits, tensor(labels, { dtype: 'int32' }), [6])).toEqual({ 6: 4 });
    await expect(topkCorrect(logits, [1, 2, 3])).rejects.toThrow(/3 labels for 4 rows/);
    await expect(topkCorrect(logits, [1, 2, 3, 6])).rejects.toThrow(/label 6 of row 3/);
  });

  it('evaluateAccuracy over an async iterator, in eval mode, restoring training mode', async () => {
    const model = new Scores();
    async function* batches() {
      yield { images: fromArray(rows.slice(0, 2).flat(), [2, 6]), labels: labels.slice(0, 2) };
      yield { images: fromArray(rows.slice(2).flat(), [2, 6]), labels: tensor(labels.slice(2), { dtype: 'int32' }) };
    }
    const seen: number[] = [];
    const r = await evaluateAccuracy(model, batches(), { topk: [3], onBatch: (n) => seen.push(n) });
    expect(r).toEqual({ top1: 0.25, top5: 0.75, count: 4, correct: { 1: 1, 5: 3, 3: 3 } });
    expect(seen).toEqual([2, 4]);
    expect(model.training).toBe(true);
    const sync = await evaluateAccuracy(model, [{ images: fromArray(rows.flat(), [4, 6]), labels }]);
    expect(sync.top1).toBe(0.25);
  });
});
