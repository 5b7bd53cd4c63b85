// The mapping from tests/reference/gen_autograd.py's op names to Kiln code,
// with tolerances. Each function mirrors its PyTorch counterpart in the
// generator line for line.
import * as kiln from '@kiln/core';
import type { Tensor } from '@kiln/core';
import type { Tolerance } from '../helpers/compare.js';
import type { Table, TableSpec } from './table-case.js';

/** Elementwise chains and gradients of a few ops (exp/sin/tanh: several ULP in WGSL). */
export const CHAIN_TOL: Tolerance = { rtol: 2e-5, atol: 2e-6 };
/** Chains through softmax / logsumexp / var / matmul: sums of a handful of terms. */
export const CHAIN_REDUCE_TOL: Tolerance = { rtol: 2e-5, atol: 1e-5 };
/**
 * 10 SGD steps of a 6-10-4 MLP: each step's rounding differences feed the
 * next, so the final weights and late losses drift a little more than one
 * forward pass does.
 */
export const MLP_LOSS_TOL: Tolerance = { rtol: 1e-5, atol: 1e-5 };
export const MLP_WEIGHT_TOL: Tolerance = { rtol: 1e-4, atol: 2e-5 };

/** One MLP training run in Kiln core ops, exactly as gen_autograd.py's mlp_sgd. */
export function mlpSgd([x, y, w1, b1, w2, b2]: Tensor[], a: { steps: number; lr: number }): Tensor[] {
  const params = [w1!, b1!, w2!, b2!].map((p) => p.requiresGrad_());
  const losses: Tensor[] = [];
  for (let step = 0; step < a.steps; step++) {
    losses.push(kiln.tidy(() => {
      const h = x!.matmul(w1!).add(b1!).relu();
      const logits = h.matmul(w2!).add(b2!);
      const logp = logits.logSoftmax(1);
      const loss = logp.gather(1, y!.unsqueeze(1)).mean().neg();
      loss.backward();
      for (const p of params) {
        kiln.noGrad(() => p.sub_(p.grad!.mul(a.lr)));
        p.grad!.zero_();
      }
      return loss.detach();
    }));
  }
  const out = [kiln.stack(losses), ...params.map((p) => p.detach())];
  for (const l of losses) l.dispose();
  for (const p of params) {
    p.grad?.dispose();
    p.grad = null;
  }
  return out;
}

const behaviour = (run: TableSpec['run']): TableSpec => ({ tol: CHAIN_TOL, run });
const chain = (run: (inputs: Tensor[]) => Tensor | Tensor[], tol: Tolerance = CHAIN_TOL): TableSpec => ({ tol, run: (inputs) => run(inputs) });

/** Frees a leaf's .grad and clears it (PyTorch's `x.grad = None`). */
function clearGrad(x: Tensor): void {
  x.grad?.dispose();
  x.grad = null;
}

export const AUTOGRAD_OPS: Table = {
  mlpSgd: { tol: MLP_WEIGHT_TOL, run: (inputs, a) => mlpSgd(inputs, a as { steps: number; lr: number }) },

  // ---- behaviours: each runs its own backward passes and returns .grad tensors
  'grad/accumulate': behaviour(([x]) => {
    x!.requiresGrad_();
    x!.sin().mul(x!).sum().backward();
    const first = x!.grad!.clone();
    x!.mul(x!).mul(x!).sum().backward();
    return [first, x!.grad!];
  }),
  'grad/retainGraph': behaviour(([x, w]) => {
    x!.requiresGrad_();
    w!.requiresGrad_();
    const y = x!.exp().mul(w!).sum();
    y.backward(undefined, { retainGraph: true });
    const first = x!.grad!.clone();
    y.backward();
    return [first, x!.grad!, w!.grad!];
  }),
  'grad/retainGradNonLeaf': behaviour(([x, c]) => {
    x!.requiresGrad_();
    const h = x!.tanh();
    h.retainGrad();
    h.mul(h).mul(c!).sum().backward();
    return [h.grad!, x!.grad!];
  }),
  'grad/hookLeaf': behaviour(([x]) => {
    x!.requiresGrad_();
    const handle = x!.registerHook((g) => g.mul(2));
    x!.pow(3).sum().backward();
    const hooked = x!.grad!.clone();
    handle.remove();
    clearGrad(x!);
    x!.pow(3).sum().backward();
    return [hooked, x!.grad!];
  }),
  'grad/hookLeafUsedTwice': behaviour(([x]) => {
    x!.requiresGrad_();
    let calls = 0;
    x!.registerHook((g) => {
      calls++;
      return g.clamp(-1, 1);
    });
    x!.mul(2).add(x!.mul(3)).sum().backward();
    if (calls !== 1) throw new Error(`the leaf's hook ran ${calls} times; PyTorch runs it once, on the summed gradient`);
    return x!.grad!;
  }),
  'grad/hookNonLeaf': behaviour(([x]) => {
    x!.requiresGrad_();
    const h = x!.mul(3);
    h.registerHook((g) => g.add(1));
    h.sin().sum().backward();
    return x!.grad!;
  }),
  'grad/hookNonLeafRetained': behaviour(([x]) => {
    x!.requiresGrad_();
    const h = x!.square();
    h.registerHook((g) => g.mul(0.5));
    h.retainGrad();
    h.mul(4).sum().backward();
    return [h.grad!, x!.grad!];
  }),
  'grad/backwardExplicit': behaviour(([x, g]) => {
    x!.requiresGrad_();
    x!.exp().mul(2).backward(g);
    return x!.grad!;
  }),
  'grad/detach': behaviour(([x]) => {
    x!.requiresGrad_();
    x!.mul(x!.detach()).sum().backward();
    return x!.grad!;
  }),
  'grad/reuse': behaviour(([x]) => {
    x!.requiresGrad_();
    x!.mul(x!).add(x!.exp()).sub(x!.sin().mul(x!)).sum().backward();
    return x!.grad!;
  }),

  // ---- chains: the runner backpropagates a PyTorch upstream gradient
  'chain/permute': chain(([x]) => x!.permute(2, 0, 1).square()),
  'chain/sliceStep': chain(([x]) => x!.slice(1, 1, 7, 2).square()),
  'chain/sliceStepOfTransposed': chain(([x]) => x!.transpose(0, 1).slice(0, 1, 6, 2).square()),
  'chain/expand': chain(([x, y]) => x!.expand(3, 4).mul(y!)),
  'chain/transposeMatmul': chain(([x, m]) => x!.transpose(0, 1).matmul(m!), CHAIN_REDUCE_TOL),
  'chain/narrow': chain(([x]) => x!.narrow(1, 2, 3).exp()),
  'chain/select': chain(([x]) => x!.select(1, 2).square()),
  'chain/squeezeUnsqueeze': chain(([x]) => x!.squeeze(1).unsqueeze(0).square()),
  'chain/reshapeNonContiguous': chain(([x]) => x!.transpose(0, 1).reshape(2, 6).square()),
  'chain/viewsComposed': chain(([x]) => x!.permute(1, 0, 2).slice(2, 0, undefined, 2).reshape(-1).sin()),
  'chain/transposedInput': chain(([x]) => x!.square().sum(1), CHAIN_REDUCE_TOL),
  'chain/broadcast3': chain(([a, b, c]) => a!.mul(b!).add(c!), CHAIN_REDUCE_TOL),
  'chain/broadcast0d': chain(([a, b]) => a!.mul(b!).sub(b!.square().mul(a!)), CHAIN_REDUCE_TOL),
  'chain/broadcastLeading': chain(([a, b]) => a!.div(b!).sum(0), CHAIN_REDUCE_TOL),
  'chain/cat': chain(([a, b]) => kiln.cat([a!, b!.square()], 0).sin()),
  'chain/stack': chain(([a, b]) => kiln.stack([a!, b!.mul(2)], 1)),
  'chain/split': chain(([x]) => x!.split(2, 0).map((t, i) => t.square().mul(i + 1))),
  'chain/chunk': chain(([x]) => x!.chunk(3, 0).map((t) => t.exp())),
  'chain/gather': chain(([x, i]) => x!.gather(1, i!).square()),
  'chain/indexSelect': chain(([x, i]) => x!.indexSelect(0, i!)),
  'chain/pad': chain(([x]) => kiln.pad(x!, [1, 2, 0, 1], 0.5).square()),
  'chain/where': chain(([c, a, b]) => kiln.where(c!, a!.exp(), b!.square())),
  'chain/clamp': chain(([x]) => x!.clamp(-0.5, 0.7).square()),
  'chain/maxDim': chain(([x]) => {
    const { values, indices } = x!.max(1);
    return [values, indices];
  }),
  'chain/minDimKeep': chain(([x]) => x!.min(0, true).values.exp()),
  'chain/minAll': chain(([x]) => x!.min().mul(x!)),
  'chain/maxAll': chain(([x]) => x!.max().exp()),
  'chain/softmax': chain(([x]) => x!.softmax(1), CHAIN_REDUCE_TOL),
  'chain/logSoftmax': chain(([x]) => x!.logSoftmax(0), CHAIN_REDUCE_TOL),
  'chain/logsumexp': chain(([x]) => x!.logsumexp(1), CHAIN_REDUCE_TOL),
  'chain/var': chain(([x]) => x!.var(1, { correction: 1 }), CHAIN_REDUCE_TOL),
  'chain/stdBiasedKeep': chain(([x]) => x!.std(0, { correction: 0, keepdim: true }), CHAIN_REDUCE_TOL),
  'chain/meanSum': chain(([x]) => x!.mean(1).square().sum(), CHAIN_REDUCE_TOL),
  'chain/matmulBatched': chain(([a, b]) => a!.matmul(b!), CHAIN_REDUCE_TOL),
  'chain/matmulBroadcastA': chain(([a, b]) => a!.matmul(b!), CHAIN_REDUCE_TOL),
  'chain/matmulBroadcastB': chain(([a, b]) => a!.matmul(b!), CHAIN_REDUCE_TOL),
  'chain/matmulVecMat': chain(([a, b]) => a!.matmul(b!), CHAIN_REDUCE_TOL),
  'chain/matmulMatVec': chain(([a, b]) => a!.matmul(b!), CHAIN_REDUCE_TOL),
  'chain/matmulDot': chain(([a, b]) => a!.matmul(b!), CHAIN_REDUCE_TOL),
  'chain/matmulVecBatched': chain(([a, b]) => a!.matmul(b!), CHAIN_REDUCE_TOL),
};
