// `kiln tune` on WebGPU: ResNet18 at a small input (32x32, batch 2, with the
// training step's input-gradient convs) so the test stays short; every conv
// shape is tuned, written to the cache, and a second run finds them all.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { describeWebGPU } from '@kiln/test-helpers';
import { kiln } from './cli.helpers.js';


await describeWebGPU('kiln tune', () => {
  it('tunes every ResNet18 conv shape into the cache; a second run has nothing left to tune', async () => {
    const cache = join(mkdtempSync(join(tmpdir(), 'kiln-tune-')), 'tune.json');
    const first = await kiln('tune', '--cache', cache, '--batch', '2', '--size', '32', '--training', '--json');
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const r = JSON.parse(first.stdout) as { loaded: number; tuned: Record<string, { route: string; ms: Record<string, number | null> }> };
    expect(r.loaded).toBe(0);
    const keys = Object.keys(r.tuned);
    // Forward: stem, layer1 3x3, layer2-4 stride-2 3x3, their 3x3 stride-1 and 1x1 stride-2 downsamples (1x1 stride 1: none).
    expect(keys.filter((k) => k.startsWith('forward:')).length).toBeGreaterThanOrEqual(8);
    expect(keys.some((k) => k.startsWith('backwardInput:') && k.includes(':w512x512x3x3:'))).toBe(true);
    for (const t of Object.values(r.tuned)) expect(t.ms[t.route]).toBeGreaterThan(0);
    const doc = JSON.parse(readFileSync(cache, 'utf8')) as { adapters: Record<string, Record<string, unknown>> };
    expect(Object.keys(Object.values(doc.adapters)[0]!).sort()).toEqual(keys.sort());
    const second = await kiln('tune', '--cache', cache, '--batch', '2', '--size', '32', '--training', '--json');
    const r2 = JSON.parse(second.stdout) as { loaded: number; tuned: Record<string, unknown> };
    expect(r2.loaded).toBe(keys.length);
    expect(Object.keys(r2.tuned)).toEqual([]);
  }, 300_000);

  it('without a cache file it says how to name one', async () => {
    const saved = process.env.KILN_TUNE_CACHE;
    delete process.env.KILN_TUNE_CACHE;
    try {
      const r = await kiln('tune');
      expect(r.code).toBe(1);
      expect(r.stderr).toBe('kiln: no cache file: pass --cache <file> or set KILN_TUNE_CACHE\n');
    } finally {
      if (saved !== undefined) process.env.KILN_TUNE_CACHE = saved;
    }
  });
});
