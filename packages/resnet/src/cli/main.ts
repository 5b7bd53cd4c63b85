#!/usr/bin/env node
// The `kiln` command (bin of @kiln/resnet). All logic is in program.ts so tests run it in-process.
import { runKiln } from './program.js';

process.exitCode = await runKiln(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
