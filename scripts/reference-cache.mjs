// Where the PyTorch reference outputs live and when they are stale. Shared by
// scripts/setup.mjs (which regenerates) and tests/helpers/reference.ts (which
// refuses stale outputs), so both agree on what "up to date" means.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const REFERENCE_SRC_DIR = join(root, 'tests', 'reference');
export const REFERENCE_CACHE_DIR = join(root, 'tests', '.cache', 'reference');

/** The local modules (tests/reference/*.py) a generator imports, transitively, itself included. */
function localModules(file, seen = new Set()) {
  if (seen.has(file)) return seen;
  seen.add(file);
  const src = readFileSync(join(REFERENCE_SRC_DIR, file), 'utf8');
  for (const m of src.matchAll(/^\s*(?:from\s+([\w.]+)\s+import|import\s+([\w.,\s]+))/gm)) {
    const names = (m[1] ?? m[2]).split(',').map((s) => s.trim().split(/\s+/)[0].split('.')[0]);
    for (const n of names) if (existsSync(join(REFERENCE_SRC_DIR, `${n}.py`))) localModules(`${n}.py`, seen);
  }
  return seen;
}

/** Hash of a generator (`gen_ops.py`) and every helper module it imports: its outputs' version. */
export function generatorHash(generatorFile) {
  const h = createHash('sha256');
  for (const f of [...localModules(generatorFile)].sort()) h.update(f).update(readFileSync(join(REFERENCE_SRC_DIR, f)));
  return h.digest('hex');
}

/**
 * Why the outputs of generator `name` (`ops` for gen_ops.py) in `dir` (the
 * shared cache by default; any other directory must hold `<name>.hash`
 * beside `<name>/`, as setup writes them) are unusable, or null when current.
 */
export function referenceProblem(name, dir = REFERENCE_CACHE_DIR) {
  const gen = `gen_${name}.py`;
  if (!existsSync(join(REFERENCE_SRC_DIR, gen))) return `no generator tests/reference/${gen}`;
  const hashFile = join(dir, `${name}.hash`);
  if (!existsSync(join(dir, name))) return `reference outputs of ${gen} not generated in ${dir}`;
  if (!existsSync(hashFile)) return `no ${name}.hash in ${dir}: cannot tell whether its outputs are current (copy it from tests/.cache/reference, or regenerate there)`;
  if (readFileSync(hashFile, 'utf8') !== generatorHash(gen)) return `reference outputs of ${gen} are stale (the generator changed)`;
  return null;
}
