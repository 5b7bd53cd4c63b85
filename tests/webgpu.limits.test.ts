// Failures that must surface before the device sees them, or at the next op
// with a name: an allocation larger than the adapter can bind, one past the
// optional memory cap (both naming the op, the size and the limit, with no
// buffer created), and a kernel that fails WebGPU validation (named by its
// kernel, at the next op, after which the backend keeps working).
import { expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { BackendError } from '@kiln/core';
import { initWebGPU } from '@kiln/kernels';
import { describeWebGPU } from '@kiln/test-helpers';

const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

await describeWebGPU('WebGPU allocation limits and named kernel errors', () => {
  it('a tensor larger than maxStorageBufferBindingSize is refused by the op that asked, before any buffer is created', async () => {
    const backend = await initWebGPU();
    const limit = Math.min(backend.device.limits.maxStorageBufferBindingSize, backend.device.limits.maxBufferSize);
    const elements = limit / 4 + 1;
    const before = backend.memory().buffersAllocated;
    const sizes = `${elements * 4} bytes .*exceeds the largest buffer this WebGPU adapter can bind: max(StorageBufferBinding|Buffer)Size = ${limit} bytes`;
    expect(() => kiln.empty([elements], { device: 'webgpu' })).toThrow(new RegExp(`^empty: cannot allocate a float32 tensor of shape \\[${elements}\\] on webgpu: ${sizes}`));
    expect(() => kiln.zeros([2, limit / 8 + 1], { device: 'webgpu' })).toThrow(/^full: cannot allocate a float32 tensor of shape \[2, \d+\]/);
    // An op's output: [n, 1] @ [1, n] has n^2 elements, just past the limit.
    const n = Math.ceil(Math.sqrt(limit / 4)) + 1;
    const a = kiln.ones([n, 1], { device: 'webgpu' });
    const b = kiln.ones([1, n], { device: 'webgpu' });
    expect(() => a.matmul(b)).toThrow(new RegExp(`^matmul: cannot allocate a float32 tensor of shape \\[${n}, ${n}\\] on webgpu: ${n * n * 4} bytes`));
    expect(backend.memory().buffersAllocated - before, 'only the two small operands reached the device').toBeLessThanOrEqual(2);
    a.dispose();
    b.dispose();
  });

  it('memoryCap: pooled buffers are freed first, then an allocation past the cap fails with the op, the size and the cap', async () => {
    const backend = await initWebGPU();
    const MiB = 2 ** 20;
    const saved = backend.memoryCap;
    try {
      const inUse = backend.runtime.storagePool.bytesInUse;
      backend.memoryCap = inUse + 2 * MiB;
      const x = kiln.empty([MiB / 4], { device: 'webgpu' }); // 1 MiB
      const pooled = kiln.empty([MiB / 8], { device: 'webgpu' }); // 0.5 MiB, then returned to the pool
      pooled.dispose();
      expect(backend.runtime.storagePool.bytesPooled).toBeGreaterThanOrEqual(MiB / 2);
      // 0.75 MiB fits only once the pooled half MiB is freed.
      const y = kiln.empty([(3 * MiB) / 16], { device: 'webgpu' });
      expect(backend.runtime.storagePool.bytesPooled, 'the pool was trimmed to make room').toBeLessThan(MiB / 2);
      expect(() => x.mul(2)).toThrow(new RegExp(`^mul: cannot allocate a float32 tensor of shape \\[${MiB / 4}\\] on webgpu: ${MiB} bytes \\(1\\.0 MiB\\) more would take GPU memory past the memory cap of ${inUse + 2 * MiB} bytes`));
      x.dispose();
      y.dispose();
    } finally {
      backend.memoryCap = saved;
    }
    const z = kiln.ones([MiB], { device: 'webgpu' }).mul(2);
    expect((await z.sum().item())).toBe(2 * MiB);
    z.dispose();
  });

  it('a kernel that fails validation is named at the next op, and the backend recovers', async () => {
    const backend = await initWebGPU();
    const x = kiln.ones([4], { device: 'webgpu' });
    // A validation error invalidates the whole batch it was submitted in (its error names every kernel of it), so x is filled first.
    await backend.sync();
    backend.runtime.dispatch({
      kernel: 'testBrokenKernel', key: 'test-broken-kernel|f32', code: () => 'fn main( {',
      bindings: [], meta: [0], workgroups: [1, 1, 1],
    });
    backend.flush();
    await settle();
    // The next op, not only the next readback, reports it.
    expect(() => x.add(1)).toThrow(/^testBrokenKernel: WGSL kernel 'test-broken-kernel\|f32' failed validation: .*While calling \[Device\]\.CreateShaderModule/s);
    const y = x.add(1);
    expect(Array.from(await y.toArray())).toEqual([2, 2, 2, 2]);
    x.dispose();
    y.dispose();
  });

  it('a validation error raised while a batch runs names the kernels of that batch', async () => {
    const backend = await initWebGPU();
    const out = kiln.zeros([4], { device: 'webgpu' });
    const storage = out._storage.data as unknown as { buffer: GPUBuffer };
    await backend.sync();
    // The shader writes binding 1 but the dispatch declares it read-only: the pipeline's layout mismatches.
    backend.runtime.dispatch({
      kernel: 'testLayoutMismatch', key: 'test-layout-mismatch',
      code: () => '@group(0) @binding(0) var<uniform> m: vec4<u32>; @group(0) @binding(1) var<storage, read_write> o: array<f32>; @compute @workgroup_size(1) fn main() { o[0] = 1.0; }',
      bindings: [{ buffer: storage.buffer }], meta: [0], workgroups: [1, 1, 1],
    });
    await expect(out.toArray()).rejects.toThrow(/^testLayoutMismatch: /);
    expect(Array.from(await out.toArray())).toEqual([0, 0, 0, 0]);
    out.dispose();
  });
});
