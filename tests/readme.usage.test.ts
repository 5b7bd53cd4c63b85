// Runs the "Using Kiln" example of the root README.md, read from the README
// itself, so the first code a user sees keeps working.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import * as core from '@kiln/core';
import * as kernels from '@kiln/kernels';
import { describeWebGPU } from '@kiln/test-helpers';

const README = fileURLToPath(new URL('../README.md', import.meta.url));
const MODULES: Record<string, Record<string, unknown>> = { '@kiln/core': core, '@kiln/kernels': kernels };

function usageBlock(): string {
  const md = readFileSync(README, 'utf8');
  const m = /```ts\n([\s\S]*?)```/.exec(md.slice(md.indexOf('## Using Kiln')));
  if (!m) throw new Error('no ```ts block under "## Using Kiln" in README.md');
  return m[1]!;
}

await describeWebGPU('README usage example', () => {
  it('runs and prints the gradient PyTorch would (x broadcast over the active columns of w)', async () => {
    const code = usageBlock();
    const scope: Record<string, unknown> = {};
    const body: string[] = [];
    for (const line of code.split('\n')) {
      const im = /^import \{ (.*) \} from '(@kiln\/\w+)';$/.exec(line.trim());
      if (!im) {
        body.push(line);
        continue;
      }
      for (const name of im[1]!.split(',').map((s) => s.trim())) scope[name] = MODULES[im[2]!]![name];
    }
    const logged: unknown[] = [];
    scope.console = { log: (v: unknown) => logged.push(v) };
    // The block is JavaScript once the TypeScript non-null assertion is dropped.
    const js = body.join('\n').replace(/\.grad!/g, '.grad');
    const run = new Function(...Object.keys(scope), `return (async () => { ${js}\n return { w }; })();`);
    core.manualSeed(0);
    const { w } = (await run(...Object.values(scope))) as { w: core.Tensor };
    const grad = Array.from(logged[0] as Float32Array);
    // d/dw sum(relu(x @ w)) = x^T * 1[x @ w > 0], computed on the cpu backend from the same w.
    const wc = await w.toDevice('cpu');
    const active = await core.tensor([[1, 2, 3]], { dtype: 'float32' }).matmul(wc).gt(0).toArray();
    const expected = [1, 2, 3].flatMap((xi) => Array.from(active, (a) => xi * a));
    expect(grad).toEqual(expected);
  });
});
