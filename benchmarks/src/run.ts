#!/usr/bin/env node
/**
 * Kiln's benchmark suite: `npm run bench` (full, ~10 min on 2 cores) or
 * `npm run bench -- --quick` (the CI subset). See benchmarks/RESULTS.md.
 *
 * Kiln runs on its WebGPU backend; the peers run in the same process (TF.js
 * WebGPU on the same Dawn adapter, ONNX Runtime CPU) or beside it (PyTorch
 * CPU through /usr/bin/python3), case by case, so ratios hold on a noisy
 * machine.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SUITES, parseOptions, type Suite } from './cli.js';
import type { Bench } from './bench.js';
import { adapterSummary, baseVersions, dawnGpu, ensureRuntimeDir, initKiln, packageVersion } from './env.js';
import { Reporter, log, type Context } from './report.js';
import { writeResultsMarkdown } from './results-md.js';
import { FULL_POLICY, QUICK_POLICY } from './timing.js';
import { TfjsPeer } from './peers/tfjs.js';
import { TorchPeer } from './peers/torch.js';
import { CACHE_DIR, loadAssets, type ResNetAssets } from './weights.js';
import { gemmSuite } from './suites/gemm.js';
import { convSuite } from './suites/conv.js';
import { layersSuite } from './suites/layers.js';
import { resnetSuite } from './suites/resnet.js';
import { trainSuite } from './suites/train.js';
import { profileSuite } from './suites/profile.js';
import { memorySuite } from './suites/memory.js';
import { browserSuite } from './suites/browser.js';
import { pruneSuite } from './suites/prune.js';
import { quantSuite } from './suites/quant.js';

const PYTHON = process.env.KILN_PYTHON ?? '/usr/bin/python3';

const RUNNERS: Record<Suite, (b: Bench) => Promise<void>> = {
  gemm: gemmSuite,
  conv: convSuite,
  layers: layersSuite,
  resnet: resnetSuite,
  train: trainSuite,
  profile: profileSuite,
  memory: memorySuite,
  browser: browserSuite,
  prune: pruneSuite,
  quant: quantSuite,
};

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  ensureRuntimeDir();
  const started = performance.now();
  if (opts.out) writeFileSync(opts.out, '');

  const { backend: kiln, error: kilnError } = await initKiln({ tune: opts.tune, strategy: opts.strategy, tuneCache: join(CACHE_DIR, '..', 'kiln-tune.json') });
  if (!kiln) log(`Kiln WebGPU unavailable: ${kilnError}`);
  const versions: Record<string, string> = { ...baseVersions() };

  let tfjs: TfjsPeer | null = null;
  if (opts.peers.includes('tfjs')) {
    try {
      tfjs = await TfjsPeer.create(await dawnGpu(kiln));
      versions.tfjs = tfjs.version;
    } catch (e) {
      log(`TF.js WebGPU peer unavailable: ${(e as Error).message}`);
    }
  }
  let tfjsWasm: TfjsPeer | null = null;
  if (opts.peers.includes('tfjs-wasm')) {
    try {
      tfjsWasm = await TfjsPeer.createWasm();
      versions.tfjsWasm = tfjsWasm.version;
      await tfjs?.activate();
    } catch (e) {
      log(`TF.js WASM peer unavailable: ${(e as Error).message}`);
    }
  }
  if (opts.peers.includes('ort')) versions.onnxruntime = packageVersion('onnxruntime-node');
  let torch: TorchPeer | null = null;
  if (opts.peers.includes('torch')) {
    try {
      torch = await TorchPeer.create(PYTHON);
      const h = torch.hello;
      versions.torch = `${h.torch} (torchvision ${h.torchvision}, ${h.threads} threads, BLAS ${h.blas})`;
    } catch (e) {
      log(`PyTorch peer unavailable: ${(e as Error).message}`);
    }
  }

  const ctx: Context = { adapter: adapterSummary(kiln), versions, quick: opts.quick };
  const reporter = new Reporter(ctx, opts.out);
  let assets: ResNetAssets | null = null;
  const bench: Bench = {
    opts,
    policy: opts.quick ? QUICK_POLICY : FULL_POLICY,
    reporter,
    kiln,
    kilnError,
    tfjs,
    tfjsWasm,
    torch,
    assets: () => (assets ??= loadAssets(PYTHON)),
    deadline: started + opts.maxSeconds * 1000,
  };

  for (const suite of SUITES.filter((s) => opts.suites.includes(s))) {
    const t = performance.now();
    try {
      await RUNNERS[suite](bench);
    } catch (e) {
      log(`${suite} failed: ${(e as Error).stack ?? e}`);
      reporter.emit({ suite, case: '(suite)', error: (e as Error).message.split('\n')[0]!.slice(0, 300) });
    }
    log(`${suite} done in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }

  torch?.close();
  const seconds = (performance.now() - started) / 1000;
  const table = reporter.table();
  if (opts.results) writeResultsMarkdown(opts.results, ctx, reporter.rows, table, seconds, process.argv.slice(2));
  if (opts.table) {
    const a = ctx.adapter;
    console.log(`\nKiln benchmarks (${opts.quick ? 'quick' : 'full'}), ${seconds.toFixed(0)} s; adapter: ${a ? `${a.vendor} ${a.architecture} (${a.description})` : 'none'}`);
    console.log(`versions: ${Object.entries(versions).map(([k, v]) => `${k} ${v}`).join('; ')}`);
    console.log('ms are medians after warm-up; vs_<peer> = peer ms / Kiln ms (>1: Kiln faster)\n');
    console.log(table);
  }
  log(`done in ${seconds.toFixed(1)} s`);
  kiln?.destroy();
}

main().then(
  // Dawn's instance can keep the event loop alive after the work is done.
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
