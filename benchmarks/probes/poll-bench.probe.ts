// The polling comparison: a measurement, not a test (see README.md here).
import { it } from 'vitest';
import { backend } from '../../packages/kernels/test/helpers.js';
import { pollBench } from './poll-bench.js';

it('polling comparison', async () => {
  const result = await pollBench(backend());
  console.log('[poll-bench] ms per iteration (lower is better):');
  for (const [k, v] of Object.entries(result)) console.log(`  ${k.padEnd(30)} ${v.toFixed(1)} ms`);
}, 600_000);
