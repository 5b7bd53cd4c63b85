#!/usr/bin/env node
// Brings a checkout to the state `vitest run` and `npm run bench` need:
// system packages (Debian root only), pnpm dependencies, the PyTorch
// reference outputs, and a build. Every step checks before it acts, so a
// second run on a ready machine takes about a second.
//
// Dependency-free on purpose: it runs before `pnpm install`.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REFERENCE_CACHE_DIR, REFERENCE_SRC_DIR, generatorHash, referenceProblem } from './reference-cache.mjs';
import { ensureRuntimeDir } from './runtime-dir.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const PYTHON = process.env.KILN_PYTHON ?? '/usr/bin/python3';
const MESA_MIN_MAJOR = 24; // lavapipe before 24 lacks what Dawn needs (see shared DESIGN.md)

const log = (msg) => console.log(`[setup] ${msg}`);
/** Problems that must fail setup, reported after every independent step has had its chance. */
const failures = [];

/** Runs a command with inherited stdio; exits setup with its status if it fails. */
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) {
    console.error(`[setup] failed: ${cmd} ${args.join(' ')} (exit ${r.status ?? r.signal ?? r.error?.message})`);
    process.exit(r.status || 1);
  }
}

/** Runs a command quietly and returns its stdout, or null when it cannot run or fails. */
function capture(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: root });
  return r.status === 0 ? r.stdout.trim() : null;
}

const sha256 = (...parts) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

// ---------------------------------------------------------------- (a) system packages

const BACKPORTS_SOURCE = '/etc/apt/sources.list.d/bookworm-backports.sources';
const BACKPORTS_DEB822 = `Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`;

/**
 * Debian packages the tests and benchmarks use, installed from bookworm:
 * PyTorch and torchvision (reference outputs), onnx (onnx.checker for
 * exported models), OpenBLAS (so PyTorch's CPU peer is not on the netlib
 * reference BLAS), Chromium (browser tests, driven by playwright-core).
 */
const DEBIAN_PACKAGES = ['python3-torch', 'python3-torchvision', 'python3-onnx', 'libopenblas0-pthread', 'chromium'];

/** Installed version of a Debian package, or null. dpkg-query is instant; importing torch is not. */
function debVersion(pkg) {
  const out = capture('dpkg-query', ['-W', '-f=${db:Status-Abbrev}|${Version}', pkg]);
  if (!out) return null;
  const [status, version] = out.split('|');
  return status.startsWith('ii') ? version : null;
}

function isDebianBookworm() {
  try {
    return /^VERSION_CODENAME=bookworm$/m.test(readFileSync('/etc/os-release', 'utf8'));
  } catch {
    return false;
  }
}

function systemPackages() {
  const hasDpkg = capture('dpkg-query', ['--version']) !== null;
  const mesa = hasDpkg ? debVersion('mesa-vulkan-drivers') : null;
  const mesaOk = mesa !== null && Number.parseInt(mesa, 10) >= MESA_MIN_MAJOR;
  const debMissing = hasDpkg ? DEBIAN_PACKAGES.filter((p) => !debVersion(p)) : [];
  if (mesaOk && debMissing.length === 0 && hasDpkg) return;

  const isRoot = process.getuid?.() === 0;
  if (!isRoot || !isDebianBookworm()) {
    // Not ours to change: say exactly what is missing and carry on; tests that need it skip.
    if (!hasDpkg) {
      log('not Debian: WebGPU in Node needs a Vulkan driver (Mesa >= 24 lavapipe on machines without a GPU);');
      log(`reference outputs need PyTorch importable by ${PYTHON} (set KILN_PYTHON to use another interpreter)`);
      return;
    }
    if (!mesaOk) {
      log(`missing: mesa-vulkan-drivers >= ${MESA_MIN_MAJOR} (installed: ${mesa ?? 'none'}); as root on Debian 12:`);
      log(`  add ${BACKPORTS_SOURCE} (suite bookworm-backports) and run apt-get install -t bookworm-backports mesa-vulkan-drivers`);
    }
    if (debMissing.length) log(`missing: ${debMissing.join(' ')}; as root: apt-get install --no-install-recommends ${debMissing.join(' ')}`);
    return;
  }

  if (!mesaOk && !existsSync(BACKPORTS_SOURCE)) {
    log(`adding ${BACKPORTS_SOURCE}`);
    writeFileSync(BACKPORTS_SOURCE, BACKPORTS_DEB822);
  }
  const aptEnv = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  log('apt-get update (something must be installed)');
  run('apt-get', ['update', '-qq'], { env: aptEnv });
  if (!mesaOk) {
    log(`installing mesa-vulkan-drivers from bookworm-backports (installed: ${mesa ?? 'none'})`);
    run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', '-t', 'bookworm-backports', 'mesa-vulkan-drivers'], { env: aptEnv });
  }
  if (debMissing.length) {
    log(`installing ${debMissing.join(' ')}`);
    run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...debMissing], { env: aptEnv });
  }
}

// ---------------------------------------------------------------- (b) pnpm dependencies

function pnpmVersionWanted() {
  const pm = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager ?? '';
  const m = /^pnpm@([\w.-]+)/.exec(pm);
  if (!m) throw new Error('package.json has no packageManager "pnpm@<version>"');
  return m[1];
}

/** Every file whose change invalidates node_modules: the lockfile and all workspace manifests. */
/** Workspace members (pnpm-workspace.yaml): packages/*, examples/*, web, benchmarks, tests. */
function workspaceMembers() {
  const under = (dir) => (existsSync(join(root, dir)) ? readdirSync(join(root, dir)).map((n) => join(dir, n)) : []);
  return [...under('packages'), ...under('examples'), 'web', 'benchmarks', 'tests'].filter((m) => existsSync(join(root, m, 'package.json')));
}

function installInputs() {
  const members = workspaceMembers();
  const manifests = members.map((m) => join(m, 'package.json')).filter((f) => existsSync(join(root, f)));
  return ['pnpm-lock.yaml', 'pnpm-workspace.yaml', 'package.json', ...manifests];
}

function pnpmDependencies() {
  const stampFile = join(root, 'node_modules', '.kiln-setup-stamp');
  const wanted = pnpmVersionWanted();
  const inputs = installInputs();
  const stamp = sha256(wanted, ...inputs.flatMap((f) => [f, readFileSync(join(root, f))]));
  if (existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) return;

  const have = capture('pnpm', ['--version']);
  if (have !== wanted) {
    log(`installing pnpm@${wanted} (found: ${have ?? 'none'})`);
    run('npm', ['install', '-g', '--no-fund', '--no-audit', `pnpm@${wanted}`]);
  }
  log('pnpm install --frozen-lockfile');
  run('pnpm', ['install', '--frozen-lockfile', '--reporter=append-only']);
  writeFileSync(stampFile, stamp);
}

// ---------------------------------------------------------------- (c) build

/** Newest mtime of the files under `dir` (skipping node_modules and dist). */
function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === 'dist' || entry.name.endsWith('.tsbuildinfo')) continue;
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

function build() {
  // `tsc -b` is incremental but still costs seconds per package on 2 cores;
  // skip it outright when no source is newer than the last successful build.
  const stampFile = join(root, 'node_modules', '.kiln-build-stamp');
  const projects = workspaceMembers().filter((p) => p !== 'tests');
  const newest = Math.max(...projects.map((p) => newestMtime(join(root, p))), statSync(join(root, 'tsconfig.base.json')).mtimeMs);
  const distsExist = projects.every((p) => !existsSync(join(root, p, 'tsconfig.json')) || existsSync(join(root, p, 'dist')));
  if (distsExist && existsSync(stampFile) && statSync(stampFile).mtimeMs >= newest) return;
  log('pnpm -r build');
  const started = new Date();
  run('pnpm', ['-r', '--reporter=append-only', 'build']);
  // Date the stamp to the build's start: a file saved during the build is newer and triggers the next one.
  writeFileSync(stampFile, started.toISOString());
  utimesSync(stampFile, started, started);
}

// ---------------------------------------------------------------- (d) PyTorch reference outputs

const REF_DIR = REFERENCE_SRC_DIR;
const CACHE_DIR = REFERENCE_CACHE_DIR;

function torchAvailable() {
  if (process.env.KILN_PYTHON) return capture(PYTHON, ['-c', 'import torch']) !== null;
  if (!existsSync(PYTHON)) return false;
  if (capture('dpkg-query', ['--version']) !== null) return debVersion('python3-torch') !== null;
  return capture(PYTHON, ['-c', 'import torch']) !== null;
}

function referenceOutputs() {
  if (!existsSync(REF_DIR)) return;
  const generators = readdirSync(REF_DIR).filter((f) => /^gen_\w+\.py$/.test(f)).sort();
  const stale = generators
    .map((gen) => ({ gen, name: gen.slice(4, -3), hash: generatorHash(gen) }))
    .filter(({ name }) => referenceProblem(name) !== null);
  if (stale.length === 0) return;
  if (!torchAvailable()) {
    log(`PyTorch not available to ${PYTHON}: skipping ${stale.length} reference generator(s); parity tests will skip`);
    return;
  }
  mkdirSync(CACHE_DIR, { recursive: true });
  for (const { gen, name, hash } of stale) {
    // Write into a temp folder and swap it in, so a failed run never leaves half a cache behind.
    const out = join(CACHE_DIR, name);
    const tmp = `${out}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
    log(`reference: ${relative(root, join(REF_DIR, gen))} -> ${relative(root, out)}`);
    const r = spawnSync(PYTHON, [join(REF_DIR, gen), tmp], { stdio: 'inherit', cwd: REF_DIR });
    if (r.status !== 0) {
      // Keep going: the other generators and the build are independent; setup fails at the end.
      rmSync(tmp, { recursive: true, force: true });
      failures.push(`reference generator ${gen} failed (exit ${r.status ?? r.signal})`);
      continue;
    }
    rmSync(out, { recursive: true, force: true });
    renameSync(tmp, out);
    writeFileSync(join(CACHE_DIR, `${name}.hash`), hash);
  }
}

// ----------------------------------------------------------------

const t0 = Date.now();
ensureRuntimeDir(process.env);
if (process.argv.includes('--references')) {
  // `node scripts/setup.mjs --references`: regenerate stale PyTorch outputs only
  // (no apt, no install, no build), for work on a generator.
  referenceOutputs();
  if (failures.length) {
    for (const f of failures) console.error(`[setup] FAILED: ${f}`);
    process.exit(1);
  }
  log(`references ready (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  process.exit(0);
}
systemPackages();
pnpmDependencies();
// References before the build: they do not depend on it, and a broken build
// should not also leave the parity tests without data.
referenceOutputs();
build();
if (failures.length) {
  for (const f of failures) console.error(`[setup] FAILED: ${f}`);
  process.exit(1);
}
log(`ready (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
