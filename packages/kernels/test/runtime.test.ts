import { BackendError } from '@kiln/core';
import { expect, it } from 'vitest';
import { bucketBytes } from '../src/pool.js';
import { getAdapterInfo, initWebGPU, WebGPUBackend } from '../src/index.js';
import { acquireDevice } from '../src/device.js';
import { backend, gpuDescribe, outPair, pair } from './helpers.js';

gpuDescribe('device and registration', () => {
  it('initWebGPU is idempotent and records adapter info', async () => {
    expect(await initWebGPU()).toBe(backend());
    const info = getAdapterInfo();
    expect(info).not.toBeNull();
    expect(info!.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    expect(Array.isArray(info!.features)).toBe(true);
  });
});

gpuDescribe('memory', () => {
  it('buckets sizes power-of-two-ish with at most 25% waste', () => {
    for (const n of [1, 4, 255, 256, 257, 1000, 4097, 123457, 1 << 24]) {
      const b = bucketBytes(n);
      expect(b).toBeGreaterThanOrEqual(n);
      if (n > 256) expect(b).toBeLessThanOrEqual(n * 1.25 + 1);
    }
  });

  it('a steady-state loop allocates no new GPU buffers', async () => {
    const be = backend();
    const w = pair('float32', [1, 32, 32]);
    const step = async () => {
      const x = be.alloc(32 * 32, 'float32');
      be.write(x, new Float32Array(32 * 32).fill(1));
      const y = be.alloc(32 * 32, 'float32');
      const v = (s: typeof x) => ({ storage: s, dtype: 'float32' as const, shape: [1, 32, 32], strides: [1024, 32, 1], offset: 0 });
      be.matmul(v(x), w.g, v(y), { relu: true });
      const s = be.alloc(1, 'float32');
      be.reduce('sum', { ...v(y), shape: [1024], strides: [1] }, 1, { storage: s, dtype: 'float32', shape: [], strides: [], offset: 0 });
      be.release(x);
      be.release(y);
      const out = await be.read(s, 0, 1);
      be.release(s);
      return out[0];
    };
    const first = await step();
    await step();
    const before = be.memory();
    for (let i = 0; i < 5; i++) expect(await step()).toBeCloseTo(first, 3);
    const after = be.memory();
    expect(after.buffersAllocated).toBe(before.buffersAllocated);
    expect(after.bytesInUse).toBe(before.bytesInUse);
  });

  it('reusing a released buffer cannot clobber what queued work still reads', async () => {
    const be = backend();
    // a is read by a queued (unsubmitted) copy, then released; the pool hands its
    // buffer to b, which is written at once. The copy must still see a's data.
    const a = be.alloc(64, 'float32');
    be.write(a, new Float32Array(64).fill(3));
    const out = be.alloc(64, 'float32');
    const v = (s: typeof a) => ({ storage: s, dtype: 'float32' as const, shape: [64], strides: [1], offset: 0 });
    be.unary('neg', v(a), v(out));
    be.release(a);
    const b = be.alloc(64, 'float32');
    expect(b.buffer).toBe(a.buffer);
    be.write(b, new Float32Array(64).fill(5));
    expect([...(await be.read(out, 0, 64))].every((x) => x === -3)).toBe(true);
    expect((await be.read(b, 0, 64))[0]).toBe(5);
    be.release(b);
    be.release(out);
  });

  it('clearBuffer zeroes exactly its byte range, in queue order, and counts as a write', async () => {
    const be = backend();
    const a = be.alloc(64, 'float32');
    be.write(a, new Float32Array(64).fill(7));
    const before = be.runtime.bufferVersion(a.buffer);
    be.runtime.clearBuffer(a.buffer, 8 * 4, 16 * 4);
    expect(be.runtime.bufferVersion(a.buffer)).toBe(before + 1);
    const got = [...(await be.read(a, 0, 64))];
    expect(got).toEqual(Array.from({ length: 64 }, (_, i) => (i >= 8 && i < 24 ? 0 : 7)));
    be.release(a);
  });

  it('stores 8-bit dtypes as one word per element and round-trips them', async () => {
    const be = backend();
    for (const [dtype, data] of [['int8', Int8Array.from([-128, -1, 0, 5, 127])], ['uint8', Uint8Array.from([0, 1, 128, 255, 7])], ['bool', Uint8Array.from([0, 1, 1, 0, 1])]] as const) {
      const s = be.alloc(5, dtype);
      be.write(s, data);
      const got = await be.read(s, 1, 3);
      expect(got.constructor).toBe(data.constructor);
      expect([...got]).toEqual([...data.slice(1, 4)]);
      be.release(s);
    }
    const empty = be.alloc(0, 'float32');
    be.write(empty, new Float32Array(0));
    expect((await be.read(empty, 0, 0)).length).toBe(0);
  });

  it('submits every N dispatches and on read', async () => {
    const be = backend();
    const saved = be.runtime.batchSize;
    be.runtime.batchSize = 3;
    try {
      const x = pair('float32', [10], {}, () => new Float32Array(10).fill(1));
      for (let i = 0; i < 10; i++) be.binary('add', x.g, 1, x.g);
      expect([...(await be.read(x.g.storage, 0, 10))].every((v) => v === 11)).toBe(true);
    } finally {
      be.runtime.batchSize = saved;
    }
  });
});

gpuDescribe('errors', () => {
  it('turns a WebGPU validation error into a BackendError at the next read, then recovers', async () => {
    const be = backend();
    be.runtime.dispatch({
      kernel: 'broken', key: 'broken-test-kernel', code: () => 'this is not wgsl',
      bindings: [], meta: [0], workgroups: [1, 1, 1],
    });
    const s = be.alloc(4, 'float32');
    await expect(be.read(s, 0, 4)).rejects.toBeInstanceOf(BackendError);
    const ok = pair('float32', [4]);
    const o = outPair('float32', [4]);
    be.unary('abs', ok.g, o.g);
    await expect(be.read(o.g.storage, 0, 4)).resolves.toHaveLength(4);
  });

  it('device loss becomes a BackendError at the next op and read, never a hang', async () => {
    const { device, info } = await acquireDevice();
    const be = new WebGPUBackend(device, info);
    const s = be.alloc(4, 'float32');
    const v = { storage: s, dtype: 'float32' as const, shape: [4], strides: [1], offset: 0 };
    be.fill(v, 1);
    device.destroy();
    await new Promise((r) => setTimeout(r, 50));
    expect(() => be.fill(v, 2)).toThrow(BackendError);
    await expect(be.read(s, 0, 4)).rejects.toBeInstanceOf(BackendError);
  });

  it('rejects writes of the wrong length', () => {
    const be = backend();
    const s = be.alloc(4, 'float32');
    expect(() => be.write(s, new Float32Array(3))).toThrow(BackendError);
  });
});

gpuDescribe('profiler', () => {
  it('reports per-kernel GPU time for labelled dispatches', async () => {
    const be = backend();
    const a = pair('float32', [1, 64, 64]);
    const o = outPair('float32', [1, 64, 64]);
    const times = await be.profile(() => {
      for (let i = 0; i < 3; i++) be.matmul(a.g, a.g, o.g);
      be.unary('exp', o.g, o.g);
    });
    const mm = times.find((t) => t.kernel === 'matmul');
    expect(mm?.count).toBe(3);
    expect(mm!.ms).toBeGreaterThanOrEqual(0);
    expect(times.find((t) => t.kernel === 'unary.exp')?.count).toBe(1);
  });
});
