// The op parity families in a real browser: a representative subset of the
// PyTorch reference cases (elementwise, reductions, shapes, matmul, conv,
// batch norm, pooling, losses, autograd chains and an MLP's SGD steps, with
// their gradients) run inside headless Chromium on its WebGPU adapter
// (SwiftShader here: subgroups and timestamp-query, no shader-f16) and on
// the CPU backend, through the same tables and tolerances as the Node suites.
import { expect, it } from 'vitest';
import { describeWhenReady, loadReference, type RefCase } from './helpers/reference.js';
import { describeBrowser, openHarness } from './helpers/browser.js';
import type { KilnHarness, PageCaseResult } from './browser/harness.js';
import { OPS } from './parity/ops-table.js';
import { CNN_FAMILIES } from './parity/cnn-table.js';

/** The first `n` cases of each op (the generators order cases from plain to odd: views, broadcasting, empty). */
function firstPerOp(cases: RefCase[], n: number, keep: (c: RefCase) => boolean = () => true): string[] {
  const seen = new Map<string, number>();
  return cases.filter((c) => keep(c) && (seen.set(c.op, (seen.get(c.op) ?? 0) + 1).get(c.op)! <= n)).map((c) => c.name);
}

/** Every `k`-th case, so a family's spread of shapes is sampled, not its first few. */
const everyKth = (cases: RefCase[], k: number) => cases.filter((_, i) => i % k === 0).map((c) => c.name);

const CONV_OPS: readonly string[] = CNN_FAMILIES.conv;

const SUITES: { ref: string; table: string; select(cases: RefCase[]): string[] }[] = [
  { ref: 'ops', table: 'ops', select: (cs) => firstPerOp(cs, 2, (c) => OPS[c.op]?.family !== 'shape') },
  { ref: 'ops', table: 'ops', select: (cs) => firstPerOp(cs, 1, (c) => OPS[c.op]?.family === 'shape') },
  { ref: 'cnn', table: 'cnn', select: (cs) => [...everyKth(cs.filter((c) => CONV_OPS.includes(c.op)), 8), ...firstPerOp(cs, 2, (c) => !CONV_OPS.includes(c.op))] },
  { ref: 'autograd', table: 'autograd', select: (cs) => everyKth(cs, 3) },
];

const harness = await openHarness();

describeBrowser('parity in Chromium', harness, ({ page, adapter, logs }) => {
  it('the page sees the adapter Chromium reports (kernel choice follows its real features)', async () => {
    const { adapter: info, error } = await page.evaluate(() => (globalThis as unknown as { kilnHarness: KilnHarness }).kilnHarness.init());
    expect(error, logs.join('\n')).toBeNull();
    expect(info!.runtime).toBe('browser');
    // The backend enabled exactly the optional features the adapter has.
    for (const f of ['shader-f16', 'subgroups', 'timestamp-query']) expect(info!.features.includes(f), f).toBe(adapter!.features.includes(f));
    console.log(`[browser] adapter ${info!.vendor} ${info!.architecture}: ${['shader-f16', 'subgroups', 'timestamp-query'].filter((f) => info!.features.includes(f)).join(', ')}; subgroups ${info!.subgroupMinSize}..${info!.subgroupMaxSize}`);
  });

  for (const suite of SUITES) {
    const loaded = loadReference(suite.ref);
    describeWhenReady(`${suite.ref} reference in the page`, loaded.ok ? null : loaded.reason, () => {
      const names = loaded.ok ? suite.select(loaded.ref.cases) : [];
      for (const device of ['webgpu', 'cpu']) {
        it(`${names.length} ${suite.ref} cases (${suite.table} table) on ${device} match PyTorch`, async () => {
          expect(names.length).toBeGreaterThan(0);
          const t = Date.now();
          const results: PageCaseResult[] = await page.evaluate(
            (a: { ref: string; table: string; names: string[]; device: string }) => (globalThis as unknown as { kilnHarness: KilnHarness }).kilnHarness.parity(a.ref, a.table, a.names, a.device),
            { ref: suite.ref, table: suite.table, names, device },
          );
          expect(results.map((r) => r.name)).toEqual(names);
          const failed = results.filter((r) => r.error !== null);
          const ops = new Set(results.map((r) => r.op));
          console.log(`[browser] ${suite.ref} on ${device}: ${results.length - failed.length}/${results.length} cases over ${ops.size} ops in ${Date.now() - t} ms`);
          expect(failed.map((r) => `${r.name}: ${r.error}`), logs.slice(-5).join('\n')).toEqual([]);
        }, 300_000);
      }
    });
  }
});
