import { FormatError } from '@kiln/core';
import { checkImage, checkSize, newImage, type RgbImage } from './image.js';
import { resizeBilinear } from './resample.js';

/**
 * torchvision 0.14's transforms on PIL images, one function each, computing
 * exactly what torchvision computes (sizes, offsets, rounding).
 */

/** ImageNet channel means torchvision's pretrained models expect (RGB). */
export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
/** ImageNet channel standard deviations (RGB). */
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

/** A source of uniform random numbers in [0, 1), e.g. core's seeded RNG. */
export interface Rng {
  /** A uniform draw in [0, 1) (Math.random works; tests pass seeded ones). */
  random(): number;
}

/** Python's round(): halves go to the even neighbour (torchvision's crop offsets depend on it). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * `transforms.Resize(size)` with BILINEAR (PIL-exact, antialiased).
 * A number resizes the shorter side to `size` and the longer to
 * `int(size * long / short)` (truncated, as torchvision computes it);
 * `[height, width]` resizes to exactly that.
 */
export function resize(img: RgbImage, size: number | readonly [number, number]): RgbImage {
  checkImage('resize', img);
  const { width: w, height: h } = img;
  let outH: number;
  let outW: number;
  if (typeof size === 'number') {
    const [short, long] = w <= h ? [w, h] : [h, w];
    const newLong = Math.trunc((size * long) / short);
    [outW, outH] = w <= h ? [size, newLong] : [newLong, size];
  } else {
    [outH, outW] = size;
  }
  checkSize('resize', outW, outH);
  return resizeBilinear(img, outW, outH);
}

/**
 * PIL's `img.crop((left, top, left + width, top + height))`: pixels outside
 * the source are black, as PIL fills them.
 */
export function crop(img: RgbImage, top: number, left: number, height: number, width: number): RgbImage {
  checkImage('crop', img);
  if (![top, left].every(Number.isSafeInteger)) throw new FormatError('crop', `crop offsets must be integers, got top=${top} left=${left}`);
  const out = newImage(width, height);
  const x0 = Math.max(0, -left);
  const x1 = Math.min(width, img.width - left);
  if (x1 <= x0) return out;
  for (let y = Math.max(0, -top); y < Math.min(height, img.height - top); y++) {
    const from = ((y + top) * img.width + left + x0) * 3;
    out.data.set(img.data.subarray(from, from + (x1 - x0) * 3), (y * width + x0) * 3);
  }
  return out;
}

/**
 * `transforms.CenterCrop(size)`: offsets `int(round((H - h) / 2))` with
 * Python's half-to-even rounding; a crop larger than the image pads it with
 * black first, the way torchvision does (left/top get the smaller half).
 */
export function centerCrop(img: RgbImage, size: number | readonly [number, number]): RgbImage {
  checkImage('centerCrop', img);
  const [ch, cw] = typeof size === 'number' ? [size, size] : size;
  checkSize('centerCrop', cw, ch);
  let { width, height } = img;
  let padLeft = 0;
  let padTop = 0;
  if (cw > width || ch > height) {
    padLeft = cw > width ? Math.floor((cw - width) / 2) : 0;
    padTop = ch > height ? Math.floor((ch - height) / 2) : 0;
    width += cw > width ? cw - width : 0;
    height += ch > height ? ch - height : 0;
  }
  const top = roundHalfEven((height - ch) / 2) - padTop;
  const left = roundHalfEven((width - cw) / 2) - padLeft;
  return crop(img, top, left, ch, cw);
}

/** PIL's FLIP_LEFT_RIGHT. */
export function hflip(img: RgbImage): RgbImage {
  checkImage('hflip', img);
  const out = newImage(img.width, img.height);
  for (let y = 0; y < img.height; y++) {
    const row = y * img.width * 3;
    for (let x = 0; x < img.width; x++) {
      const s = row + x * 3;
      const d = row + (img.width - 1 - x) * 3;
      out.data[d] = img.data[s]!;
      out.data[d + 1] = img.data[s + 1]!;
      out.data[d + 2] = img.data[s + 2]!;
    }
  }
  return out;
}

/**
 * `ToTensor()` then `Normalize(mean, std)`: HWC bytes to a CHW float32 array
 * of `(v / 255 - mean[c]) / std[c]`. Each step rounds to float32 as PyTorch's
 * float32 kernels do (v/255, minus float32 mean, divided by float32 std), so
 * the result equals torchvision's bit for bit.
 */
export function toTensorNormalize(
  img: RgbImage,
  mean: readonly number[] = IMAGENET_MEAN,
  std: readonly number[] = IMAGENET_STD,
): Float32Array {
  checkImage('toTensorNormalize', img);
  if (mean.length !== 3 || std.length !== 3) throw new FormatError('toTensorNormalize', `mean and std need 3 values (RGB), got ${mean.length} and ${std.length}`);
  const plane = img.width * img.height;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const m = Math.fround(mean[c]!);
    const s = Math.fround(std[c]!);
    // 256 possible inputs per channel: a table makes the float32 steps explicit and cheap.
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = Math.fround(Math.fround(Math.fround(v / 255) - m) / s);
    for (let i = 0; i < plane; i++) out[c * plane + i] = lut[img.data[i * 3 + c]!]!;
  }
  return out;
}

/** A crop box as torchvision's `get_params` returns it: (i, j, h, w). */
export interface CropBox {
  /** Row of the crop's top edge. */
  top: number;
  /** Column of the crop's left edge. */
  left: number;
  /** Crop height in pixels. */
  height: number;
  /** Crop width in pixels. */
  width: number;
}

/** Options for {@link randomResizedCrop}; defaults are torchvision's. */
export interface RandomResizedCropOptions {
  /** Output size, one number for a square or [h, w]. Default 224. */
  size?: number | readonly [number, number];
  /** Range of the crop's area as a fraction of the image's. Default [0.08, 1]. */
  scale?: readonly [number, number];
  /** Range of the crop's aspect ratio (w/h). Default [3/4, 4/3]. */
  ratio?: readonly [number, number];
}

/**
 * `RandomResizedCrop.get_params`: up to 10 tries of a random area fraction in
 * `scale` and a log-uniform aspect ratio in `ratio`, else a center crop
 * clamped to the ratio range. Draws from `rng`, per try: scale, ratio, and on
 * success top then left. A uniform u maps as `a + (b - a) * u` and an
 * integer in [lo, hi) as `lo + floor(u * (hi - lo))`; the log-ratio bounds
 * are float32 (torchvision takes them from a float32 tensor).
 */
export function randomResizedCropParams(
  width: number,
  height: number,
  rng: Rng,
  scale: readonly [number, number] = [0.08, 1],
  ratio: readonly [number, number] = [3 / 4, 4 / 3],
): CropBox {
  checkSize('randomResizedCrop', width, height);
  const area = height * width;
  const logLo = Math.fround(Math.log(Math.fround(ratio[0])));
  const logHi = Math.fround(Math.log(Math.fround(ratio[1])));
  const uniform = (a: number, b: number) => a + (b - a) * rng.random();
  const randint = (lo: number, hi: number) => lo + Math.floor(rng.random() * (hi - lo));
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * uniform(scale[0], scale[1]);
    const aspect = Math.exp(uniform(logLo, logHi));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = randint(0, height - h + 1);
      const left = randint(0, width - w + 1);
      return { top, left, height: h, width: w };
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  const lo = Math.min(ratio[0], ratio[1]);
  const hi = Math.max(ratio[0], ratio[1]);
  if (inRatio < lo) h = roundHalfEven(w / lo);
  else if (inRatio > hi) w = roundHalfEven(h * hi);
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/** `RandomResizedCrop(size, scale, ratio)` with BILINEAR: {@link randomResizedCropParams}, crop, PIL-exact resize. */
export function randomResizedCrop(img: RgbImage, rng: Rng, opts: RandomResizedCropOptions = {}): RgbImage {
  checkImage('randomResizedCrop', img);
  const size = opts.size ?? 224;
  const [outH, outW] = typeof size === 'number' ? [size, size] : size;
  const box = randomResizedCropParams(img.width, img.height, rng, opts.scale, opts.ratio);
  return resizeBilinear(crop(img, box.top, box.left, box.height, box.width), outW, outH);
}

/** `RandomHorizontalFlip(p)`: flips when `rng.random() < p` (one draw per call). */
export function randomHorizontalFlip(img: RgbImage, rng: Rng, p = 0.5): RgbImage {
  return rng.random() < p ? hflip(img) : img;
}
