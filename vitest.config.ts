// One vitest run covers every package's unit tests and the cross-package
// parity tests. Packages are aliased to their TypeScript sources, so tests
// need no build and every import of `@kiln/core` (from tests and from
// @kiln/kernels alike) is the same module instance: the backend registry
// is shared.
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { ensureRuntimeDir } from './scripts/runtime-dir.mjs';

// Forked workers inherit the environment: one place silences Dawn's warning for all.
ensureRuntimeDir(process.env);

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

const packageDirs = readdirSync(fileURLToPath(new URL('./packages', import.meta.url)));

export default defineConfig({
  resolve: {
    alias: {
      // Every package under packages/: @kiln/<dir> -> packages/<dir>/src/index.ts.
      ...Object.fromEntries(packageDirs.map((dir) => [`@kiln/${dir}`, src(dir)])),
      '@kiln/test-helpers': fileURLToPath(new URL('./tests/helpers/index.ts', import.meta.url)),
    },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'tests/**/*.test.ts'],
    // lavapipe runs WebGPU on the CPU: a kernel that takes microseconds on a
    // GPU can take seconds here, and the first pipeline compile more.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Forks, not threads: Dawn's native addon is safest one per process.
    // One file at a time: lavapipe already spreads each kernel over every
    // core, and on 2 cores a second worker only contends with it. Measured on
    // the ops parity + kernels tests: 1 fork 53 s / 83 s, 2 forks 97 s / 117 s.
    pool: 'forks',
    poolOptions: { forks: { minForks: 1, maxForks: 1 } },
    reporters: ['default', './tests/helpers/summary-reporter.ts'],
  },
});
