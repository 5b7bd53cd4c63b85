#!/usr/bin/env node
// Builds the page into web/dist: app.js (esbuild, platform browser, every
// @kiln package from its TypeScript sources) beside index.html and style.css.
// Fails when the bundle would need a Node built-in.
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT, bundleForBrowser } from './bundle.mjs';

/** web/ */
export const WEB_DIR = join(REPO_ROOT, 'web');
/** Where the built page goes. */
export const PAGE_DIR = join(WEB_DIR, 'dist', 'page');

/** Bundles the page into `outDir` (default web/dist/page) and returns that directory. */
export async function buildPage(outDir = PAGE_DIR) {
  mkdirSync(outDir, { recursive: true });
  const { nodeBuiltins } = await bundleForBrowser({ entry: join(WEB_DIR, 'src', 'main.ts'), outfile: join(outDir, 'app.js'), sourcemap: true });
  if (nodeBuiltins.length) throw new Error(`the page bundle imports Node built-ins: ${nodeBuiltins.map((b) => `${b.specifier} (from ${b.importer})`).join(', ')}`);
  for (const f of ['index.html', 'style.css']) copyFileSync(join(WEB_DIR, f), join(outDir, f));
  return outDir;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const t = Date.now();
  const dir = await buildPage();
  console.log(`[web] built ${dir} in ${Date.now() - t} ms`);
}
