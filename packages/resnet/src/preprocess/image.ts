import { FormatError } from '@kiln/core';

/**
 * An 8-bit RGB image, rows top to bottom, pixels interleaved (HWC): the
 * equivalent of a PIL image in mode 'RGB', which is what torchvision's
 * transforms see after `Image.open(f).convert('RGB')`.
 */
export interface RgbImage {
  /** Pixels per row. */
  width: number;
  /** Rows. */
  height: number;
  /** `width * height * 3` bytes, R G B per pixel. */
  data: Uint8Array;
}

/** A new black image (every transform allocates its output through this). */
export function newImage(width: number, height: number): RgbImage {
  checkSize('newImage', width, height);
  return { width, height, data: new Uint8Array(width * height * 3) };
}

/** Throws unless `width` x `height` is a valid, non-empty image size. */
export function checkSize(op: string, width: number, height: number): void {
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1) {
    throw new FormatError(op, `image size must be positive integers, got ${width}x${height}`);
  }
}

/** Throws unless `img` is a well-formed {@link RgbImage}. */
export function checkImage(op: string, img: RgbImage): void {
  checkSize(op, img.width, img.height);
  if (!(img.data instanceof Uint8Array) || img.data.length !== img.width * img.height * 3) {
    throw new FormatError(op, `expected ${img.width}x${img.height}x3 = ${img.width * img.height * 3} RGB bytes, got ${img.data?.length}`);
  }
}
