// Preprocessing checked against PIL + torchvision 0.14 outputs (tests/reference/resnet_io_images.py).
//
// Tolerances:
// - PNG decode, Resize (PIL BILINEAR with antialias), CenterCrop, ToTensor,
//   Normalize, RandomResizedCrop + flip: EXACT (max abs diff 0, bit for bit).
// - JPEG decode (jpeg-js IDCT + libjpeg-style upsampling/colour vs PIL's libjpeg-turbo): pixel values within
//   JPEG_MAX_LEVELS levels, mean within JPEG_MEAN_LEVELS; through the whole eval
//   pipeline that is at most JPEG_MAX_LEVELS / 255 / min(std) in the normalised
//   tensor. The pipeline fed PIL's decoded pixels is exact again, so the whole
//   difference is the decoder's.
import { expect, it } from 'vitest';
import {
  centerCrop,
  decodeImage,
  preprocessImage,
  randomHorizontalFlip,
  randomResizedCrop,
  randomResizedCropParams,
  resize,
  toTensorNormalize,
  type RgbImage,
} from '../src/preprocess/index.js';
import { describeWithReference, refBytes, refJson } from './helpers/reference.js';

const JPEG_MAX_LEVELS = 4; // measured 3 (4:2:0, 4:4:4, progressive), 1 (grey)
const JPEG_MEAN_LEVELS = 0.25; // measured 0.16 colour, 0.07 grey

interface Dump {
  file: string;
  shape: number[];
}
interface ImageCase {
  file: string;
  mode: string;
  width: number;
  height: number;
  decoded: Dump;
  resized: Dump;
  tensor?: Dump;
}
interface AugmentCase {
  file: string;
  label: string;
  uniforms: number[];
  box: [number, number, number, number];
  result: Dump;
}
interface Index {
  mean: number[];
  std: number[];
  images: ImageCase[];
  augment: AugmentCase[];
}

const u8 = (d: Dump) => refBytes(`images/${d.file}`);
const f32 = (d: Dump) => {
  const b = refBytes(`images/${d.file}`);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};
const image = (d: Dump): RgbImage => ({ height: d.shape[0]!, width: d.shape[1]!, data: u8(d) });

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function meanAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
}

/** Replays the generator's scripted uniforms and counts how many were drawn. */
function scripted(us: number[]) {
  let used = 0;
  return {
    random: () => {
      if (used >= us.length) throw new Error('rng drawn more often than torchvision drew');
      return us[used++]!;
    },
    get used() {
      return used;
    },
  };
}

describeWithReference('preprocessing vs PIL + torchvision', () => {
  const index = refJson<Index>('images/index.json');
  const png = index.images.filter((c) => c.file.endsWith('.png'));
  const jpg = index.images.filter((c) => c.file.endsWith('.jpg'));

  it.each(png.map((c) => [c.file, c.mode, c] as const))('decodes %s (PIL mode %s) to the exact RGB of convert("RGB")', (_f, _m, c) => {
    const img = decodeImage(refBytes(`images/${c.file}`));
    expect([img.format, img.width, img.height]).toEqual(['png', c.width, c.height]);
    expect(maxAbsDiff(img.data, u8(c.decoded))).toBe(0);
  });

  it.each(jpg.map((c) => [c.file, c] as const))('decodes %s within the stated JPEG tolerance of libjpeg', (_f, c) => {
    const img = decodeImage(refBytes(`images/${c.file}`));
    expect([img.format, img.width, img.height]).toEqual(['jpeg', c.width, c.height]);
    const want = u8(c.decoded);
    const max = maxAbsDiff(img.data, want);
    const mean = meanAbsDiff(img.data, want);
    console.info(`[resnet io] ${c.file}: jpeg-js vs PIL decode max |diff| ${max} levels, mean ${mean.toFixed(3)}`);
    expect(max).toBeLessThanOrEqual(JPEG_MAX_LEVELS);
    expect(mean).toBeLessThanOrEqual(JPEG_MEAN_LEVELS);
  });

  it.each(index.images.map((c) => [c.file, c] as const))('Resize(256) of %s equals PIL BILINEAR byte for byte', (_f, c) => {
    const out = resize(image(c.decoded), 256);
    expect([out.height, out.width]).toEqual(c.resized.shape.slice(0, 2));
    expect(maxAbsDiff(out.data, u8(c.resized))).toBe(0);
  });

  it.each(index.images.map((c) => [c.file, c] as const))('CenterCrop + ToTensor + Normalize of %s equal torchvision bit for bit', (_f, c) => {
    const mine = toTensorNormalize(centerCrop(image(c.resized), 224), index.mean, index.std);
    const fromPil = preprocessImage(image(c.decoded));
    expect(fromPil.shape).toEqual([3, 224, 224]);
    expect(maxAbsDiff(fromPil.data, mine)).toBe(0);
    if (c.tensor) expect(maxAbsDiff(mine, f32(c.tensor))).toBe(0);
  });

  it.each(png.filter((c) => c.tensor).map((c) => [c.file, c] as const))('preprocessImage(%s bytes) equals the torchvision eval transform exactly', (_f, c) => {
    const out = preprocessImage(refBytes(`images/${c.file}`));
    expect(maxAbsDiff(out.data, f32(c.tensor!))).toBe(0);
  });

  it.each(jpg.filter((c) => c.tensor).map((c) => [c.file, c] as const))('preprocessImage(%s bytes) is within the JPEG decoder tolerance of torchvision', (_f, c) => {
    const out = preprocessImage(refBytes(`images/${c.file}`));
    const max = maxAbsDiff(out.data, f32(c.tensor!));
    console.info(`[resnet io] ${c.file}: eval tensor max |diff| ${max.toFixed(4)} (normalised units)`);
    expect(max).toBeLessThanOrEqual(JPEG_MAX_LEVELS / 255 / Math.min(...index.std) + 1e-6);
  });

  it.each(index.augment.map((c) => [c.label, c.file, c] as const))(
    'RandomResizedCrop + RandomHorizontalFlip (%s, %s) pick torchvision\'s box and pixels',
    (_l, _f, c) => {
      const img = image(index.images.find((i) => i.file === c.file)!.decoded);
      const [top, left, height, width] = c.box;
      const params = scripted(c.uniforms);
      expect(randomResizedCropParams(img.width, img.height, params)).toEqual({ top, left, height, width });
      const rng = scripted(c.uniforms);
      const out = randomHorizontalFlip(randomResizedCrop(img, rng), rng);
      expect(rng.used).toBe(c.uniforms.length);
      expect([out.height, out.width]).toEqual([224, 224]);
      expect(maxAbsDiff(out.data, u8(c.result))).toBe(0);
    },
  );
});
