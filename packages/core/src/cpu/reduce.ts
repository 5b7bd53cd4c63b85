import type { ReduceOp, View } from '../backend.js';

import { arr, offsetsOf } from './strided.js';

/** Reduces the last `reduceRank` dims of x into out (contiguous). */
export function cpuReduce(op: ReduceOp, x: View, reduceRank: number, out: View): void {
  const split = x.shape.length - reduceRank;
  const outer = offsetsOf(x.shape.slice(0, split), x.strides.slice(0, split), x.offset);
  const inner = offsetsOf(x.shape.slice(split), x.strides.slice(split), 0);
  const src = arr(x);
  const dst = arr(out);
  const n = inner.length;
  const base = out.offset;
  for (let o = 0; o < outer.length; o++) {
    const at = outer[o]!;
    let r: number;
    switch (op) {
      case 'sum':
      case 'mean': {
        let s = 0;
        for (let i = 0; i < n; i++) s += src[at + inner[i]!]!;
        r = op === 'mean' ? s / n : s;
        break;
      }
      case 'prod': {
        let p = 1;
        for (let i = 0; i < n; i++) p *= src[at + inner[i]!]!;
        r = p;
        break;
      }
      case 'max':
      case 'min':
      case 'argmax':
      case 'argmin': {
        const wantMax = op === 'max' || op === 'argmax';
        let best = src[at + inner[0]!]!;
        let bestI = 0;
        for (let i = 1; i < n && best === best; i++) {
          const v = src[at + inner[i]!]!;
          // NaN wins (propagates), otherwise strictly better; ties keep the first index.
          if (v !== v || (wantMax ? v > best : v < best)) {
            best = v;
            bestI = i;
          }
        }
        r = op === 'max' || op === 'min' ? best : bestI;
        break;
      }
    }
    dst[base + o] = r;
  }
}
