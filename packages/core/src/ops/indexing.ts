import { Tensor } from '../tensor.js';
import { needsAutocast, withAutocast } from '../autocast/autocast.js';
import { DTypeError, KilnError, ShapeError, fmtShape } from '../errors.js';
import { normalizeDim } from '../shape.js';
import { promoteTypes } from '../dtype.js';
import { commonBackend, empty, expectTensor, checkAlive } from './util.js';
import { finish } from '../autograd/record.js';
import { untraced } from './trace.js';
import { noGrad } from '../autograd/grad-mode.js';
import { tidy } from '../memory.js';
import { zeros } from './creation.js';

/** Tensors joined along an existing dim (torch.cat); 1-D empty tensors are skipped as in PyTorch. */
export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  if (needsAutocast('cat', [tensors, dim])) return withAutocast('cat', [tensors, dim], cat);
  if (!Array.isArray(tensors) || tensors.length === 0) throw new KilnError('cat', 'expected a non-empty list of Tensors');
  tensors.forEach((t, i) => expectTensor('cat', t, `tensors[${i}]`));
  const backend = commonBackend('cat', tensors);
  const parts = tensors.filter((t) => !(t.dim() === 1 && t.shape[0] === 0));
  if (parts.length === 0) return tensors[0]!.clone();
  const ref = parts[0]!;
  const d = normalizeDim('cat', dim, ref.dim());
  let dtype = ref.dtype;
  let total = 0;
  for (let i = 0; i < parts.length; i++) {
    const t: Tensor = parts[i]!;
    if (t.dim() !== ref.dim() || t.shape.some((s, j) => j !== d && s !== ref.shape[j])) {
      throw new ShapeError('cat', `sizes of tensors must match except in dimension ${d}: expected ${fmtShape(ref.shape)} (any size at dim ${d}), got ${fmtShape(t.shape)} for tensor number ${i}`);
    }
    dtype = promoteTypes(dtype, t.dtype);
    total += t.shape[d]!;
  }
  const shape = [...ref.shape];
  shape[d] = total;
  const out = empty(shape, dtype, backend);
  const sizes = parts.map((t) => t.shape[d]!);
  noGrad(() =>
    tidy(() => {
      let at = 0;
      for (const t of parts) {
        const n = t.shape[d]!;
        if (n > 0) backend.copy(t._view(), out.narrow(d, at, n)._view());
        at += n;
      }
    }),
  );
  return finish(out, 'cat', parts, { dim: d }, [], (g) => {
    let at = 0;
    return sizes.map((n) => {
      const piece = g.narrow(d, at, n);
      at += n;
      return piece;
    });
  });
}

/** Tensors of equal shape joined along a new dim (torch.stack). */
export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
  if (needsAutocast('stack', [tensors, dim])) return withAutocast('stack', [tensors, dim], stack);
  if (!Array.isArray(tensors) || tensors.length === 0) throw new KilnError('stack', 'expected a non-empty list of Tensors');
  const ref = expectTensor('stack', tensors[0], 'tensors[0]');
  tensors.forEach((t, i) => {
    if (expectTensor('stack', t, `tensors[${i}]`).shape.join() !== ref.shape.join()) {
      throw new ShapeError('stack', `stack expects each tensor to be equal size, but got ${fmtShape(ref.shape)} at entry 0 and ${fmtShape(t.shape)} at entry ${i}`);
    }
  });
  const d = normalizeDim('stack', dim, ref.dim() + 1);
  return tidy(() => cat(tensors.map((t) => t.unsqueeze(d)), d));
}

/** Views of consecutive pieces along dim: equal pieces of `size` (the last may be smaller), or the given section sizes (torch.split). */
export function split(x: Tensor, sizeOrSections: number | readonly number[], dim = 0): Tensor[] {
  checkAlive('split', x);
  const d = normalizeDim('split', dim, x.dim());
  const n = x.shape[d]!;
  let sizes: number[];
  if (typeof sizeOrSections === 'number') {
    if (!Number.isInteger(sizeOrSections) || sizeOrSections <= 0) throw new KilnError('split', `split_size must be a positive integer, got ${sizeOrSections}`);
    sizes = [];
    for (let at = 0; at < n; at += sizeOrSections) sizes.push(Math.min(sizeOrSections, n - at));
    if (n === 0) sizes = [0];
  } else {
    sizes = [...sizeOrSections];
    const total = sizes.reduce((a, b) => a + b, 0);
    if (total !== n || sizes.some((s) => !Number.isInteger(s) || s < 0)) {
      throw new KilnError('split', `split_with_sizes expects split_sizes to sum exactly to ${n} (input tensor's size at dimension ${d}), but got split_sizes=${fmtShape(sizes)}`);
    }
  }
  let at = 0;
  return sizes.map((s) => {
    const piece = x.narrow(d, at, s);
    at += s;
    return piece;
  });
}

/** `chunks` nearly equal pieces along dim (torch.chunk: ceil-sized, possibly fewer pieces). */
export function chunk(x: Tensor, chunks: number, dim = 0): Tensor[] {
  checkAlive('chunk', x);
  if (!Number.isInteger(chunks) || chunks <= 0) throw new KilnError('chunk', `chunk expects chunks to be a positive integer, got ${chunks}`);
  const d = normalizeDim('chunk', dim, x.dim());
  const size = Math.max(1, Math.ceil(x.shape[d]! / chunks));
  return split(x, size, d);
}

function checkIndex(op: string, index: Tensor): void {
  if (index.dtype !== 'int32' && index.dtype !== 'int8' && index.dtype !== 'uint8') {
    throw new DTypeError(op, `expected an integer index tensor, got ${index.dtype}`);
  }
}


/** Values of x picked along `dim` by index (torch.gather); index has x's rank. */
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  const backend = commonBackend('gather', [x, index]);
  checkIndex('gather', index);
  const d = normalizeDim('gather', dim, x.dim());
  if (index.dim() !== x.dim() || index.shape.some((s, i) => i !== d && s > x.shape[i]!)) {
    throw new ShapeError('gather', `index ${fmtShape(index.shape)} must have the same rank as input ${fmtShape(x.shape)} and size <= input's at every dim except ${d}`);
  }
  const idx = index.to('int32');
  const out = empty(index.shape, x.dtype, backend);
  if (out.numel() > 0) backend.gather(x._view(), d, idx._view(), out._view());
  return finish(out, 'gather', [x, idx], { dim: d }, [idx], (g, [si]) => [zeros(x.shape, { device: x.device }).scatterAdd(d, si!, g), null]);
}

/** A copy of x with src added at index along dim (out-of-place torch.scatter_add). */
export function scatterAdd(x: Tensor, dim: number, index: Tensor, src: Tensor): Tensor {
  const backend = commonBackend('scatterAdd', [x, index, src]);
  checkIndex('scatterAdd', index);
  const d = normalizeDim('scatterAdd', dim, x.dim());
  if (index.dim() !== x.dim() || src.dim() !== x.dim() || index.shape.some((s, i) => s > src.shape[i]! || (i !== d && s > x.shape[i]!))) {
    throw new ShapeError('scatterAdd', `index ${fmtShape(index.shape)} must fit in src ${fmtShape(src.shape)} and in self ${fmtShape(x.shape)} except at dim ${d}`);
  }
  const idx = index.to('int32');
  // The copy is this op's own buffer, not a traced op of its own.
  const out = untraced(() => x.to(promoteTypes(x.dtype, src.dtype)).clone());
  let srcView = src;
  index.shape.forEach((n, i) => (srcView = srcView.narrow(i, 0, n)));
  if (idx.numel() > 0) backend.scatterAdd(out._view(), d, idx._view(), srcView._view());
  return finish(out, 'scatterAdd', [x, idx, src], { dim: d }, [idx], (g, [si]) => [g, null, g.gather(d, si!)]);
}

function checkIndex1d(op: string, x: Tensor, index: Tensor): void {
  checkIndex(op, index);
  if (index.dim() > 1) throw new ShapeError(op, `index must be a 1-D (or 0-D) tensor, got shape ${fmtShape(index.shape)}`);
  void x;
}

/** Slices of x at the given indices along dim (torch.index_select). */
export function indexSelect(x: Tensor, dim: number, index: Tensor): Tensor {
  const backend = commonBackend('indexSelect', [x, index]);
  checkIndex1d('indexSelect', x, index);
  const d = normalizeDim('indexSelect', dim, x.dim());
  const idx = index.to('int32').reshape([-1]);
  const shape = [...x.shape];
  if (x.dim() > 0) shape[d] = idx.shape[0]!;
  const out = empty(shape, x.dtype, backend);
  if (out.numel() > 0) backend.indexSelect(x._view(), d, idx._view(), out._view());
  return finish(out, 'indexSelect', [x, idx], { dim: d }, [idx], (g, [si]) => [zeros(x.shape, { device: x.device }).indexAdd(d, si!, g), null]);
}

/** A copy of x with src's slices added at index along dim (out-of-place torch.index_add). */
export function indexAdd(x: Tensor, dim: number, index: Tensor, src: Tensor): Tensor {
  const backend = commonBackend('indexAdd', [x, index, src]);
  checkIndex1d('indexAdd', x, index);
  const d = normalizeDim('indexAdd', dim, x.dim());
  const idx = index.to('int32').reshape([-1]);
  const expected = [...x.shape];
  if (x.dim() > 0) expected[d] = idx.shape[0]!;
  if (src.shape.join() !== expected.join()) throw new ShapeError('indexAdd', `source ${fmtShape(src.shape)} must have shape ${fmtShape(expected)}`);
  // The copy is this op's own buffer, not a traced op of its own.
  const out = untraced(() => x.to(promoteTypes(x.dtype, src.dtype)).clone());
  if (idx.numel() > 0) backend.indexAdd(out._view(), d, idx._view(), src._view());
  return finish(out, 'indexAdd', [x, idx, src], { dim: d }, [idx], (g, [si]) => [g, null, g.indexSelect(d, si!)]);
}

/**
 * Constant padding, torch.nn.functional.pad's order: [left, right] pads the
 * last dim, [left, right, top, bottom] the last two, and so on. Negative
 * pads crop.
 */
export function pad(x: Tensor, pads: readonly number[], value = 0): Tensor {
  checkAlive('pad', x);
  if (pads.length % 2 !== 0 || pads.length / 2 > x.dim()) {
    throw new KilnError('pad', `padding length must be even and at most 2 * rank (${2 * x.dim()}), got ${pads.length}`);
  }
  const shape = [...x.shape];
  const starts = x.shape.map(() => 0);
  for (let i = 0; i < pads.length / 2; i++) {
    const d = x.dim() - 1 - i;
    shape[d] = x.shape[d]! + pads[2 * i]! + pads[2 * i + 1]!;
    if (shape[d]! < 0) throw new ShapeError('pad', `the input size ${x.shape[d]}, plus negative padding ${pads[2 * i]} and ${pads[2 * i + 1]} resulted in a negative output size`);
    starts[d] = pads[2 * i]!;
  }
  const backend = commonBackend('pad', [x]);
  const out = empty(shape, x.dtype, backend);
  if (out.numel() > 0) backend.fill(out._view(), value);
  // Copy the overlap of x (cropped by negative pads) into the padded output.
  const region = (t: Tensor, from: (d: number) => number, len: (d: number) => number) => {
    let v = t;
    for (let d = 0; d < t.dim(); d++) v = v.narrow(d, from(d), len(d));
    return v;
  };
  const len = (d: number) => Math.max(0, Math.min(x.shape[d]!, shape[d]! - starts[d]!) - Math.max(0, -starts[d]!));
  noGrad(() =>
    tidy(() => {
      const dst = region(out, (d) => Math.max(0, starts[d]!), len);
      const src = region(x, (d) => Math.max(0, -starts[d]!), len);
      if (dst.numel() > 0) backend.copy(src._view(), dst._view());
    }),
  );
  return finish(out, 'pad', [x], { pads, value }, [], (g) => [pad(g, pads.map((p) => -p), 0)]);
}
