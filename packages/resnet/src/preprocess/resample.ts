import { checkImage, checkSize, newImage, type RgbImage } from './image.js';

/**
 * Pillow's `Image.resize(size, Image.BILINEAR)` for 8-bit images, bit for bit
 * (Pillow's src/libImaging/Resample.c, ImagingResampleInner and the 8bpc passes).
 *
 * PIL resamples with a separable convolution: a horizontal pass into an 8-bit
 * temporary, then a vertical pass. When shrinking, the triangle filter is
 * stretched by the scale factor (support = scale), so every source pixel
 * under it contributes: that is PIL's antialiasing, and why a plain bilinear
 * interpolation does not reproduce torchvision's numbers. Coefficients are
 * computed in double, normalised to sum 1, then turned into 22-bit fixed
 * point; each output is (sum + 2^21) >> 22 clipped to 0..255.
 */

/** PIL's PRECISION_BITS (32 - 8 - 2): 8 bits of pixel, 2 of headroom for filters with negative lobes. */
const PRECISION_BITS = 22;

/** The triangle filter PIL calls BILINEAR (support 1). */
function bilinearFilter(x: number): number {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

interface Coefficients {
  /** Filter taps per output pixel (the stride of `kk`). */
  ksize: number;
  /** Per output pixel: first source index, then number of taps. */
  bounds: Int32Array;
  /** Fixed-point weights, `ksize` per output pixel. */
  kk: Int32Array;
}

/** precompute_coeffs + normalize_coeffs_8bpc for the full-image box [0, inSize). */
function precomputeCoeffs(inSize: number, outSize: number): Coefficients {
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = 1 * filterscale; // BILINEAR's support is 1
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero; Math.trunc does the same.
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = bilinearFilter((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x]! / ww : k[x]!;
      kk[xx * ksize + x] = Math.trunc(w < 0 ? -0.5 + w * (1 << PRECISION_BITS) : 0.5 + w * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

/** clip8: the fixed-point sum to a byte; `>> 22` floors like C's arithmetic shift. */
function clip8(ss: number): number {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Resizes to `width` x `height` exactly as Pillow's BILINEAR resize does
 * (antialiased when shrinking).
 */
export function resizeBilinear(img: RgbImage, width: number, height: number): RgbImage {
  checkImage('resize', img);
  checkSize('resize', width, height);
  const needHorizontal = width !== img.width;
  const needVertical = height !== img.height;
  const vert = precomputeCoeffs(img.height, height);
  // Only source rows the vertical filter reads need the horizontal pass.
  const yFirst = vert.bounds[0]!;
  const yLast = vert.bounds[height * 2 - 2]! + vert.bounds[height * 2 - 1]!;

  let src = img;
  let rowOffset = 0;
  if (needHorizontal) {
    src = horizontalPass(img, width, yFirst, yLast);
    rowOffset = yFirst;
  }
  if (!needVertical) {
    // Without a vertical pass the temporary holds rows [yFirst, yLast) = all rows.
    return src === img ? { width: img.width, height: img.height, data: img.data.slice() } : src;
  }
  return verticalPass(src, vert, height, rowOffset);
}

function horizontalPass(img: RgbImage, width: number, yFirst: number, yLast: number): RgbImage {
  const { ksize, bounds, kk } = precomputeCoeffs(img.width, width);
  const out = newImage(width, yLast - yFirst);
  const src = img.data;
  const dst = out.data;
  const half = 1 << (PRECISION_BITS - 1);
  for (let y = yFirst; y < yLast; y++) {
    const row = y * img.width * 3;
    let o = (y - yFirst) * width * 3;
    for (let xx = 0; xx < width; xx++) {
      const xmin = bounds[xx * 2]!;
      const xmax = bounds[xx * 2 + 1]!;
      const kOff = xx * ksize;
      let s0 = half;
      let s1 = half;
      let s2 = half;
      for (let x = 0; x < xmax; x++) {
        const w = kk[kOff + x]!;
        const p = row + (x + xmin) * 3;
        s0 += src[p]! * w;
        s1 += src[p + 1]! * w;
        s2 += src[p + 2]! * w;
      }
      dst[o++] = clip8(s0);
      dst[o++] = clip8(s1);
      dst[o++] = clip8(s2);
    }
  }
  return out;
}

function verticalPass(img: RgbImage, c: Coefficients, height: number, rowOffset: number): RgbImage {
  const { ksize, bounds, kk } = c;
  const width = img.width;
  const stride = width * 3;
  const out = newImage(width, height);
  const src = img.data;
  const dst = out.data;
  const half = 1 << (PRECISION_BITS - 1);
  for (let yy = 0; yy < height; yy++) {
    const ymin = bounds[yy * 2]! - rowOffset;
    const ymax = bounds[yy * 2 + 1]!;
    const kOff = yy * ksize;
    const o = yy * stride;
    for (let i = 0; i < stride; i++) {
      let s = half;
      for (let y = 0; y < ymax; y++) s += src[(y + ymin) * stride + i]! * kk[kOff + y]!;
      dst[o + i] = clip8(s);
    }
  }
  return out;
}
