// Runs the polling comparison only when asked (KILN_POLL_BENCH=1): it measures, it does not test.
import { it } from 'vitest';
import { backend, gpu } from './helpers.js';
import { pollBench } from './poll-bench.js';

it.skipIf(!gpu || process.env.KILN_POLL_BENCH !== '1')('polling comparison (KILN_POLL_BENCH=1 to run)', async () => {
  const result = await pollBench(backend());
  console.log('[poll-bench] ms per iteration (lower is better):');
  for (const [k, v] of Object.entries(result)) console.log(`  ${k.padEnd(30)} ${v.toFixed(1)} ms`);
}, 600_000);
