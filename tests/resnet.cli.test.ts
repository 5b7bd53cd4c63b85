// The `kiln` command line, run in-process (runKiln is what bin/kiln calls)
// on gen_resnet_io.py's resnet18.pth and test images, on the CPU backend.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { IMAGENET_CATEGORIES } from '@kiln/resnet';
import { kiln } from '../packages/resnet/test/cli.helpers.js';
import { BN_CALIBRATION, IMAGES_DIR, RESNET18_PTH, describeResnetReference } from '../packages/resnet/test/model.helpers.js';


const tmp = mkdtempSync(join(tmpdir(), 'kiln-cli-'));

describeResnetReference('kiln CLI', (ref) => {
  it('info: lists every tensor with shape and file dtype, and counts 11,689,512 parameters', async () => {
    const r = await kiln('info', RESNET18_PTH);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/PyTorch \.pth \(zip\), 122 tensors/);
    expect(r.stdout).toMatch(/^conv1\.weight\s+\[64, 3, 7, 7\]\s+float32$/m);
    expect(r.stdout).toMatch(/^bn1\.num_batches_tracked\s+\[\]\s+int64$/m);
    expect(r.stdout).toMatch(/^fc\.weight\s+\[1000, 512\]\s+float32$/m);
    expect(r.stdout).toContain(`parameters: ${(ref.case('keys').args.resnet18Params as number).toLocaleString('en-US')} in 62 tensors`);
    expect(r.stdout).toContain('parameters: 11,689,512');
  });

  it('info reads safetensors too', async () => {
    const r = await kiln('info', BN_CALIBRATION);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/safetensors, 100 tensors/);
    expect(r.stdout).toMatch(/^layer4\.1\.bn2\.running_var\s+\[512\]\s+float32$/m);
  });

  it("classify: prints PyTorch's top-5 ImageNet labels for a test image, in order", async () => {
    const c = ref.case('classify');
    const r = await kiln('classify', '--weights', RESNET18_PTH, '--backend', 'cpu', join(IMAGES_DIR, c.args.image as string));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/rgb_300x200\.png$/);
    const labels = lines.slice(1).map((l) => /%\s+(.*) \((\d+)\)$/.exec(l)![1]);
    expect(labels).toHaveLength(5);
    expect(labels).toEqual([...c.values('top5')].slice(0, 5).map((i) => IMAGENET_CATEGORIES[i]));
  }, 600_000);

  it('features --out .npy writes float32 [1, 512]', async () => {
    const out = join(tmp, 'f.npy');
    const r = await kiln('features', '-w', RESNET18_PTH, '--out', out, join(IMAGES_DIR, 'rgb_64x48.png'));
    expect(r.code).toBe(0);
    const bytes = readFileSync(out);
    const headerLen = bytes.readUInt16LE(8);
    expect(bytes.subarray(1, 6).toString()).toBe('NUMPY');
    expect(bytes.subarray(10, 10 + headerLen).toString()).toContain("'descr': '<f4', 'fortran_order': False, 'shape': (1, 512)");
    expect((10 + headerLen) % 64).toBe(0);
    expect(bytes.length).toBe(10 + headerLen + 512 * 4);
    const f = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 10 + headerLen, bytes.byteOffset + bytes.length));
    expect(f.every((v) => Number.isFinite(v) && v >= 0)).toBe(true); // post-ReLU average
  }, 600_000);
});

it('a missing weights file: exit 1, one line naming it', async () => {
  const r = await kiln('classify', '--weights', join(tmp, 'nope.pth'), 'x.png');
  expect(r.code).toBe(1);
  expect(r.stderr).toBe(`kiln: cannot read weights file '${join(tmp, 'nope.pth')}': no such file\n`);
});

it('a file that is not weights: exit 1, one line saying what it is not', async () => {
  const bad = join(tmp, 'bad.pth');
  writeFileSync(bad, 'this is not a checkpoint');
  const r = await kiln('info', bad);
  expect(r.code).toBe(1);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(/^kiln: .*neither a PyTorch \.pth \(zip\) nor a \.safetensors file/);
});

it('a truncated .pth: exit 1 with the loader error on one line', async () => {
  const bad = join(tmp, 'truncated.pth');
  const head = readFileSync(RESNET18_PTH).subarray(0, 4096);
  writeFileSync(bad, head);
  const r = await kiln('info', bad);
  expect(r.code).toBe(1);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(/^kiln: loadPth: /);
});

it('a missing image and an unknown backend: exit 1', async () => {
  const missing = await kiln('info', join(tmp, 'missing.safetensors'));
  expect(missing.code).toBe(1);
  expect(missing.stderr).toMatch(/no such file/);
  const backend = await kiln('classify', '--weights', 'w.pth', '--backend', 'tpu', 'x.png');
  expect(backend.code).toBe(1);
  expect(backend.stderr).toMatch(/--backend.*tpu/);
});
