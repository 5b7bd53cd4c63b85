// The memory suite's largest-batch prediction (benchmarks/src/suites/memory-budget.ts):
// the per-buffer bound scales the largest request of the measured step through
// the origin, which bounds every buffer that grows with the batch; a line
// through the largest requests at two batches does not, when the smaller
// batch's largest request is a fixed buffer (the autocast rows once predicted
// 64 that way, and the verification step failed on a 196 MiB float32 buffer).
// Pure arithmetic on buffer sizes built from ResNet18's shapes.
import { describe, expect, it } from 'vitest';
import { boundedBatch, fitPeak, largestBatch, largestBatchByBuffer } from '../benchmarks/src/suites/memory-budget.js';

const MiB = 2 ** 20;
/** lavapipe's maxStorageBufferBindingSize. */
const maxBuffer = 128 * MiB;
/** conv1's float32 output per image, [64, 112, 112] x 4 bytes: a buffer that grows with the batch. */
const perImage = 64 * 112 * 112 * 4;
/** A buffer that does not grow with the batch (a Winograd filter transform of layer4's size class). */
const fixed = 40e6;
/** The largest request a step at `batch` makes, given those two buffers. */
const largestAt = (batch: number) => Math.max(fixed, perImage * batch);
/** The true bound: the largest batch at which no buffer exceeds the limit. */
const trueBound = Math.floor(maxBuffer / perImage);

describe('largest batch under the per-buffer limit', () => {
  it('scaling the largest request at batch 16 through the origin gives a batch where every buffer fits', () => {
    const predicted = largestBatchByBuffer(maxBuffer, { batch: 16, peak: largestAt(16) });
    expect(predicted).toBe(trueBound);
    expect(largestAt(predicted)).toBeLessThanOrEqual(maxBuffer);
    expect(largestAt(predicted + 1)).toBeGreaterThan(maxBuffer);
  });

  it('a line through the largest requests at batches 8 and 16 overshoots when batch 8 is bound by a fixed buffer', () => {
    const line = fitPeak({ batch: 8, peak: largestAt(8) }, { batch: 16, peak: largestAt(16) });
    const byLine = largestBatch(maxBuffer, line);
    expect(largestAt(8)).toBe(fixed);
    expect(byLine).toBeGreaterThan(trueBound);
    expect(largestAt(byLine)).toBeGreaterThan(maxBuffer);
  });

  it('is conservative when the measured step is bound by a fixed buffer', () => {
    // At batch 4 the fixed buffer is the largest request: scaling it through the origin under-predicts, never over.
    const predicted = largestBatchByBuffer(maxBuffer, { batch: 4, peak: largestAt(4) });
    expect(largestAt(4)).toBe(fixed);
    expect(predicted).toBeLessThanOrEqual(trueBound);
  });

  it('boundedBatch takes the smaller of the budget and the buffer bound, and names it', () => {
    const peak = { fixedBytes: 400e6, perSampleBytes: 30e6 };
    const largest = { batch: 16, peak: largestAt(16) };
    expect(boundedBatch(2 * 1024 * MiB, peak, maxBuffer, largest)).toEqual({ batch: trueBound, bound: 'buffer limit' });
    expect(boundedBatch(1000e6, peak, maxBuffer, largest)).toEqual({ batch: largestBatch(1000e6, peak), bound: 'budget' });
  });

  it('rejects a request size that cannot scale', () => {
    expect(() => largestBatchByBuffer(maxBuffer, { batch: 16, peak: 0 })).toThrow(/positive request/);
  });
});
