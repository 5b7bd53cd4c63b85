// memory().peakBytesInUse is a high-water mark on every backend: it rises
// with an allocation, stays after the memory is freed, and
// resetPeakMemoryStats() restarts it from the bytes in use now (PyTorch's
// max_memory_allocated / reset_peak_memory_stats).
import { expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { describeBackends } from '@kiln/test-helpers';

await describeBackends('memory high-water mark', (device) => {
  it('rises with an allocation, survives its dispose, and restarts on reset', async () => {
    kiln.resetPeakMemoryStats(device);
    const start = kiln.memory(device);
    expect(start.peakBytesInUse).toBeGreaterThanOrEqual(start.bytesInUse);
    const big = kiln.zeros([1 << 20], { device });
    await big.toArray();
    const during = kiln.memory(device).peakBytesInUse;
    expect(during - start.peakBytesInUse).toBeGreaterThanOrEqual(4 << 20);
    big.dispose();
    expect(kiln.memory(device).peakBytesInUse).toBe(during);
    kiln.resetPeakMemoryStats(device);
    const after = kiln.memory(device);
    expect(after.peakBytesInUse).toBeLessThan(during);
    // A float16 tensor of the same length, written from the host, raises it by half as much. (zeros()
    // would fill through a float32 stand-in on webgpu, and the high-water mark rightly counts that scratch.)
    const half = kiln.fromArray(new Float32Array(1 << 20), [1 << 20], { device, dtype: 'float16' });
    expect(kiln.memory(device).peakBytesInUse - after.peakBytesInUse).toBeGreaterThanOrEqual(2 << 20);
    expect(kiln.memory(device).peakBytesInUse - after.peakBytesInUse).toBeLessThan(4 << 20);
    half.dispose();
  });
});
