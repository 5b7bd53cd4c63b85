/** The repository root. */
export declare const REPO_ROOT: string;
/** @kiln/<dir> -> packages/<dir>/src/index.ts for every package directory. */
export declare function kilnAliases(): Record<string, string>;
/** True when an import specifier names a Node built-in. */
export declare function isNodeBuiltin(specifier: string): boolean;
/** A static import of a Node built-in found while bundling. */
export interface BuiltinImport {
  specifier: string;
  /** The importing file, relative to the repository root when inside it. */
  importer: string;
}
/** What {@link bundleForBrowser} produced. */
export interface BrowserBundle {
  /** The bundle's code, or null when it was written to `outfile`. */
  code: string | null;
  nodeBuiltins: BuiltinImport[];
  /** Every input file of the bundle (paths relative to the working directory). */
  inputs: string[];
  warnings: unknown[];
}
/** Bundles `entry` for the browser (esbuild, platform 'browser'). */
export declare function bundleForBrowser(opts: {
  entry: string;
  outfile?: string;
  minify?: boolean;
  sourcemap?: boolean;
  /** Imports to replace by a module of no-op functions (Node-only code a harness never calls). */
  stub?: (specifier: string) => boolean;
  /** Specifiers left unbundled. */
  external?: string[];
}): Promise<BrowserBundle>;
/** Uses of Node-only globals (process, Buffer, require, __dirname) in one source file, comments stripped. */
export declare function nodeGlobalsIn(file: string): string[];
