// Kiln vs PyTorch: the same initial weights, the same input batches, N SGD steps of a
// training-mode resnet18 at the demo's size; prints Kiln's loss per step and writes
// the inputs, the initial and final weights and the last step's gradients for
// tools/step-parity.py, which runs the same steps in PyTorch and compares.
//   npx tsc -b examples/demo && cd examples/demo && mkdir -p /tmp/parity &&
//   node tools/step-parity.mjs /tmp/parity 3 32 1 [auto|webgpu|cpu] && /usr/bin/python3 tools/step-parity.py /tmp/parity 3 32
// (arguments: output folder, steps, batch, zero-init residual 1/0, backend).
import { manualSeed, fromArray, tidy } from '@kiln/core';
import { CrossEntropyLoss, optim } from '@kiln/nn';
import { resnet18 } from '@kiln/resnet';
import { writeFileSync } from 'node:fs';
import { chooseBackend } from '../dist/backend.js';
import { loadFashionMnist, selectByClass, EMBEDDED_FASHION_MNIST } from '../dist/data/fashion-mnist.js';
import { labelledSet, evalTensors } from '../dist/data/images.js';
import { savePth } from '../dist/io/save-pth.js';
const [out, steps = '20', bs = '32', zir = '1', backend = 'auto'] = process.argv.slice(2);
const { device } = await chooseBackend(backend, { log: console.log });
const data = await loadFashionMnist(EMBEDDED_FASHION_MNIST, 'embedded');
const classes = [0, 2, 4, 6, 8];
const set = labelledSet(data.train, selectByClass(data.train, classes, 600), classes);
const N = Number(steps) * Number(bs);
// Spread the picks over the set (its order groups nothing; take every k-th).
const picks = Array.from({ length: N }, (_, k) => Math.floor((k * set.indices.length) / N));
const sub = { split: set.split, indices: picks.map((k) => set.indices[k]), labels: Int32Array.from(picks, (k) => set.labels[k]) };
const x = evalTensors(sub, { size: 32, cropScale: [1, 1] });
writeFileSync(`${out}/x.bin`, Buffer.from(x.buffer));
writeFileSync(`${out}/y.bin`, Buffer.from(sub.labels.buffer));
manualSeed(0);
const model = resnet18({ numClasses: 5, device, zeroInitResidual: zir === '1' });
const sd = model.stateDict();
writeFileSync(`${out}/init.pth`, await savePth(sd));
const opt = new optim.SGD(model.parameters(), { lr: 0.02, momentum: 0.9, weightDecay: 5e-4 });
const lossFn = new CrossEntropyLoss();
model.train();
const plane = 3 * 32 * 32, B = Number(bs);
const losses = [];
for (let s = 0; s < Number(steps); s++) {
  const xb = fromArray(x.subarray(s * B * plane, (s + 1) * B * plane), [B, 3, 32, 32], { device });
  const yb = fromArray(sub.labels.subarray(s * B, (s + 1) * B), [B], { dtype: 'int32', device });
  const last = s === Number(steps) - 1;
  const l = tidy(() => { opt.zeroGrad(); const l = lossFn.call(model.call(xb), yb); l.backward(); return l; });
  if (last) { const g = {}; for (const [n, p] of model.namedParameters()) g[n] = p.grad; writeFileSync(`${out}/grads.pth`, await savePth(g)); }
  opt.step();
  losses.push(await l.item()); l.dispose(); xb.dispose(); yb.dispose();
}
writeFileSync(`${out}/after.pth`, await savePth(model.stateDict()));
console.log(JSON.stringify({ kiln: losses }));
