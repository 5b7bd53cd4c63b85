// Bundles TypeScript for the browser with esbuild (platform 'browser'), with
// every @kiln/<dir> resolved to packages/<dir>/src/index.ts (as vitest does),
// and a guard that records any import of a Node built-in instead of letting
// the bundler stub or reject it: a browser bundle must not need one.
import { readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

/** The repository root (web/tools/../..). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** @kiln/<dir> -> packages/<dir>/src/index.ts for every package directory. */
export function kilnAliases() {
  const dir = join(REPO_ROOT, 'packages');
  return Object.fromEntries(readdirSync(dir).map((d) => [`@kiln/${d}`, join(dir, d, 'src', 'index.ts')]));
}

const BUILTINS = new Set(builtinModules.filter((m) => !m.startsWith('_')));

/** True when an import specifier names a Node built-in (`fs`, `node:fs/promises`, `zlib`, ...). */
export function isNodeBuiltin(specifier) {
  if (specifier.startsWith('node:')) return true;
  return BUILTINS.has(specifier) || BUILTINS.has(specifier.split('/')[0]);
}

function builtinGuard(found) {
  return {
    name: 'kiln-node-builtin-guard',
    setup(build) {
      build.onResolve({ filter: /.*/ }, (args) => {
        if (args.kind === 'entry-point' || !isNodeBuiltin(args.path)) return undefined;
        found.push({ specifier: args.path, importer: args.importer.startsWith(REPO_ROOT) ? args.importer.slice(REPO_ROOT.length + 1) : args.importer });
        return { path: args.path, external: true };
      });
    },
  };
}

/**
 * Bundles `entry` (an ES module) for the browser. Returns the code (and
 * writes `outfile` when given) plus every Node built-in the module graph
 * imports statically; throws on build errors.
 */
export async function bundleForBrowser({ entry, outfile, minify = false, sourcemap = false }) {
  const nodeBuiltins = [];
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    alias: kilnAliases(),
    plugins: [builtinGuard(nodeBuiltins)],
    write: Boolean(outfile),
    outfile: outfile ?? 'bundle.js',
    minify,
    sourcemap: outfile && sourcemap ? 'linked' : false,
    metafile: true,
    logLevel: 'silent',
    legalComments: 'none',
  });
  const code = outfile ? null : new TextDecoder().decode(result.outputFiles[0].contents);
  return { code, nodeBuiltins, inputs: Object.keys(result.metafile.inputs), warnings: result.warnings };
}
