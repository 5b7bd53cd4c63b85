// Every package bundles for the browser (esbuild, platform 'browser') with
// no Node built-in anywhere in its module graph and no Node-only global
// (process, Buffer, require, __dirname) in Kiln's own sources: Node-only
// parts (Dawn, file paths) must sit behind runtime checks bundlers do not
// follow. Runs without a browser. A fixture that imports node:fs and uses
// Buffer proves the checks can fail.
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, bundleForBrowser, nodeGlobalsIn } from '../web/tools/bundle.mjs';

const packagesDir = join(REPO_ROOT, 'packages');
/** Package directories with an entry point (a package still being written has none yet). */
const packages = readdirSync(packagesDir).filter((d) => existsSync(join(packagesDir, d, 'src', 'index.ts')));

/** Kiln's own source files among a bundle's inputs. */
const ownSources = (inputs: string[]) => inputs.map((f) => join(process.cwd(), f)).filter((f) => !f.includes('node_modules') && relative(REPO_ROOT, f).match(/^(packages|web)\//));

describe('browser bundles', () => {
  it('finds the packages', () => {
    expect(packages).toEqual(expect.arrayContaining(['core', 'kernels', 'nn', 'resnet']));
  });

  for (const pkg of [...packages.map((p) => `packages/${p}/src/index.ts`), 'web/src/main.ts']) {
    it(`${pkg} bundles for the browser without Node built-ins or Node globals`, async () => {
      const t = Date.now();
      const bundle = await bundleForBrowser({ entry: join(REPO_ROOT, pkg) });
      expect(bundle.nodeBuiltins, 'static imports of Node built-ins').toEqual([]);
      const sources = ownSources(bundle.inputs);
      expect(sources.length).toBeGreaterThan(0);
      const globals = sources.flatMap((f) => nodeGlobalsIn(f).map((use) => `${relative(REPO_ROOT, f)}: ${use}`));
      expect(globals, 'Node-only globals').toEqual([]);
      // Dawn (the 'webgpu' npm package) must not be in a browser bundle.
      expect(bundle.inputs.filter((f) => f.includes('node_modules/webgpu/'))).toEqual([]);
      console.log(`[bundle] ${pkg}: ${(bundle.code!.length / 1024).toFixed(0)} KiB from ${bundle.inputs.length} files (${sources.length} Kiln sources) in ${Date.now() - t} ms`);
    });
  }

  it('the checks catch a Node built-in and a Node global (fixture)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-bundle-'));
    try {
      const entry = join(dir, 'entry.ts');
      writeFileSync(entry, "import { readFileSync } from 'node:fs';\nimport zlib from 'zlib';\n// Buffer.from in a comment is fine\nconst s = 'process.env in a string is fine';\nexport const f = () => [readFileSync, zlib, Buffer.from('x'), process.env.X, typeof process];\n");
      const bundle = await bundleForBrowser({ entry });
      expect(bundle.nodeBuiltins.map((b) => b.specifier).sort()).toEqual(['node:fs', 'zlib']);
      expect(nodeGlobalsIn(entry).map((s) => s.replace(/^line \d+: /, '').slice(0, 8))).toEqual(['Buffer.f', 'process.']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
