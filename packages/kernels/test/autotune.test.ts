// The conv autotuner: off unless enabled; queues untuned shapes; times only
// candidates that pass the correctness gate; keeps the winner in memory and
// in the JSON cache (keyed by adapter and strategy class); later convs of the
// shape take the winner.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Conv2dParams } from '@kiln/core';
import { afterEach, describe, expect, it } from 'vitest';
import { autotuneState, disableAutotune, enableAutotune, queueShape, tunePending, withinConvTolerance } from '../src/autotune.js';
import { backend, free, gpuDescribe, outPair, pair } from './helpers.js';

const P: Conv2dParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };

describe('autotune correctness gate', () => {
  it('accepts outputs within the conv tolerance and rejects anything past it, NaN or a length mismatch', () => {
    const want = Float32Array.from([1, -2, 1000, 0]);
    expect(withinConvTolerance(Float32Array.from([1 + 1e-4, -2, 1000.1, 5e-5]), want)).toBe(true);
    expect(withinConvTolerance(Float32Array.from([1 + 3e-4, -2, 1000, 0]), want)).toBe(false);
    expect(withinConvTolerance(Float32Array.from([1, -2, 1000, Number.NaN]), want)).toBe(false);
    expect(withinConvTolerance(Float32Array.from([1, -2, 1000]), want)).toBe(false);
  });
});

gpuDescribe('autotune', () => {
  afterEach(() => disableAutotune(backend()));

  it('is off by default: nothing is queued', () => {
    expect(autotuneState(backend())).toBeNull();
  });

  it('queues an untuned shape, times its candidates, saves and reloads the winner, and then routes by it', async () => {
    const be = backend();
    const file = join(mkdtempSync(join(tmpdir(), 'kiln-tune-')), 'tune.json');
    expect(await enableAutotune(be, { cache: file, runs: 1 })).toBe(0);
    const x = pair('float32', [1, 8, 12, 12]);
    const w = pair('float32', [8, 8, 3, 3]);
    const o = outPair('float32', [1, 8, 12, 12]);
    be.conv2d(x.g, w.g, o.g, P);
    be.conv2d(x.g, w.g, o.g, P);
    expect(autotuneState(be)!.pending).toBe(1);
    const done = await tunePending(be);
    const [key, result] = Object.entries(done)[0]!;
    expect(key).toBe('forward:x1x8x12x12:w8x8x3x3:s1x1:p1x1:d1x1:g1');
    // Every candidate of a 3x3 stride-1 conv was checked and timed (rows of 12: the vec4 direct kernel too).
    expect(Object.keys(result.ms).sort()).toEqual(['direct', 'direct4', 'im2col', 'winograd2', 'winograd4']);
    for (const ms of Object.values(result.ms)) expect(ms).toBeGreaterThan(0);
    const fastest = Object.entries(result.ms).sort((a, b) => a[1]! - b[1]!)[0]![0];
    expect(result.route).toBe(fastest);
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { version: number; adapters: Record<string, Record<string, { route: string }>> };
    const adapter = Object.keys(doc.adapters)[0]!;
    expect(adapter).toContain(be.info.description);
    expect(adapter.endsWith(`|${be.tuning.strategy}`)).toBe(true);
    // Force a known winner through the file, reload: the conv takes it.
    doc.adapters[adapter]![key]!.route = 'winograd2';
    writeFileSync(file, JSON.stringify(doc));
    disableAutotune(be);
    expect(await enableAutotune(be, { cache: file })).toBe(1);
    const kernels = (await be.profile(() => be.conv2d(x.g, w.g, o.g, P))).map((k) => k.kernel);
    expect(kernels).toContain('winograd.output');
    doc.adapters[adapter]![key]!.route = 'direct';
    writeFileSync(file, JSON.stringify(doc));
    await enableAutotune(be, { cache: file });
    expect((await be.profile(() => be.conv2d(x.g, w.g, o.g, P))).map((k) => k.kernel)).toEqual(['conv2d']);
    doc.adapters[adapter]![key]!.route = 'direct4';
    writeFileSync(file, JSON.stringify(doc));
    await enableAutotune(be, { cache: file });
    expect((await be.profile(() => be.conv2d(x.g, w.g, o.g, P))).map((k) => k.kernel)).toEqual(['conv2d.direct4']);
    // The weight gradient's candidates: its kernel and im2col + GEMMs.
    queueShape(be, { dir: 'backwardWeight', x: [1, 8, 12, 12], w: [8, 8, 3, 3], p: P });
    const dw = Object.values(await tunePending(be))[0]!;
    expect(Object.keys(dw.ms).sort()).toEqual(['direct', 'im2col']);
    for (const ms of Object.values(dw.ms)) expect(ms).toBeGreaterThan(0);
    // After a strategy switch the winners (tuned for the other class) do not apply: the table decides.
    const before = be.tuning.strategy;
    const names = async () => (await be.profile(() => be.conv2d(x.g, w.g, o.g, P))).map((k) => k.kernel).sort();
    be.setStrategy(before === 'gpu' ? 'cpu-like' : 'gpu');
    try {
      doc.adapters[adapter]![key]!.route = 'winograd4';
      writeFileSync(file, JSON.stringify(doc));
      await enableAutotune(be, { cache: file });
      const tunedOther = await names();
      disableAutotune(be);
      expect(tunedOther).toEqual(await names());
    } finally {
      be.setStrategy(before);
    }
    free(x, w, o);
  }, 120_000);
});
