/**
 * The `browser` suite: Kiln vs TF.js WebGPU in one headless Chromium page
 * (Debian's /usr/bin/chromium through playwright-core), on the one WebGPU
 * adapter Chromium exposes: ResNet18 eval at batch 1 and GEMM (1024³ in a
 * full run, 256³ with --quick). Outputs are checked before timing (Kiln's
 * logits against PyTorch's, TF.js's against Kiln's); a case whose outputs
 * disagree is reported with an error instead of a time.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSafetensors, type RawTensor } from '@kiln/core';
import { REPO_ROOT, bundleForBrowser, isNodeBuiltin } from '../../../web/tools/bundle.mjs';
import { launchChromium } from '../../../web/tools/chromium.mjs';
import { startServer } from '../../../web/tools/server.mjs';
import { outOfTime, type Bench } from '../bench.js';
import { RESNET18_FLOP_PER_IMAGE } from '../cases.js';
import { log } from '../report.js';
import type { BrowserBench, PageCase } from '../browser/page.js';

/** Logits of Kiln vs PyTorch and of TF.js vs Kiln, as the Node resnet suite accepts them. */
const LOGITS_ATOL = 1e-3;
/** GEMM entries are sums of n products of values in [-1, 1): float32 rounding grows like sqrt(n) * 2^-24 * n. */
const gemmAtol = (n: number) => 4 * Math.sqrt(n) * n * 2 ** -24 * 4;

const sig = (x: number) => Number(x.toPrecision(3));

/** Runs the browser cases and emits one line each (suite 'browser', peer 'tfjs' = TF.js WebGPU in the same page). */
export async function browserSuite(bench: Bench): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-browser-'));
  let chromium: Awaited<ReturnType<typeof launchChromium>> | null = null;
  let server: Awaited<ReturnType<typeof startServer>> | null = null;
  try {
    // The page shares files with Node-only code it never calls (asset
    // loading, Benchmark.js, the WASM peer): those imports become no-op stubs.
    const { nodeBuiltins } = await bundleForBrowser({
      entry: join(REPO_ROOT, 'benchmarks', 'src', 'browser', 'page.ts'),
      outfile: join(dir, 'page.js'),
      stub: (s) => isNodeBuiltin(s) || s === 'benchmark',
      external: ['@tensorflow/tfjs-backend-wasm'],
    });
    if (nodeBuiltins.length) throw new Error(`bench page imports ${nodeBuiltins.map((b) => b.specifier).join(', ')}`);
    writeFileSync(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><body><script type="module" src="page.js"></script></body>\n');
    const assets = bench.assets();
    const raw = new Map<string, RawTensor>([...assets.params].map(([k, t]) => [k, { dtype: 'float32', shape: t.shape, data: t.data }]));
    raw.set('bench.input', { dtype: 'float32', shape: assets.input.shape, data: assets.input.data });
    if (assets.torchLogits) raw.set('bench.torch_logits', { dtype: 'float32', shape: assets.torchLogits.shape, data: assets.torchLogits.data });
    writeFileSync(join(dir, 'resnet18.safetensors'), writeSafetensors(raw));

    chromium = await launchChromium();
    server = await startServer({ mounts: { '/': dir, '/assets/': dir } });
    const page = await chromium.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url);
    await page.waitForSelector('body[data-ready="true"]', { state: 'attached', timeout: 60_000 }).catch((e: Error) => {
      throw new Error(`the bench page did not start (${e.message.split('\n')[0]}): ${errors.join(' | ') || 'no page error'}`);
    });
    type Api = { kilnBench: BrowserBench };
    const setup = await page.evaluate(() => (globalThis as unknown as Api).kilnBench.setup());
    const where = { browser: `Chromium ${chromium.context.browser()?.version() ?? ''}`.trim(), browserAdapter: `${setup.adapter.vendor} ${setup.adapter.architecture}`, browserFeatures: setup.adapter.features.filter((f) => ['shader-f16', 'subgroups', 'timestamp-query'].includes(f)), tfjsBrowser: setup.tfjs };
    log(`browser: ${where.browser}, adapter ${where.browserAdapter} (${where.browserFeatures.join(', ')})`);

    const emit = (name: string, r: PageCase, flop: number, checks: { kiln: number | null; tfjs: number }, extra: Record<string, unknown>) => {
      const kilnOk = r.kilnDiff === undefined || r.kilnDiff <= checks.kiln!;
      const tfOk = r.tfjsDiff !== undefined && r.tfjsDiff <= checks.tfjs;
      bench.reporter.emit({
        suite: 'browser',
        case: name,
        ...(kilnOk ? r.kiln : { error: `Kiln's output differs by ${r.kilnDiff} (tolerance ${checks.kiln})` }),
        flop,
        peers: { tfjs: tfOk ? r.tfjs : { error: `TF.js output differs from Kiln's by ${r.tfjsDiff} (tolerance ${checks.tfjs})` } },
        kilnDiff: r.kilnDiff === undefined ? undefined : sig(r.kilnDiff),
        maxAbsDiff: r.tfjsDiff === undefined ? undefined : sig(r.tfjsDiff),
        ...where,
        ...extra,
      });
    };

    if (!outOfTime(bench, 'browser', 'resnet18 eval N=1 (browser)')) {
      const r = await page.evaluate((p) => (globalThis as unknown as Api).kilnBench.resnet(1, p), bench.policy);
      emit('resnet18 eval N=1 (browser)', r, RESNET18_FLOP_PER_IMAGE, { kiln: LOGITS_ATOL, tfjs: LOGITS_ATOL }, {});
    }
    const n = bench.opts.quick ? 256 : 1024;
    if (!outOfTime(bench, 'browser', `gemm ${n}x${n}x${n} (browser)`)) {
      const r = await page.evaluate(([size, p]) => (globalThis as unknown as Api).kilnBench.gemm(size, p), [n, bench.policy] as const);
      emit(`gemm ${n}x${n}x${n} (browser)`, r, 2 * n ** 3, { kiln: gemmAtol(n), tfjs: 2 * gemmAtol(n) }, {});
    }
    if (errors.length) log(`browser page errors: ${errors.join(' | ')}`);
  } finally {
    await chromium?.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
