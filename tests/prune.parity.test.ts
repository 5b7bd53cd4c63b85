// torch.nn.utils.prune against PyTorch (tests/reference/gen_prune.py) on
// every backend: the masks of l1Unstructured and lnStructured (n = 1, 2,
// ±inf; dim 0, 1, -1) on conv and linear weights with int, fractional and
// round-half-to-even amounts and importance scores; three rounds of
// composition on one tensor; the counts of the random methods; PyTorch's
// amount errors; and a pruned state dict both ways (PyTorch's torch.save
// into Kiln, Kiln's safetensors into PyTorch). Masks are 0/1, so they are
// compared exactly; pruned weights are w * mask, also exact.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { KilnError, manualSeed, noGrad, type Tensor } from '@kiln/core';
import { BatchNorm2d, Conv2d, Linear, Module, StateDictError, prune, saveSafetensors } from '@kiln/nn';
import { loadWeights } from '@kiln/resnet';
import { describeEachBackend, webgpuStatus } from '@kiln/test-helpers';
import { REFERENCE_CACHE_DIR } from '../scripts/reference-cache.mjs';
import { describePruneReference, plain, type PruneCase } from './prune.helpers.js';

const webgpu = await webgpuStatus();
type Pruned = { weight: Tensor; weight_orig: Tensor; weight_mask: Tensor };

/** A module of the case's kind holding the case's weight. */
function moduleFor(c: PruneCase, device: string): Module {
  const shape = c.shape('weight');
  const m = shape.length === 4 ? new Conv2d(shape[1]!, shape[0]!, 3, { device }) : new Linear(shape[1]!, shape[0]!, { device });
  const w = c.tensor('weight', device);
  noGrad(() => (m as unknown as Pruned).weight.copy_(w));
  w.dispose();
  return m;
}

const norm = (n: unknown) => (n === 'Infinity' ? Infinity : n === '-Infinity' ? -Infinity : (n as number));
/** The case's amount: a float that happens to be an integer (0.0) would be a count in JS; the generator writes isInt. */
const amountOf = (c: PruneCase) => (c.args.isInt ? c.args.amount : Number.isInteger(c.args.amount) ? prune.fraction(c.args.amount) : c.args.amount);

class SmallNet extends Module {
  declare conv1: Conv2d;
  declare bn1: BatchNorm2d;
  declare fc: Linear;
  constructor(device: string) {
    super();
    this.conv1 = new Conv2d(3, 4, 3, { padding: 1, device });
    this.bn1 = new BatchNorm2d(4, { device });
    this.fc = new Linear(100, 3, { device });
  }
  override forward(x: Tensor): Tensor {
    return this.fc.call(this.bn1.call(this.conv1.call(x)).relu().flatten(1));
  }
}

describePruneReference('prune vs PyTorch', (ref) => {
  describeEachBackend('masks', webgpu, (device) => {
    for (const c of ref.cases.filter((k) => k.name.startsWith('mask.'))) {
      const a = c.args;
      const what = a.method === 'l1' ? `l1Unstructured(${a.tensor}, ${a.amount}${a.isInt ? ' (int)' : ''})` : `lnStructured(${a.tensor}, ${a.amount}${a.isInt ? ' (int)' : ''}, n=${a.n}, dim=${a.dim})`;
      it(`${c.name} ${what}${c.has('scores') ? ' with importance scores' : ''}: PyTorch's mask, ${a.pruned} pruned`, async () => {
        const m = moduleFor(c, device);
        const scores = c.has('scores') ? c.tensor('scores', device) : null;
        if (a.method === 'l1') await prune.l1Unstructured(m, 'weight', amountOf(c), { importanceScores: scores });
        else await prune.lnStructured(m, 'weight', amountOf(c), norm(a.n), a.dim, { importanceScores: scores });
        const p = m as unknown as Pruned;
        const mask = await p.weight_mask.toArray();
        expect(plain(mask)).toEqual(plain(c.values('mask')));
        const w = c.values('weight');
        expect(plain(await p.weight.toArray())).toEqual(plain(Array.from(w, (v, i) => v * mask[i]!)));
        expect(p.weight_mask.dtype).toBe('float32');
        scores?.dispose();
        m.dispose();
      });
    }

    it("iterative: ln(2, n=1, dim 0), l1(0.4), ln(0.5, n=2, dim 1) compose as PyTorch's PruningContainer", async () => {
      const c = ref.case('iterative');
      const conv = new Conv2d(6, 8, 3, { device });
      const w = c.tensor('weight', device);
      noGrad(() => conv.weight.copy_(w));
      w.dispose();
      const p = conv as unknown as Pruned;
      const orig = conv.weight;
      await prune.lnStructured(conv, 'weight', 2, 1, 0);
      expect(plain(await p.weight_mask.toArray())).toEqual(plain(c.values('mask1')));
      await prune.l1Unstructured(conv, 'weight', 0.4);
      expect(plain(await p.weight_mask.toArray())).toEqual(plain(c.values('mask2')));
      await prune.lnStructured(conv, 'weight', 0.5, 2, 1);
      expect(plain(await p.weight_mask.toArray())).toEqual(plain(c.values('mask3')));
      expect(p.weight_orig).toBe(orig); // the original Parameter object throughout
      const hooks = [...conv._forwardPreHooks.values()];
      expect(hooks.length).toBe(1);
      expect((hooks[0] as unknown as { derivation: unknown }).derivation).toBeInstanceOf(prune.PruningContainer);
      conv.dispose();
    });

    it("random methods prune PyTorch's counts, and the same seed gives the same mask", async () => {
      const c = ref.case('random');
      const masks: number[][] = [];
      for (let run = 0; run < 2; run++) {
        manualSeed(123);
        const conv = new Conv2d(4, 8, 3, { device });
        const lin = new Linear(10, 6, { device });
        const small = new Linear(5, 4, { device });
        await prune.randomUnstructured(conv, 'weight', 0.3);
        await prune.randomStructured(lin, 'weight', 0.5, 0);
        await prune.randomStructured(small, 'weight', 2, 1);
        const cm = await (conv as unknown as Pruned).weight_mask.toArray();
        const lm = await (lin as unknown as Pruned).weight_mask.toArray();
        const sm = await (small as unknown as Pruned).weight_mask.toArray();
        expect(cm.filter((v) => v === 0).length).toBe(c.args.conv);
        const rowsZero = [0, 1, 2, 3, 4, 5].filter((r) => lm.slice(r * 10, r * 10 + 10).every((v) => v === 0)).length;
        expect(rowsZero).toBe(c.args.linearRows);
        const colsZero = [0, 1, 2, 3, 4].filter((k) => [0, 1, 2, 3].every((r) => sm[r * 5 + k] === 0)).length;
        expect(colsZero).toBe(c.args.smallCols);
        masks.push([...cm, ...lm, ...sm]);
        for (const m of [conv, lin, small]) m.dispose();
      }
      expect(masks[1]).toEqual(masks[0]);
    });

    it("rejects the amounts PyTorch rejects, naming the method, the amount and the size", async () => {
      for (const [method, amount, torchMessage] of ref.case('errors').args.cases as [string, number, string][]) {
        const conv = new Conv2d(4, 8, 3, { device });
        const call = method === 'l1' ? prune.l1Unstructured(conv, 'weight', amount) : prune.lnStructured(conv, 'weight', amount, 2, 0);
        const err = await call.then(() => null, (e: unknown) => e);
        expect(err, `amount=${amount} (PyTorch: ${torchMessage})`).toBeInstanceOf(KilnError);
        const msg = (err as Error).message;
        expect(msg).toContain(method === 'l1' ? 'L1Unstructured' : 'LnStructured');
        expect(msg).toContain(`amount=${amount}`);
        expect(msg).toContain(method === 'l1' ? '288' : '8');
        // PyTorch's own wording, after Kiln's "Method: " prefix and before Kiln's size note.
        expect(msg).toContain(torchMessage.replace(/ \(.*$/, ''));
        expect(prune.isPruned(conv)).toBe(false);
        expect(conv._parameters.has('weight')).toBe(true);
        conv.dispose();
      }
    });
  });

  describeEachBackend('state dicts', webgpu, (device) => {
    const c = ref.case('small');
    const pruned = c.args.pruned as [string, string][];
    const run = async (net: SmallNet) => {
      net.eval();
      const x = c.tensor('input', device);
      const y = noGrad(() => net.call(x));
      const v = await y.toArray();
      x.dispose();
      y.dispose();
      return v as Float32Array;
    };
    // conv + bn + a 100-term linear in float32: outputs O(1) agree within 1e-5.
    const ATOL = 1e-5;

    it("a PyTorch-pruned torch.save state dict loads into the Kiln model pruned with identity; same keys, masks and output", async () => {
      const net = new SmallNet(device);
      for (const [mod, name] of pruned) await prune.identity(net.getSubmodule(mod), name);
      expect(Object.keys(net.stateDict({ keepVars: true }))).toEqual(c.args.keys);
      await loadWeights(net, join(REFERENCE_CACHE_DIR, 'prune', 'small_pruned.pth'));
      const got = await run(net);
      const want = c.values('output');
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(ATOL);
      const fcMask = await (net.fc as unknown as Pruned).weight_mask.toArray();
      expect(fcMask.filter((v) => v === 0).length).toBe(150); // l1Unstructured(fc, 0.5) of 300 entries in PyTorch
      net.dispose();
    });

    it('a fresh unpruned model rejects it strictly (missing weight, unexpected weight_orig/weight_mask), and non-strict loading skips those keys', async () => {
      const net = new SmallNet(device);
      const err = await loadWeights(net, join(REFERENCE_CACHE_DIR, 'prune', 'small_pruned.pth')).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(StateDictError);
      expect((err as StateDictError).missingKeys).toEqual(['conv1.weight', 'conv1.bias', 'fc.weight']);
      expect((err as StateDictError).unexpectedKeys).toEqual(expect.arrayContaining(['conv1.weight_orig', 'conv1.weight_mask', 'fc.weight_orig', 'fc.weight_mask']));
      const r = await loadWeights(net, join(REFERENCE_CACHE_DIR, 'prune', 'small_pruned.pth'), { strict: false });
      expect(r.missingKeys).toEqual(['conv1.weight', 'conv1.bias', 'fc.weight']);
      net.dispose();
    });

    it("Kiln's pruned state dict loads strictly into PyTorch's pruned model and gives Kiln's output", async (ctx) => {
      let python = '';
      try {
        execFileSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'pipe' });
        python = '/usr/bin/python3';
      } catch {
        if (process.env.KILN_REQUIRE_REFERENCE === '1') throw new Error('KILN_REQUIRE_REFERENCE=1 but /usr/bin/python3 cannot import torch');
        ctx.skip();
      }
      manualSeed(8);
      const net = new SmallNet(device);
      await prune.l1Unstructured(net.conv1, 'weight', 0.4);
      await prune.lnStructured(net.conv1, 'weight', 1, 2, 0);
      await prune.l1Unstructured(net.conv1, 'bias', 1);
      await prune.l1Unstructured(net.fc, 'weight', 0.5);
      const ours = await run(net);
      const dir = mkdtempSync(join(tmpdir(), 'kiln-prune-'));
      try {
        const sd = net.stateDict();
        writeFileSync(join(dir, 'kiln.safetensors'), await saveSafetensors(sd));
        for (const t of Object.values(sd)) t.dispose();
        const x = await c.tensor('input', 'cpu').toArray();
        writeFileSync(join(dir, 'input.json'), JSON.stringify([...x]));
        const out = execFileSync(python, [fileURLToPath(new URL('./reference/prune_load_kiln.py', import.meta.url)), dir], { encoding: 'utf8' });
        const theirs = JSON.parse(out) as { keys: string[]; output: number[] };
        expect(theirs.keys).toEqual(c.args.keys);
        for (let i = 0; i < ours.length; i++) expect(Math.abs(ours[i]! - theirs.output[i]!)).toBeLessThan(ATOL);
      } finally {
        rmSync(dir, { recursive: true, force: true });
        net.dispose();
      }
    });
  });
});
