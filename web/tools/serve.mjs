#!/usr/bin/env node
// `npm run web`: builds the page and serves it on localhost (a secure
// context, which WebGPU requires), printing the URL to open.
// Options: --port N (default 8173, or $PORT; 0 picks a free port).
import { buildPage } from './build.mjs';
import { startServer } from './server.mjs';

const i = process.argv.indexOf('--port');
const port = Number(i > 0 ? process.argv[i + 1] : (process.env.PORT ?? 8173));
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`[web] --port must be 0..65535, got '${process.argv[i + 1] ?? process.env.PORT}'`);
  process.exit(2);
}
const dir = await buildPage();
const server = await startServer({ mounts: { '/': dir }, port });
console.log(`[web] Kiln page: ${server.url}  (open it in Chrome or Edge 113+ for WebGPU; Ctrl-C stops)`);
