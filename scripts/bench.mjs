#!/usr/bin/env node
// `npm run bench`: runs the compiled benchmark suite (benchmarks/dist/run.js,
// built by setup) with any arguments passed through. Until that suite exists
// it says so and fails, rather than pretending to have measured something.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureRuntimeDir } from './runtime-dir.mjs';

const entry = join(dirname(fileURLToPath(import.meta.url)), '..', 'benchmarks', 'dist', 'run.js');
if (!existsSync(entry)) {
  console.error('[bench] benchmarks/dist/run.js does not exist: the benchmark suite has not been written yet');
  process.exit(1);
}
ensureRuntimeDir(process.env);
const r = spawnSync(process.execPath, [entry, ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(r.status ?? 1);
