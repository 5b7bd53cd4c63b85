// What a small CNN's training forward keeps for backward under autocast, on
// every backend (issue 12: autocast must halve the activation bytes).
// PyTorch's autocast runs conv/linear in float16 and batch norm, relu and
// max pool in their input's dtype, so every activation-sized tensor saved
// for backward is float16; float32 stays only for batch norm's [C]
// statistics and the loss, which autocast runs in float32 on the [N, 10]
// logits. Each value is kept once: relu_ keeps its result, which is the
// storage its consumer saves too (here max pool, as in ResNet's stem), and
// max pool then recomputes its argmax from that input in backward instead
// of keeping int32 indices. The held storages account for every byte the
// forward leaves allocated. Gradients of the same network under autocast are
// checked against PyTorch in tests/amp.autocast.parity.test.ts. Keeping the
// result itself has PyTorch's consequence, tested too: modifying it in place
// before backward raises torch 1.13's error (checked with torch 1.13 by hand:
// (w * 2).relu_().mul_(3).sum().backward() raises it).
import { expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { autocast, crossEntropy, type Node, type Tensor } from '@kiln/core';
import { describeEachBackend, webgpuStatus } from '@kiln/test-helpers';
import { SmallCNN } from '../packages/nn/test/small-cnn.js';

const webgpu = await webgpuStatus();

/** One tensor a node holds for backward. */
interface Held {
  node: string;
  dtype: string;
  shape: readonly number[];
  storage: number;
  bytes: number;
}

/** Every tensor held by the nodes reachable from `root` (the graph as backward would walk it). */
function heldTensors(root: Node): Held[] {
  const out: Held[] = [];
  const seen = new Set<Node>();
  const visit = (n: Node) => {
    if (seen.has(n)) return;
    seen.add(n);
    for (const t of n._held as readonly Tensor[]) {
      out.push({ node: n.name, dtype: t.dtype, shape: t.shape, storage: t.dataPtr(), bytes: t._storage.bytes });
    }
    for (const e of n.next) if (e && 'node' in e) visit(e.node);
  };
  visit(root);
  return out;
}

describeEachBackend('autocast saved activations', webgpu, (device) => {
  it('a small CNN under autocast saves float16 activations, each once, and no int32 max-pool indices', async () => {
    const N = 2;
    const classes = 10;
    const model = new SmallCNN();
    await model.to(device);
    model.train();
    const x = kiln.randn([N, 3, 8, 8], { device, generator: new kiln.Generator(7) });
    const y = kiln.fromArray(Int32Array.from({ length: N }, (_, i) => (3 * i + 1) % classes), [N], { dtype: 'int32', device });
    const before = kiln.memory(device).bytesInUse;
    const loss = kiln.tidy(() => autocast(() => crossEntropy(model.call(x), y)));
    const grown = kiln.memory(device).bytesInUse - before;
    const held = heldTensors(loss.gradFn!);
    const show = (h: Held) => `${h.node} ${h.dtype}[${h.shape.join(', ')}]`;

    // Activations and the float16 weight casts: every held tensor of rank >= 2 outside the loss is float16.
    const lossNodes = /^(Exp|Log|Mul|Div|Gather)Backward0$/;
    const wide = held.filter((h) => h.dtype !== 'float16' && !lossNodes.test(h.node) && !(h.node === 'BatchNormBackward0' && h.shape.length === 1));
    expect(wide.map(show), 'held tensors that are not float16').toEqual([]);
    // What stays float32: batch norm's [C] statistics and the loss's [N, classes] or smaller tensors.
    for (const h of held.filter((t) => t.dtype === 'float32')) {
      expect(h.shape.reduce((a, b) => a * b, 1), show(h)).toBeLessThanOrEqual(N * classes);
    }
    // No int32 of an activation's size: the only int32 held is the loss's [N, 1] target gather.
    expect(held.filter((h) => h.dtype === 'int32').map(show)).toEqual([`GatherBackward0 int32[${N}, 1]`]);

    // relu_ keeps its result in place, and max pool saves that same storage (one float16 copy of the values).
    const relus = held.filter((h) => h.node === 'ReluBackward0');
    const pool = held.filter((h) => h.node === 'MaxPool2dBackward0');
    expect(relus.map(show)).toEqual([`ReluBackward0 float16[${N}, 16, 4, 4]`, `ReluBackward0 float16[${N}, 8, 8, 8]`]);
    expect(pool.map(show)).toEqual([`MaxPool2dBackward0 float16[${N}, 8, 8, 8]`]);
    expect(pool[0]!.storage, 'max pool saves the storage relu_ keeps').toBe(relus[1]!.storage);

    // The held storages are all the forward left allocated, besides the loss itself.
    const unique = new Map(held.map((h) => [h.storage, h.bytes]));
    const heldBytes = [...unique.values()].reduce((a, b) => a + b, 0);
    expect(heldBytes + loss._storage.bytes, 'bytes the forward left allocated').toBe(grown);

    // Backward still runs (the saved versions are the ones in-place relu_ left), and parameters get float32 gradients.
    loss.backward();
    expect(model.conv1.weight.grad?.dtype).toBe('float32');
    for (const t of [loss, x, y]) t.dispose();
    model.dispose();
  });

  it("relu_ keeps its result itself, so modifying it in place before backward raises PyTorch's error", () => {
    kiln.tidy(() => {
      const w = kiln.randn([4, 5], { device, requiresGrad: true });
      const h = w.mul(2).relu_();
      h.mul_(3);
      expect(() => h.sum().backward()).toThrow(/modified by an inplace operation/);
    });
  });
});
