// `npm run demo -- --quick`, run in-process (runDemo is what the command
// calls): every stage on a sliver of Fashion-MNIST. Checks that the report,
// report.html, results.json and every chart are written and parse; that the
// numbers in the report are the ones the run computed; that the pretrained
// backbone.pth is a real torch.save file (PyTorch loads it into a
// torchvision resnet18 and measures the same accuracy on the same test
// images); and that the quick run learns (far from chance on 5 classes).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readWeights } from '@kiln/resnet';
import { memoryIO, pretrainBackbone, runDemo, SOURCE_CLASSES, type DemoRun } from '../examples/demo/src/index.js';

const PYTHON = process.env.KILN_PYTHON ?? '/usr/bin/python3';
const referenceRequired = process.env.KILN_REQUIRE_REFERENCE === '1';
const pct = (x: number) => `${(100 * x).toFixed(2)} %`;

/** Runs a Python snippet with arguments; returns its stdout, or null with the reason when Python/torch is missing. */
function python(code: string, args: string[]): { ok: true; out: string } | { ok: false; reason: string } {
  const r = spawnSync(PYTHON, ['-c', code, ...args], { encoding: 'utf8' });
  if (r.error) return { ok: false, reason: `${PYTHON}: ${r.error.message}` };
  if (r.status !== 0) return { ok: false, reason: r.stderr.trim().split('\n').at(-1) ?? `exit ${r.status}` };
  return { ok: true, out: r.stdout };
}

const torchMissing = (() => {
  const r = python('import torch, torchvision, PIL', []);
  return r.ok ? null : r.reason;
})();

// Well-formedness with expat (Python's standard library): a parser the SVG writer does not share.
const PARSE_XML = `
import sys, xml.etree.ElementTree as ET
for path in sys.argv[1:]:
    root = ET.parse(path).getroot()
    print(root.tag)
`;

// torch.load the demo's checkpoint into torchvision's resnet18 and evaluate it on
// the same source-class test images (first N per class in file order), with the
// same transform done by PIL and torchvision: Resize([S, S]) -> ToTensor -> Normalize.
const TORCH_EVAL = `
import gzip, json, os, sys, numpy as np, torch, torchvision
from PIL import Image
import torchvision.transforms as T
pth, data, classes, per_class, size = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def idx(name):
    p = os.path.join(data, name + '.gz')
    b = gzip.open(p).read() if os.path.exists(p) else open(os.path.join(data, name), 'rb').read()
    rank = b[3]
    shape = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], 'big') for i in range(rank)]
    return np.frombuffer(b, dtype=np.uint8, offset=4 + 4 * rank).reshape(shape)
images, labels = idx('t10k-images-idx3-ubyte'), idx('t10k-labels-idx1-ubyte')
taken = {c: 0 for c in classes}
picks = []
for i, c in enumerate(labels.tolist()):
    if c in taken and taken[c] < per_class:
        taken[c] += 1
        picks.append(i)
sd = torch.load(pth, map_location='cpu')
model = torchvision.models.resnet18(num_classes=len(classes))
model.load_state_dict(sd)
model.eval()
tf = T.Compose([T.Resize([size, size]), T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
x = torch.stack([tf(Image.fromarray(images[i], 'L').convert('RGB')) for i in picks])
y = torch.tensor([classes.index(int(labels[i])) for i in picks])
with torch.no_grad():
    pred = model(x).argmax(1)
print(json.dumps({'n': len(picks), 'correct': int((pred == y).sum()), 'keys': len(sd), 'nbt': str(sd['bn1.num_batches_tracked'].dtype)}))
`;

describe('npm run demo -- --quick', () => {
  const out = mkdtempSync(join(tmpdir(), 'kiln-demo-'));
  const cache = mkdtempSync(join(tmpdir(), 'kiln-demo-cache-'));
  const io = memoryIO();
  let run: DemoRun;
  let report: string;

  beforeAll(async () => {
    run = await runDemo({ quick: true, out, cacheDir: cache, data: 'embedded' }, io);
    report = readFileSync(join(out, 'report.md'), 'utf8');
    console.log(io.lines.join('\n')); // the run's own output, for the CI log
    // About a minute on an idle 2-core machine; the limit leaves room for a loaded one.
  }, 2_400_000);

  afterAll(() => {
    rmSync(out, { recursive: true, force: true });
    rmSync(cache, { recursive: true, force: true });
  });

  it('writes report.md, report.html, results.json and every chart it links', () => {
    expect(run.files.charts.length).toBeGreaterThanOrEqual(5);
    for (const chart of run.files.charts) {
      expect(report).toContain(`](${chart})`);
      const svg = readFileSync(join(out, chart), 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
    }
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    for (const chart of run.files.charts) expect(html).toContain(`src="${chart}"`);
    expect(html).toContain('<table>');
  });

  it('every SVG chart is well-formed XML (expat)', () => {
    const r = python(PARSE_XML, run.files.charts.map((c) => join(out, c)));
    if (!r.ok) throw new Error(`cannot parse the charts: ${r.reason}`);
    expect(r.out.trim().split('\n')).toEqual(run.files.charts.map(() => '{http://www.w3.org/2000/svg}svg'));
  });

  it("the report's numbers are the run's: results.json equals what runDemo returned, and the tables show it", () => {
    const json = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(json).toEqual(JSON.parse(JSON.stringify(run.result)));
    const r = run.result;
    expect(report).toContain(`Final: transfer **${pct(r.transfer.top1)}**`);
    expect(report).toContain(`vs from scratch **${pct(r.scratch.top1)}**`);
    expect(report).toContain(`recall@1 **${pct(r.features.recallAt1)}**`);
    expect(report).toContain(`source-class test top-1 **${pct(r.pretrain.top1)}**`);
    for (const e of r.transfer.epochs) expect(report).toMatch(new RegExp(`^\\| ${e.epoch} \\| ${e.loss.toFixed(4)} \\| ${pct(e.top1)} \\|`, 'm'));
    const fp32 = r.variants.find((v) => v.name === 'Kiln fp32')!;
    expect(report).toMatch(new RegExp(`^\\| Kiln fp32 \\| ${pct(fp32.top1!)} \\| ${fp32.params!.toLocaleString('en-US')} \\|`, 'm'));
    // The run's log carries the same numbers.
    expect(io.lines.join('\n')).toContain(`transfer ${pct(r.transfer.top1)} vs from scratch ${pct(r.scratch.top1)}`);
    // The last epoch's record is the stage's result, and the fp32 row re-measures the same model on the same images.
    expect(r.transfer.top1).toBe(r.transfer.epochs.at(-1)!.top1);
    expect(fp32.top1).toBe(r.transfer.top1);
  });

  it('shrinks every block to a multiple of 8 inner channels, measures the smaller model and exports it', () => {
    const r = run.result;
    const sh = r.pruning!.shrunk!;
    expect(sh.amount).toBe(0.25);
    // resnet18's inner widths 64, 128, 256, 512 less a quarter each.
    expect([...new Set(Object.values(sh.widths))]).toEqual([48, 96, 192, 384]);
    expect(Object.keys(sh.widths)).toHaveLength(8);
    expect(sh.params).toBeLessThan(sh.paramsBefore);
    const row = r.variants.find((v) => v.name === 'channel-shrunk (fine-tuned)')!;
    expect(row.params).toBe(sh.params);
    expect(row.top1).toBe(sh.top1);
    expect(row.msPerImage).toBe(sh.msPerImage);
    expect(report).toContain(`**${pct(sh.top1)}** after the same short fine-tune`);
    expect(report).toContain(`${sh.params.toLocaleString('en-US')} parameters (was ${sh.paramsBefore.toLocaleString('en-US')})`);
    // Kiln and onnxruntime round differently; on the quick sliver one near-tie may flip, no more.
    const n = (r.config as { testPerClass: number }).testPerClass * 5;
    expect(Math.round(r.onnx!.agreement['channel-shrunk (fine-tuned)']! * n)).toBeGreaterThanOrEqual(n - 1);
  });

  it('exports the static int8 model to ONNX, or says in the report why not', () => {
    const r = run.result;
    const error = r.onnx!.errors['int8 static'];
    if (error === undefined) {
      expect(r.onnx!.files).toContain('resnet18-int8-static.onnx');
      // int8 logits agree within a few output quanta (packages/onnx's tests): one near-tie may flip.
      const n = (r.config as { testPerClass: number }).testPerClass * 5;
      expect(Math.round(r.onnx!.agreement['int8 static']! * n)).toBeGreaterThanOrEqual(n - 1);
    } else expect(report).toContain(`Not exported: int8 static: ${error}`);
  });

  it('learns: far from chance (20 %) on the five target classes', () => {
    const r = run.result;
    expect(r.transfer.epochs).toHaveLength(2);
    expect(r.transfer.top1).toBeGreaterThanOrEqual(0.5);
    expect(r.features.recallAt1).toBeGreaterThanOrEqual(0.5);
    expect(r.features.fusion.fused).toBeGreaterThanOrEqual(0.5);
    for (const e of [...r.transfer.epochs, ...r.scratch.epochs]) expect(Number.isFinite(e.loss)).toBe(true);
  });

  it('saves the backbone as .pth and .safetensors holding the same tensors', () => {
    const pth = readWeights(new Uint8Array(readFileSync(join(out, 'backbone.pth'))), { keepDtype: true });
    const st = readWeights(new Uint8Array(readFileSync(join(out, 'backbone.safetensors'))));
    // torch.save keeps the state dict's order; safetensors sorts its keys.
    expect([...pth.keys()].sort()).toEqual([...st.keys()].sort());
    expect(pth.size).toBe(122);
    expect(pth.get('bn1.num_batches_tracked')!.dtype).toBe('int64');
    for (const [k, t] of st) {
      if (k.endsWith('num_batches_tracked')) continue;
      expect(pth.get(k)!.shape, k).toEqual(t.shape);
      expect(Buffer.from((pth.get(k)!.data as Float32Array).buffer).equals(Buffer.from((t.data as Float32Array).buffer)), k).toBe(true);
    }
  });

  it.skipIf(torchMissing !== null && !referenceRequired)(
    `torch.load reads backbone.pth into torchvision's resnet18, which scores the recorded accuracy${torchMissing ? ` (skipped: ${torchMissing})` : ''}`,
    () => {
      const r = run.result;
      const cfg = r.config as { testPerClass: number; imageSize: number };
      const py = python(TORCH_EVAL, [join(out, 'backbone.pth'), r.data.dir, JSON.stringify(SOURCE_CLASSES), String(cfg.testPerClass), String(cfg.imageSize)]);
      if (!py.ok) throw new Error(`PyTorch could not load the checkpoint: ${py.reason}`);
      const torchRun = JSON.parse(py.out) as { n: number; correct: number; keys: number; nbt: string };
      expect(torchRun.keys).toBe(122);
      expect(torchRun.nbt).toBe('torch.int64');
      expect(torchRun.n).toBe(cfg.testPerClass * SOURCE_CLASSES.length);
      // Kiln (fused, float32 on lavapipe or the CPU backend) and PyTorch round differently;
      // a near-tie may flip one prediction, no more.
      expect(Math.abs(torchRun.correct - Math.round(r.pretrain.top1 * torchRun.n))).toBeLessThanOrEqual(1);
    },
    120_000,
  );

  it('a second run reuses the cached backbone and re-measures it', async () => {
    const again = memoryIO();
    const out2 = mkdtempSync(join(tmpdir(), 'kiln-demo-'));
    try {
      // Stage 1 of a second run with the same settings (the cache key): only the backbone's reuse is under test.
      const second = await pretrainBackbone({ quick: true, out: out2, cacheDir: cache, data: 'embedded' }, again);
      expect(second.origin).toBe('cache');
      expect(second.top1).toBe(run.result.pretrain.top1);
      expect(again.lines.join('\n')).toMatch(/reused the cached backbone/);
      // The run's files are the cached ones, byte for byte.
      expect(readFileSync(join(out2, 'backbone.pth')).equals(readFileSync(join(out, 'backbone.pth')))).toBe(true);
    } finally {
      rmSync(out2, { recursive: true, force: true });
    }
  }, 2_400_000);
});
