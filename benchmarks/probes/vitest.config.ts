// Runs the kernel measurement probes (they measure, they assert nothing, so
// they are not part of `npm test`): the root config's aliases and pool, with
// only this folder's *.probe.ts files.
//   npx vitest run -c benchmarks/probes/vitest.config.ts [perf-gemm|perf-conv|poll-bench]
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import base from '../../vitest.config.js';

export default defineConfig({
  ...base,
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: { ...base.test, include: ['benchmarks/probes/*.probe.ts'], reporters: ['default'], testTimeout: 600_000 },
});
