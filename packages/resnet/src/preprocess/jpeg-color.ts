/**
 * libjpeg-turbo's chroma upsampling and YCbCr->RGB conversion, applied to the
 * raw (unconverted) component samples jpeg-js decodes.
 *
 * Why: jpeg-js upsamples subsampled chroma by repeating samples and converts
 * colour in floating point with truncation; libjpeg (what PIL uses) applies a
 * triangle ("fancy") filter for 2:1 factors and converts with rounded
 * fixed-point tables. On 4:2:0 files, by far the most common kind, that made
 * colours differ by tens of levels at edges. jpeg-js's nearest-neighbour
 * planes still hold every chroma sample exactly once per block of repeated
 * pixels, so the subsampled planes can be read back and upsampled the way
 * libjpeg-turbo's jdsample.c does, then converted as jdcolor.c does. What
 * remains is the IDCT difference (about 1 level).
 */

/** The frame layout read from a JPEG's SOF marker. */
export interface JpegLayout {
  width: number;
  height: number;
  precision: number;
  /** Sampling factors per component, in frame order. */
  components: { h: number; v: number }[];
  /** True when an Adobe APP14 marker is present (jpeg-js then forces its own colour transform). */
  adobe: boolean;
}

/** Walks the markers up to the first scan; null when the structure is not what we can read (jpeg-js then reports the error). */
export function readJpegLayout(b: Uint8Array): JpegLayout | null {
  let pos = 2;
  let adobe = false;
  while (pos + 4 <= b.length) {
    if (b[pos] !== 0xff) return null;
    const marker = b[pos + 1]!;
    if (marker === 0xff) {
      pos++; // fill byte
      continue;
    }
    const length = (b[pos + 2]! << 8) | b[pos + 3]!;
    const body = pos + 4;
    if (length < 2 || pos + 2 + length > b.length) return null;
    if (marker === 0xee && length >= 14 && String.fromCharCode(...b.subarray(body, body + 5)) === 'Adobe') adobe = true;
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) {
      const n = b[body + 5]!;
      if (length < 8 + 3 * n) return null;
      const components = [];
      for (let i = 0; i < n; i++) {
        const hv = b[body + 7 + i * 3]!;
        components.push({ h: hv >> 4, v: hv & 15 });
      }
      return {
        precision: b[body]!,
        height: (b[body + 1]! << 8) | b[body + 2]!,
        width: (b[body + 3]! << 8) | b[body + 4]!,
        components,
        adobe,
      };
    }
    if (marker === 0xda) return null; // scan before frame header
    pos += 2 + length;
  }
  return null;
}

/**
 * True when {@link libjpegColor} reproduces libjpeg for this layout: three
 * 8-bit components read as YCbCr (no Adobe marker), luma at full resolution,
 * chroma factors dividing it.
 */
export function canConvertLikeLibjpeg(l: JpegLayout): boolean {
  if (l.precision !== 8 || l.adobe || l.components.length !== 3) return false;
  const maxH = Math.max(...l.components.map((c) => c.h));
  const maxV = Math.max(...l.components.map((c) => c.v));
  const [y] = l.components;
  return y!.h === maxH && y!.v === maxV && l.components.every((c) => c.h > 0 && c.v > 0 && maxH % c.h === 0 && maxV % c.v === 0);
}

/**
 * RGB from jpeg-js's raw output (`colorTransform: false`: Y, Cb, Cr per
 * pixel, chroma repeated over each subsampling block) the way libjpeg-turbo
 * produces it.
 */
export function libjpegColor(raw: Uint8Array, l: JpegLayout): Uint8Array {
  const { width: w, height: h } = l;
  const maxH = Math.max(...l.components.map((c) => c.h));
  const maxV = Math.max(...l.components.map((c) => c.v));
  const planes = l.components.map((c, ci) => {
    const rx = maxH / c.h;
    const ry = maxV / c.v;
    if (rx === 1 && ry === 1) return extract(raw, w, h, ci, 1, 1, w, h);
    const cw = Math.ceil(w / rx);
    const ch = Math.ceil(h / ry);
    return upsample(extract(raw, w, h, ci, rx, ry, cw, ch), cw, ch, rx, ry, w, h);
  });
  return yccToRgb(planes[0]!, planes[1]!, planes[2]!);
}

/** Reads component `ci`'s subsampled plane back from the pixel-interleaved raw output. */
function extract(raw: Uint8Array, w: number, _h: number, ci: number, rx: number, ry: number, cw: number, ch: number): Uint8Array {
  const plane = new Uint8Array(cw * ch);
  for (let y = 0; y < ch; y++) for (let x = 0; x < cw; x++) plane[y * cw + x] = raw[(y * ry * w + x * rx) * 3 + ci]!;
  return plane;
}

/**
 * jdsample.c: h2v2/h2v1 fancy (triangle filter, alternating rounding bias)
 * when the plane is wider than 2 samples, h1v2 fancy, else plain replication.
 * Edge rows are duplicated, as jdmainct.c's context rows are.
 */
function upsample(p: Uint8Array, cw: number, ch: number, rx: number, ry: number, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h);
  const fancyH = rx === 2 && cw > 2;
  const colsum = new Int32Array(cw);
  for (let oy = 0; oy < h; oy++) {
    const cy = Math.floor(oy / ry);
    const o = oy * w;
    if (ry === 2 && (fancyH || rx === 1)) {
      // Vertical triangle: 3 x nearest row + the next nearest (above for even rows, below for odd).
      const far = oy % 2 === 0 ? Math.max(cy - 1, 0) : Math.min(cy + 1, ch - 1);
      for (let x = 0; x < cw; x++) colsum[x] = p[cy * cw + x]! * 3 + p[far * cw + x]!;
      if (rx === 1) {
        const bias = oy % 2 === 0 ? 1 : 2;
        for (let x = 0; x < w; x++) out[o + x] = (colsum[x]! + bias) >> 2;
        continue;
      }
      put2(out, o, w, 0, (colsum[0]! * 4 + 8) >> 4);
      put2(out, o, w, 1, (colsum[0]! * 3 + colsum[1]! + 7) >> 4);
      for (let x = 1; x < cw - 1; x++) {
        put2(out, o, w, 2 * x, (colsum[x]! * 3 + colsum[x - 1]! + 8) >> 4);
        put2(out, o, w, 2 * x + 1, (colsum[x]! * 3 + colsum[x + 1]! + 7) >> 4);
      }
      put2(out, o, w, 2 * cw - 2, (colsum[cw - 1]! * 3 + colsum[cw - 2]! + 8) >> 4);
      put2(out, o, w, 2 * cw - 1, (colsum[cw - 1]! * 4 + 7) >> 4);
    } else if (ry === 1 && fancyH) {
      const row = cy * cw;
      put2(out, o, w, 0, p[row]!);
      put2(out, o, w, 1, (p[row]! * 3 + p[row + 1]! + 2) >> 2);
      for (let x = 1; x < cw - 1; x++) {
        const v = p[row + x]! * 3;
        put2(out, o, w, 2 * x, (v + p[row + x - 1]! + 1) >> 2);
        put2(out, o, w, 2 * x + 1, (v + p[row + x + 1]! + 2) >> 2);
      }
      put2(out, o, w, 2 * cw - 2, (p[row + cw - 1]! * 3 + p[row + cw - 2]! + 1) >> 2);
      put2(out, o, w, 2 * cw - 1, p[row + cw - 1]!);
    } else {
      for (let x = 0; x < w; x++) out[o + x] = p[cy * cw + Math.floor(x / rx)]!;
    }
  }
  return out;
}

/** Writes column `x` of an output row, dropping the padding column past an odd width. */
function put2(out: Uint8Array, rowStart: number, w: number, x: number, v: number): void {
  if (x < w) out[rowStart + x] = v;
}

const SCALEBITS = 16;
const ONE_HALF = 1 << (SCALEBITS - 1);
const fix = (x: number) => Math.trunc(x * (1 << SCALEBITS) + 0.5);

/** jdcolor.c's build_ycc_rgb_table: rounded fixed-point contributions per Cb/Cr value. */
const TABLES = (() => {
  const crR = new Int32Array(256);
  const cbB = new Int32Array(256);
  const crG = new Float64Array(256); // kept unshifted, summed before the shift as libjpeg does
  const cbG = new Float64Array(256);
  for (let i = 0; i < 256; i++) {
    const x = i - 128;
    crR[i] = Math.floor((fix(1.402) * x + ONE_HALF) / 2 ** SCALEBITS);
    cbB[i] = Math.floor((fix(1.772) * x + ONE_HALF) / 2 ** SCALEBITS);
    crG[i] = -fix(0.71414) * x;
    cbG[i] = -fix(0.34414) * x + ONE_HALF;
  }
  return { crR, cbB, crG, cbG };
})();

function yccToRgb(y: Uint8Array, cb: Uint8Array, cr: Uint8Array): Uint8Array {
  const { crR, cbB, crG, cbG } = TABLES;
  const out = new Uint8Array(y.length * 3);
  const clamp = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);
  for (let i = 0; i < y.length; i++) {
    const Y = y[i]!;
    const b = cb[i]!;
    const r = cr[i]!;
    out[i * 3] = clamp(Y + crR[r]!);
    out[i * 3 + 1] = clamp(Y + Math.floor((cbG[b]! + crG[r]!) / 2 ** SCALEBITS));
    out[i * 3 + 2] = clamp(Y + cbB[b]!);
  }
  return out;
}
