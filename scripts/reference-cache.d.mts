// Types for reference-cache.mjs, so tests/helpers can import it under strict TypeScript.
export declare const REFERENCE_SRC_DIR: string;
export declare const REFERENCE_CACHE_DIR: string;
export declare function generatorHash(generatorFile: string): string;
/** Why the cached outputs of generator `name` in `dir` (default: the shared cache) are unusable, or null when current. */
export declare function referenceProblem(name: string, dir?: string): string | null;
