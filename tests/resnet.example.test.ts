// Runs the fine-tuning example of the root README.md, read from the
// README itself, so the documented code keeps working: on resnet_io's
// resnet18.pth, with one small batch (64x64 images keep it quick).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import * as core from '@kiln/core';
import * as nn from '@kiln/nn';
import * as resnet from '@kiln/resnet';
import { RESNET18_PTH, describeResnetReference } from '../packages/resnet/test/model.helpers.js';

const README = fileURLToPath(new URL('../README.md', import.meta.url));
const MODULES: Record<string, Record<string, unknown>> = { '@kiln/core': core, '@kiln/nn': nn, '@kiln/resnet': resnet };

/** The first ```ts block after the "Fine-tuning" heading. */
function exampleCode(): string {
  const md = readFileSync(README, 'utf8');
  const section = md.slice(md.indexOf('### Fine-tuning'));
  const m = /```ts\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error('no ```ts block under "### Fine-tuning" in README.md');
  return m[1]!;
}

describeResnetReference('README fine-tuning example', () => {
  it('is five lines of code after the imports, and runs: fc and layer4 move, the frozen backbone does not', async () => {
    const code = exampleCode();
    const lines = code.split('\n').filter((l) => l.trim() !== '');
    const imports = lines.filter((l) => l.startsWith('import '));
    const body = lines.filter((l) => !l.startsWith('import '));
    expect(body).toHaveLength(5);

    // Bind the imported names to the modules themselves (the block is plain JavaScript apart from its imports).
    const scope: Record<string, unknown> = {};
    for (const line of imports) {
      const im = /^import \{ (.*) \} from '(@kiln\/\w+)';$/.exec(line.trim());
      if (!im) throw new Error(`unexpected import line: ${line}`);
      for (const name of im[1]!.split(',').map((s) => s.trim())) {
        const value = MODULES[im[2]!]![name];
        expect(value, `${name} from ${im[2]}`).toBeDefined();
        scope[name] = value;
      }
    }
    core.manualSeed(0);
    const batches = [{ images: core.randn([2, 3, 64, 64]), labels: core.tensor([3, 7], { dtype: 'int32' }) }];
    const source = body.join('\n').replace("'resnet18.pth'", JSON.stringify(RESNET18_PTH));
    const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => (...a: unknown[]) => Promise<any>;
    const run = new AsyncFunction(...Object.keys(scope), 'batches', `${source}\nreturn { model, opt };`);

    const reference = resnet.resnet18();
    await resnet.loadWeights(reference, RESNET18_PTH);
    const { model, opt } = (await run(...Object.values(scope), batches)) as { model: resnet.ResNet; opt: nn.optim.SGD };

    expect(opt.paramGroups.map((g) => g.lr)).toEqual([1e-3, 1e-2]);
    expect(model.bn1.training).toBe(false); // frozen BatchNorm stays in eval
    const diff = (a: core.Tensor, b: core.Tensor) => resnetMaxDiff(a.dataSync(), b.dataSync());
    expect(diff(model.conv1.weight, reference.conv1.weight)).toBe(0);
    expect(diff(model.bn1.running_mean!, reference.bn1.running_mean!)).toBe(0);
    const l4 = (m: resnet.ResNet) => (m.layer4.at(1) as resnet.BasicBlock).conv2.weight;
    expect(diff(l4(model), l4(reference))).toBeGreaterThan(0);
    expect((model.fc as nn.Linear).weight.grad).not.toBeNull();
  }, 600_000);
});

function resnetMaxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
