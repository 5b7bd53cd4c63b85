// Browser tests: one headless Chromium (Debian's, through playwright-core)
// per test file, a page served from 127.0.0.1, and the same skip-or-fail
// rule as WebGPU: without Chromium or a WebGPU adapter in it the suite is
// skipped with one line, or fails when KILN_REQUIRE_BROWSER=1 (CI sets it).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, it } from 'vitest';
import { REFERENCE_CACHE_DIR } from '../../scripts/reference-cache.mjs';
import { REPO_ROOT, bundleForBrowser } from '../../web/tools/bundle.mjs';
import { launchChromium, type LaunchedChromium } from '../../web/tools/chromium.mjs';
import { startServer } from '../../web/tools/server.mjs';
import { warnOnce } from './env.js';

/** True when the environment demands browser tests run rather than skip. */
export const browserRequired = process.env.KILN_REQUIRE_BROWSER === '1';

/** Where browser tests write what a person may want to look at (screenshots) and the bundles they serve. */
export const BROWSER_CACHE_DIR = join(REPO_ROOT, 'tests', '.cache', 'browser');

/** playwright-core's Page (typed through web/, which owns the dependency). */
export type Page = Awaited<ReturnType<LaunchedChromium['context']['newPage']>>;

/** A page in a running Chromium, and how to end both. */
export interface BrowserSession {
  page: Page;
  /** Base URL of the server. */
  url: string;
  /** The page's console and uncaught errors, in order. */
  logs: string[];
  /** What `navigator.gpu.requestAdapter()` reported in the page (null if not asked). */
  adapter: { vendor: string; architecture: string; features: string[] } | null;
  close(): Promise<void>;
}

/** Either a ready session or why there is none. */
export type BrowserStatus = { ok: true; session: BrowserSession } | { ok: false; reason: string };

/** Options of {@link openBrowser}. */
export interface OpenBrowserOptions {
  /** URL prefix -> directory ('/': the page). */
  mounts: Record<string, string>;
  /** Path to open (default '/'); the page must set `document.body.dataset.ready = 'true'`. */
  path?: string;
  /** Script run in the page before its own (e.g. to remove navigator.gpu). */
  initScript?: string;
  /** Require a WebGPU adapter in the page (default true). */
  webgpu?: boolean;
}

/** Starts Chromium and a server and opens the page; never throws: failure comes back as a reason. */
export async function openBrowser(opts: OpenBrowserOptions): Promise<BrowserStatus> {
  let chromium: Awaited<ReturnType<typeof launchChromium>> | null = null;
  let server: Awaited<ReturnType<typeof startServer>> | null = null;
  const close = async () => {
    await chromium?.close();
    await server?.close();
  };
  try {
    chromium = await launchChromium();
  } catch (e) {
    return { ok: false, reason: `cannot start Chromium: ${(e as Error).message.split('\n')[0]}` };
  }
  try {
    server = await startServer({ mounts: opts.mounts });
    const page = await chromium.context.newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
    page.on('requestfailed', (r) => logs.push(`[requestfailed] ${r.url()}: ${r.failure()?.errorText}`));
    page.on('response', (r) => r.status() >= 400 && logs.push(`[http ${r.status()}] ${r.url()}`));
    if (opts.initScript) await page.addInitScript(opts.initScript);
    await page.goto(new URL(opts.path ?? '/', server.url).href);
    try {
      await page.waitForSelector('body[data-ready="true"]', { state: 'attached', timeout: 60_000 });
    } catch (e) {
      throw new Error(`${(e as Error).message.split('\n')[0]}; page said: ${logs.slice(-3).join(' | ') || 'nothing'}`);
    }
    let adapter: BrowserSession['adapter'] = null;
    if (opts.webgpu ?? true) {
      adapter = await page.evaluate(async () => {
        const a = await (navigator as Navigator & { gpu?: GPU }).gpu?.requestAdapter();
        return a ? { vendor: a.info.vendor, architecture: a.info.architecture, features: [...a.features].map(String).sort() } : null;
      });
      if (!adapter) {
        await close();
        return { ok: false, reason: 'Chromium started but has no WebGPU adapter (navigator.gpu.requestAdapter() gave null)' };
      }
    }
    return { ok: true, session: { page, url: server.url, logs, adapter, close } };
  } catch (e) {
    await close();
    return { ok: false, reason: `the browser page did not start: ${(e as Error).message.split('\n')[0]}` };
  }
}

/**
 * `describe` over a browser session: runs `fn` with it (and closes it after
 * the suite) when `status` is ready; otherwise the suite is registered
 * skipped with the reason, or as one failing test when KILN_REQUIRE_BROWSER=1.
 */
export function describeBrowser(title: string, status: BrowserStatus, fn: (session: BrowserSession) => void): void {
  if (status.ok) {
    describe(title, () => {
      afterAll(() => status.session.close());
      fn(status.session);
    });
  } else if (browserRequired) {
    it(`${title} (KILN_REQUIRE_BROWSER=1)`, () => {
      throw new Error(status.reason);
    });
  } else {
    warnOnce(`[kiln] browser tests skipped: ${status.reason} (set KILN_REQUIRE_BROWSER=1 to fail instead)`);
    describe(title, () => it.skip(`skipped: ${status.reason}`, () => {}));
  }
}

/**
 * Bundles tests/browser/harness.ts (parity tables, ResNet checks) into
 * tests/.cache/browser/harness/ with an index.html, and opens it with the
 * reference outputs served under /ref/. Fails the bundle on any Node built-in.
 */
export async function openHarness(): Promise<BrowserStatus> {
  const dir = join(BROWSER_CACHE_DIR, 'harness');
  mkdirSync(dir, { recursive: true });
  const { nodeBuiltins } = await bundleForBrowser({ entry: join(REPO_ROOT, 'tests', 'browser', 'harness.ts'), outfile: join(dir, 'harness.js') });
  if (nodeBuiltins.length) throw new Error(`the harness bundle imports Node built-ins: ${nodeBuiltins.map((b) => `${b.specifier} (${b.importer})`).join(', ')}`);
  writeFileSync(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>kiln harness</title><body><script type="module" src="harness.js"></script></body>\n');
  return openBrowser({ mounts: { '/': dir, '/ref/': REFERENCE_CACHE_DIR } });
}
