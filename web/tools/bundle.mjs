// Bundles TypeScript for the browser with esbuild (platform 'browser'), with
// every @kiln/<dir> resolved to packages/<dir>/src/index.ts (as vitest does),
// and a guard that records any import of a Node built-in instead of letting
// the bundler stub or reject it: a browser bundle must not need one. (A
// dependency whose package.json "browser" field maps the built-in to false
// has declared it optional; that one is left to the bundler's empty stub.)
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import ts from 'typescript';

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

/**
 * Whether the package that holds `importer` maps `specifier` to false in its
 * package.json "browser" field: the package's own statement that browsers
 * get an empty module there (it guards the use at run time), which bundlers
 * honour. Kiln's sources never get this pass.
 */
function stubbedForBrowsers(specifier, importer) {
  if (!importer.includes(`${sep}node_modules${sep}`)) return false;
  for (let dir = dirname(importer); dir.includes(`${sep}node_modules${sep}`); dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (!existsSync(manifest)) continue;
    const browser = JSON.parse(readFileSync(manifest, 'utf8')).browser;
    return typeof browser === 'object' && browser !== null && browser[specifier] === false;
  }
  return false;
}

/**
 * An ES module standing in for `specifier`: the real module's export names
 * (read in Node), each a function returning '', and a default export whose
 * every property is such a function (see the `stub` option).
 */
async function stubModule(specifier) {
  let names = [];
  try {
    names = Object.keys(await import(specifier)).filter((n) => n !== 'default' && /^[A-Za-z_$][\w$]*$/.test(n));
  } catch {
    // not importable here: a default export only
  }
  const lines = ["const stub = () => '';", 'export default new Proxy({}, { get: () => stub });', ...names.map((n) => `export const ${n} = stub;`)];
  return lines.join('\n');
}

function builtinGuard(found, stub) {
  return {
    name: 'kiln-node-builtin-guard',
    setup(build) {
      build.onLoad({ filter: /.*/, namespace: 'kiln-stub' }, async (args) => ({ contents: await stubModule(args.path), loader: 'js' }));
      build.onResolve({ filter: /.*/ }, (args) => {
        if (args.kind !== 'entry-point' && stub?.(args.path)) return { path: args.path, namespace: 'kiln-stub' };
        if (args.kind === 'entry-point' || !isNodeBuiltin(args.path)) return undefined;
        if (stubbedForBrowsers(args.path, args.importer)) return undefined;
        found.push({ specifier: args.path, importer: args.importer.startsWith(REPO_ROOT) ? args.importer.slice(REPO_ROOT.length + 1) : args.importer });
        return { path: args.path, external: true };
      });
    },
  };
}

/**
 * Bundles `entry` (an ES module) for the browser. Returns the code (and
 * writes `outfile` when given) plus every Node built-in the module graph
 * imports; throws on build errors. `stub(specifier)` selects imports to
 * replace by a module whose exports are all no-op functions (for a harness
 * that shares files with Node-only code it never calls; never for a
 * package), `external` leaves specifiers as they are.
 */
export async function bundleForBrowser({ entry, outfile, minify = false, sourcemap = false, stub, external = [] }) {
  const nodeBuiltins = [];
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    alias: kilnAliases(),
    plugins: [builtinGuard(nodeBuiltins, stub)],
    external,
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

const NODE_GLOBALS = new Set(['process', 'Buffer', '__dirname', '__filename', 'require']);

/**
 * Uses of Node-only globals (`process.env`, `Buffer.from`, `require(...)`,
 * `__dirname`) in one source file, found by TypeScript's parser (so strings
 * and comments do not count). A bundler passes these through silently and
 * the page fails at run time; reaching them through `globalThis` (as a
 * runtime check does) is not flagged, nor is `typeof process`, nor a
 * property or local binding of the same name.
 */
export function nodeGlobalsIn(file) {
  const text = readFileSync(file, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const declared = new Set();
  const uses = [];
  const visit = (node) => {
    if ((ts.isVariableDeclaration(node) || ts.isParameter(node) || ts.isFunctionDeclaration(node) || ts.isImportSpecifier(node)) && node.name && ts.isIdentifier(node.name)) declared.add(node.name.text);
    if (ts.isIdentifier(node) && NODE_GLOBALS.has(node.text)) {
      const parent = node.parent;
      const isName = (ts.isPropertyAccessExpression(parent) && parent.name === node) || (ts.isPropertyAssignment(parent) && parent.name === node) || ts.isPropertySignature(parent) || ts.isPropertyDeclaration(parent) || ts.isMethodDeclaration(parent);
      const isDecl = (ts.isVariableDeclaration(parent) || ts.isParameter(parent) || ts.isFunctionDeclaration(parent) || ts.isImportSpecifier(parent) || ts.isBindingElement(parent)) && parent.name === node;
      const isTypeof = ts.isTypeOfExpression(parent);
      const inType = ts.isTypeReferenceNode(parent) || ts.isTypeQueryNode(parent) || ts.isQualifiedName(parent);
      if (!isName && !isDecl && !isTypeof && !inType) uses.push(node);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return uses.filter((n) => !declared.has(n.text)).map((n) => {
    const { line } = source.getLineAndCharacterOfPosition(n.getStart());
    return `line ${line + 1}: ${text.slice(n.getStart(), n.getStart() + 40).split('\n')[0]}`;
  });
}
