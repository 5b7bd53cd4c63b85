import { noGrad, type DType, type Tensor } from '@kiln/core';
import type { Module } from '../module.js';

const FLOATS: readonly DType[] = ['float32', 'float16'];

/**
 * Casts every floating parameter and buffer of `module` (and its
 * submodules) to `dtype` in place, keeping each tensor object (set_), as
 * PyTorch's Module.half()/float(): optimizers built before keep working.
 * Integer buffers (num_batches_tracked) keep their dtype; gradients are
 * cast with their parameters.
 */
export function castFloatingTensors(module: Module, dtype: 'float32' | 'float16'): void {
  const cast = (t: Tensor) => {
    if (!FLOATS.includes(t.dtype) || t.dtype === dtype) return;
    const c = noGrad(() => t.to(dtype));
    t.set_(c);
    c.dispose();
  };
  for (const m of module.modules()) {
    for (const p of m._parameters.values()) {
      if (!p) continue;
      cast(p);
      if (p.grad) cast(p.grad);
    }
    for (const b of m._buffers.values()) if (b) cast(b);
  }
}
