import { KilnError, noGrad, stack, tensor, tidy, type Tensor } from '@kiln/core';

/** One gradient's p-norm as a 0-d tensor (no readback). */
function norm(g: Tensor, p: number): Tensor {
  if (p === Infinity) return g.abs().max();
  if (p === 2) return g.square().sum().sqrt();
  if (p === 1) return g.abs().sum();
  return g.abs().pow(p).sum().pow(1 / p);
}

/**
 * Rescales the gradients of `params` in place so their combined p-norm is
 * at most maxNorm (torch.nn.utils.clip_grad_norm_). Returns the total norm
 * before clipping as a 0-d tensor; nothing is read back to the host.
 */
export function clipGradNorm_(params: Iterable<Tensor> | Tensor, maxNorm: number, normType = 2): Tensor {
  const list = (params as Tensor)._isKilnTensor ? [params as Tensor] : [...(params as Iterable<Tensor>)];
  if (!(normType > 0)) throw new KilnError('clipGradNorm_', `norm_type must be positive, got ${normType}`);
  const grads = list.map((p) => p.grad).filter((g): g is Tensor => g !== null);
  if (grads.length === 0) return tensor(0.0, { dtype: 'float32', device: list[0]?.device });
  return noGrad(() =>
    tidy(() => {
      const norms = grads.map((g) => norm(g, normType));
      const total = normType === Infinity ? (norms.length === 1 ? norms[0]! : stack(norms).max()) : norm(stack(norms), normType);
      const coef = total.add(1e-6).reciprocal().mul(maxNorm).clamp(null, 1.0);
      for (const g of grads) g.mul_(coef);
      return total;
    }),
  );
}
