// The memory suite's ResNet18 training-step measurement (benchmarks/src/suites/
// memory.ts, memorySuite: warm-up, measured step, a step at half the batch,
// the largest batch in the budget verified by one step) for a subset of its
// configurations, without the float16 kernel cases: what a change to one
// remedy needs re-measured. A measurement, not a test; prints the suite's
// log lines and its JSON lines.
//   KILN_PROBE_CONFIGS='float32,checkpoint per layer' KILN_PROBE_BATCH=16 KILN_PROBE_SIZE=224 \
//     nice -n 10 npx vitest run -c benchmarks/probes/vitest.config.ts memory-checkpoint
// KILN_PROBE_BUDGET (bytes, default 2 GiB) is the suite's --memory-budget.
import { it } from 'vitest';
import { join } from 'node:path';
import type { Bench } from '../src/bench.js';
import { initKiln } from '../src/env.js';
import { CACHE_DIR } from '../src/weights.js';
import { MEMORY_CONFIGS, memorySuite } from '../src/suites/memory.js';

it('resnet18 step memory for the selected configurations', async () => {
  // As the bench: the autotuner on with its cache (the memory suite tunes nothing itself).
  const { backend: kiln, error } = await initKiln({ tune: true, strategy: 'auto', tuneCache: process.env.KILN_TUNE_CACHE ?? join(CACHE_DIR, '..', 'kiln-tune.json') });
  if (!kiln) throw new Error(`kiln webgpu unavailable: ${error}`);
  const names = (process.env.KILN_PROBE_CONFIGS ?? 'float32,checkpoint per layer').split(',').map((s) => s.trim());
  const configs = MEMORY_CONFIGS.filter((c) => names.includes(c.name));
  if (configs.length !== names.length) throw new Error(`KILN_PROBE_CONFIGS: expected names among ${MEMORY_CONFIGS.map((c) => `'${c.name}'`).join(', ')}, got '${names.join(',')}'`);
  const batch = Number(process.env.KILN_PROBE_BATCH ?? 16);
  const size = Number(process.env.KILN_PROBE_SIZE ?? 224);
  // The suite reads its batch and size from quick (2 x 64x64) or full (16 x 224x224).
  if (!((batch === 16 && size === 224) || (batch === 2 && size === 64))) throw new Error(`expected the suite's batch 16 at 224 or its quick batch 2 at 64, got ${batch} at ${size}`);
  const lines: Record<string, unknown>[] = [];
  const bench = {
    opts: { quick: batch === 2, memoryBudget: Number(process.env.KILN_PROBE_BUDGET ?? 2 ** 31), maxSeconds: 3600 },
    reporter: { emit: (m: Record<string, unknown>) => { lines.push(m); console.log(JSON.stringify(m)); } },
    kiln,
    kilnError: null,
    deadline: Infinity,
  } as unknown as Bench;
  await memorySuite(bench, configs, { halfKernels: false });
  const failed = lines.filter((l) => 'error' in l);
  if (failed.length) throw new Error(`memory: ${failed.map((l) => `${l.case}: ${l.error}`).join('; ')}`);
});
