// Gradients vs PyTorch (tests/reference/gen_autograd.py) on every backend:
// - grad/*: accumulation across backward calls, retainGraph, retainGrad on a
//   non-leaf, hooks on leaves and non-leaves (and remove()), explicit
//   upstream gradients, detach, one tensor feeding several consumers;
// - chain/*: gradients through views of non-contiguous tensors (permute,
//   stepped slice, expand, transpose, narrow, select, squeeze/unsqueeze,
//   reshape), broadcasting, cat/stack/split/chunk/gather/indexSelect/pad/
//   where/clamp, max/min, softmax/logSoftmax/logsumexp/var/std and matmul
//   (batched, broadcast, 1-D).
// Tolerances per case in tests/parity/autograd-table.ts.
import { expect, it } from 'vitest';
import type { Tensor } from '@kiln/core';
import { describeReference } from '../../../tests/helpers/reference.js';
import { AUTOGRAD_OPS } from '../../../tests/parity/autograd-table.js';
import { runTableCase } from '../../../tests/parity/table-case.js';
import { describeTableParity } from '../../../tests/parity/table-suite.js';

await describeTableParity('autograd behaviours vs PyTorch', 'autograd', AUTOGRAD_OPS, (c) => c.op.startsWith('grad/'));
await describeTableParity('autograd gradient chains vs PyTorch', 'autograd', AUTOGRAD_OPS, (c) => c.op.startsWith('chain/'));

// The harness itself: a forward that matches PyTorch with a gradient that is
// 1% off must fail, so the passing cases above really checked gradients.
// Under the same skip-or-fail rule as every reference suite (KILN_REQUIRE_REFERENCE=1 fails it when missing).
describeReference('autograd harness', 'autograd', (ref) => it('the gradient check catches a 1% wrong gradient', async () => {
  const c = ref.cases.find((x) => x.op === 'chain/permute');
  expect(c, 'gen_autograd.py has the chain/permute case').toBeDefined();
  const skewed = {
    'chain/permute': {
      ...AUTOGRAD_OPS['chain/permute']!,
      run: ([x]: Tensor[]) => {
        const y = x!.permute(2, 0, 1).square();
        y.registerHook((g) => g.mul(1.01));
        return y;
      },
    },
  };
  await expect(runTableCase(ref, c!, 'cpu', skewed)).rejects.toThrow(/grad of input 0/);
  await expect(runTableCase(ref, c!, 'cpu', AUTOGRAD_OPS)).resolves.toBeUndefined();
}));
