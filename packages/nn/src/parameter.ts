import type { Tensor } from '@kiln/core';

const PARAMETERS = new WeakSet<Tensor>();

/**
 * A module's learnable tensor: a leaf Tensor with `requiresGrad`, marked so
 * that assigning it to a Module property registers it (PyTorch's
 * nn.Parameter). The type is Tensor itself; {@link isParameter} tells them apart.
 */
export type Parameter = Tensor;

/**
 * Marks `t` as a Parameter (torch.nn.Parameter(t, requires_grad)). A leaf is
 * marked in place and returned; a non-leaf is detached first (sharing storage).
 */
export function parameter(t: Tensor, requiresGrad = true): Parameter {
  const p = t.isLeaf ? t : t.detach();
  p.requiresGrad_(requiresGrad);
  PARAMETERS.add(p);
  return p;
}

/** True when `x` is a tensor marked by {@link parameter}. */
export function isParameter(x: unknown): x is Parameter {
  return typeof x === 'object' && x !== null && PARAMETERS.has(x as Tensor);
}

/** True for any Kiln tensor (without instanceof, as core does). */
export function isTensor(x: unknown): x is Tensor {
  return typeof x === 'object' && x !== null && (x as { _isKilnTensor?: boolean })._isKilnTensor === true;
}
