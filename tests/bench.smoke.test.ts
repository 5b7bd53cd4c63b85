// Proves `npm run bench` works end to end on its cheapest path: the compiled
// suite runs its --quick GEMM cases (Kiln plus the in-process TF.js peer)
// and prints valid JSON lines that carry the adapter, versions and ratios.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { webgpuRequired } from './helpers/env.js';

const entry = fileURLToPath(new URL('../benchmarks/dist/run.js', import.meta.url));

describe('benchmark suite (--quick --only gemm)', () => {
  it('runs and prints one valid JSON line per measurement', () => {
    expect(existsSync(entry), `${entry} is missing: run node scripts/setup.mjs (it builds the benchmarks)`).toBe(true);
    const r = spawnSync(process.execPath, [entry, '--quick', '--only', 'gemm', '--peers', 'tfjs', '--no-table'], {
      encoding: 'utf8',
      timeout: 110_000,
    });
    expect(r.status, `exit ${r.status ?? r.signal}; stderr:\n${r.stderr}`).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
    expect(lines.length).toBeGreaterThan(0);
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const rec of records) {
      expect(rec.suite).toBe('gemm');
      expect(typeof rec.case).toBe('string');
      expect(rec).toHaveProperty('adapter');
      expect(typeof (rec.versions as Record<string, string>).kiln).toBe('string');
      expect(typeof rec.ms === 'number' || typeof rec.error === 'string').toBe(true);
    }
    if (webgpuRequired) {
      for (const rec of records) {
        expect(rec.error, `${String(rec.case)}: ${String(rec.error)}`).toBeUndefined();
        expect(rec.ms as number).toBeGreaterThan(0);
        expect(rec.gflops as number).toBeGreaterThan(0);
        if ((rec.peers as { tfjs?: { ms?: number } }).tfjs?.ms) expect(rec.vs_tfjs as number).toBeGreaterThan(0);
      }
    }
  }, 120_000);
});
