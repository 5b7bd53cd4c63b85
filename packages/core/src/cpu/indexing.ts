import type { View } from '../backend.js';
import { KilnError } from '../errors.js';
import { arr, offsetsOf } from './strided.js';


function checkRange(op: string, i: number, size: number): number {
  if (i < -size || i >= size) throw new KilnError(op, `index ${i} is out of bounds for dimension with size ${size}`);
  return i < 0 ? i + size : i;
}

/** Multi-index of flat position `flat` in `shape`. */
function unravel(flat: number, shape: readonly number[], out: number[]): void {
  for (let d = shape.length - 1; d >= 0; d--) {
    out[d] = flat % shape[d]!;
    flat = Math.floor(flat / shape[d]!);
  }
}

export function cpuGather(x: View, dim: number, index: View, out: View): void {
  const src = arr(x);
  const dst = arr(out);
  const idxData = arr(index);
  const idxOffs = offsetsOf(index.shape, index.strides, index.offset);
  const outOffs = offsetsOf(out.shape, out.strides, out.offset);
  const pos = new Array<number>(out.shape.length).fill(0);
  for (let f = 0; f < outOffs.length; f++) {
    unravel(f, out.shape, pos);
    pos[dim] = checkRange('gather', idxData[idxOffs[f]!]!, x.shape[dim]!);
    let off = x.offset;
    for (let d = 0; d < pos.length; d++) off += pos[d]! * x.strides[d]!;
    dst[outOffs[f]!] = src[off]!;
  }
}

export function cpuScatterAdd(out: View, dim: number, index: View, src: View): void {
  const dst = arr(out);
  const s = arr(src);
  const idxData = arr(index);
  const idxOffs = offsetsOf(index.shape, index.strides, index.offset);
  const pos = new Array<number>(index.shape.length).fill(0);
  for (let f = 0; f < idxOffs.length; f++) {
    unravel(f, index.shape, pos);
    let srcOff = src.offset;
    for (let d = 0; d < pos.length; d++) srcOff += pos[d]! * src.strides[d]!;
    pos[dim] = checkRange('scatterAdd', idxData[idxOffs[f]!]!, out.shape[dim]!);
    let off = out.offset;
    for (let d = 0; d < pos.length; d++) off += pos[d]! * out.strides[d]!;
    dst[off]! += s[srcOff]!;
  }
}

export function cpuIndexSelect(x: View, dim: number, index: View, out: View): void {
  const src = arr(x);
  const dst = arr(out);
  const idxData = arr(index);
  const outOffs = offsetsOf(out.shape, out.strides, out.offset);
  const pos = new Array<number>(out.shape.length).fill(0);
  for (let f = 0; f < outOffs.length; f++) {
    unravel(f, out.shape, pos);
    if (pos.length) pos[dim] = checkRange('indexSelect', idxData[index.offset + pos[dim]! * (index.strides[0] ?? 1)]!, x.shape[dim]!);
    let off = x.offset;
    for (let d = 0; d < pos.length; d++) off += pos[d]! * x.strides[d]!;
    dst[outOffs[f]!] = src[off]!;
  }
}

export function cpuIndexAdd(out: View, dim: number, index: View, src: View): void {
  const dst = arr(out);
  const s = arr(src);
  const idxData = arr(index);
  const srcOffs = offsetsOf(src.shape, src.strides, src.offset);
  const pos = new Array<number>(src.shape.length).fill(0);
  for (let f = 0; f < srcOffs.length; f++) {
    unravel(f, src.shape, pos);
    if (pos.length) pos[dim] = checkRange('indexAdd', idxData[index.offset + pos[dim]! * (index.strides[0] ?? 1)]!, out.shape[dim]!);
    let off = out.offset;
    for (let d = 0; d < pos.length; d++) off += pos[d]! * out.strides[d]!;
    dst[off]! += s[srcOffs[f]!]!;
  }
}
