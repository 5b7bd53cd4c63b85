// Dawn (through Mesa's Vulkan loader) warns on every process when
// XDG_RUNTIME_DIR is unset. Setup and the vitest config both call this so
// every child process, including vitest's workers, inherits a valid one.
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Sets `env.XDG_RUNTIME_DIR` to a private writable folder when it is unset. */
export function ensureRuntimeDir(env = process.env) {
  if (env.XDG_RUNTIME_DIR) return env.XDG_RUNTIME_DIR;
  const dir = join(tmpdir(), `kiln-xdg-${process.getuid?.() ?? 'user'}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  env.XDG_RUNTIME_DIR = dir;
  return dir;
}
