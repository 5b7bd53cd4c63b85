// Types for runtime-dir.mjs (imported by vitest.config.ts).
export declare function ensureRuntimeDir(env?: NodeJS.ProcessEnv): string;
