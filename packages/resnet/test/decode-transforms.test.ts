// Image decoding limits and transform edge cases that need no reference files.
import { encode as encodePng } from 'fast-png';
import { zlibSync } from 'fflate';
import jpeg from 'jpeg-js';
import pngjs from 'pngjs';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../src/io/index.js';
import {
  batchImages,
  centerCrop,
  decodeImage,
  preprocessImage,
  randomResizedCropParams,
  resize,
  roundHalfEven,
  type RgbImage,
} from '../src/preprocess/index.js';

const gradient = (width: number, height: number): RgbImage => {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 255;
  return { width, height, data };
};

function pngBytes(width: number, height: number): Uint8Array {
  const png = new pngjs.PNG({ width, height });
  png.data.fill(200);
  return new Uint8Array(pngjs.PNG.sync.write(png));
}

/** A PNG with a hand-made IHDR and IDAT (CRCs are not checked before our limits apply). */
function craftedPng(width: number, height: number, idat: Uint8Array, interlace = 0): Uint8Array {
  const chunk = (type: string, body: Uint8Array) => {
    const out = new Uint8Array(12 + body.length);
    new DataView(out.buffer).setUint32(0, body.length);
    out.set(new TextEncoder().encode(type), 4);
    out.set(body, 8);
    return out;
  };
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr.set([8, 2, 0, 0, interlace], 8);
  const parts = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))];
  return new Uint8Array(Buffer.concat(parts));
}

describe('decodeImage limits and errors', () => {
  it('decodes what pngjs and jpeg-js encode', () => {
    expect(decodeImage(pngBytes(5, 4))).toMatchObject({ format: 'png', width: 5, height: 4 });
    const jpg = jpeg.encode({ width: 8, height: 6, data: Buffer.alloc(8 * 6 * 4, 90) }, 90).data;
    const img = decodeImage(new Uint8Array(jpg));
    expect(img).toMatchObject({ format: 'jpeg', width: 8, height: 6 });
    expect(Math.abs(img.data[0]! - 90)).toBeLessThanOrEqual(2);
  });

  it('decodes Adam7-interlaced PNGs to the same pixels as plain ones (8 and 16 bit)', () => {
    const img = gradient(37, 23);
    for (const depth of [8, 16] as const) {
      const data = depth === 8 ? img.data : Uint16Array.from(img.data, (v) => v * 256 + 3);
      const plain = decodeImage(encodePng({ width: 37, height: 23, data, depth, channels: 3 }));
      const interlaced = decodeImage(encodePng({ width: 37, height: 23, data, depth, channels: 3 }, { interlace: 'Adam7' }));
      expect(plain.data).toEqual(img.data); // 16 bit: PIL keeps the high byte, (v * 256 + 3) >> 8 = v
      expect(interlaced.data).toEqual(img.data);
    }
  });

  it('rejects an interlaced PNG below 8 bits per sample rather than misreading it', () => {
    const png = craftedPng(8, 8, zlibSync(new Uint8Array(16)), 1);
    png[8 + 8 + 8] = 4; // IHDR bit depth: 4
    expect(() => decodeImage(png)).toThrow(/interlaced PNGs with 4-bit samples are not supported/);
  });

  it('rejects PNG data that inflates to less than the header implies', () => {
    expect(() => decodeImage(craftedPng(10, 10, zlibSync(new Uint8Array(100))))).toThrow(/short of the 310/);
  });

  it('rejects unknown formats by their magic bytes', () => {
    expect(() => decodeImage(new TextEncoder().encode('GIF89a....'))).toThrow(/GIF.*expected PNG or JPEG/);
    expect(() => decodeImage(new Uint8Array(0))).toThrow(/empty input/);
    expect(() => decodeImage(new Uint8Array([1, 2, 3, 4]))).toThrow(/01 02 03 04/);
  });

  it('rejects truncated and corrupt PNGs', () => {
    const png = pngBytes(20, 20);
    expect(() => decodeImage(png.subarray(0, png.length - 30))).toThrow(FormatError);
    const bad = png.slice();
    bad[40] ^= 0xff;
    expect(() => decodeImage(bad)).toThrow(FormatError);
  });

  it('checks the pixel count from the header before allocating', () => {
    expect(() => decodeImage(craftedPng(100_000, 100_000, new Uint8Array(10)))).toThrow(/over the limit/);
    expect(() => decodeImage(pngBytes(50, 50), { maxPixels: 1000 })).toThrow(/2500 pixels, over the limit of 1000/);
    const jpg = new Uint8Array(jpeg.encode({ width: 64, height: 64, data: Buffer.alloc(64 * 64 * 4) }, 80).data);
    expect(() => decodeImage(jpg, { maxPixels: 1000 })).toThrow(/over the limit/);
  });

  it('stops a decompression bomb at the size the header implies (plain and interlaced)', () => {
    const bomb = zlibSync(new Uint8Array(50_000_000)); // ~50 KB that inflates to 50 MB
    expect(() => decodeImage(craftedPng(10, 10, bomb))).toThrow(FormatError);
    expect(() => decodeImage(craftedPng(10, 10, bomb, 1))).toThrow(/inflates past/);
  });

  it('rejects a truncated JPEG', () => {
    const jpg = new Uint8Array(jpeg.encode({ width: 32, height: 32, data: Buffer.alloc(32 * 32 * 4, 50) }, 80).data);
    expect(() => decodeImage(jpg.subarray(0, 100))).toThrow(FormatError);
  });
});

describe('transforms', () => {
  it('rounds halves to even like Python', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, 3.2].map(roundHalfEven)).toEqual([0, 2, 2, -0, -2, 3]);
  });

  it('Resize(256) keeps the aspect ratio with torchvision\'s truncation', () => {
    expect(resize(gradient(300, 200), 256)).toMatchObject({ width: 384, height: 256 });
    expect(resize(gradient(199, 257), 256)).toMatchObject({ width: 256, height: 330 }); // int(256 * 257 / 199) = 330
    expect(resize(gradient(10, 10), [3, 7])).toMatchObject({ width: 7, height: 3 });
  });

  it('CenterCrop pads with black when the crop is larger than the image', () => {
    const img = gradient(2, 2);
    const out = centerCrop(img, 4);
    expect(out).toMatchObject({ width: 4, height: 4 });
    // Padding (4 - 2) // 2 = 1 on the left/top: the source sits at rows/cols 1..2.
    expect(out.data.subarray(0, 12)).toEqual(new Uint8Array(12));
    expect(Array.from(out.data.subarray((1 * 4 + 1) * 3, (1 * 4 + 1) * 3 + 6))).toEqual(Array.from(img.data.subarray(0, 6)));
  });

  it('RandomResizedCrop falls back to a ratio-clamped center crop after 10 failed tries', () => {
    let n = 0;
    const rng = { random: () => (n++, 0.999999) }; // full area at the widest ratio never fits 300x200
    expect(randomResizedCropParams(300, 200, rng)).toEqual({ top: 0, left: 16, height: 200, width: 267 });
    expect(n).toBe(20);
  });

  it('preprocessImage and batchImages produce [3,224,224] and [N,3,224,224]', () => {
    const a = preprocessImage(gradient(300, 200));
    const b = preprocessImage(pngBytes(64, 80));
    expect(a.shape).toEqual([3, 224, 224]);
    const batch = batchImages([a, b]);
    expect(batch.shape).toEqual([2, 3, 224, 224]);
    expect(batch.data.subarray(3 * 224 * 224)).toEqual(b.data);
    expect(() => batchImages([])).toThrow(/empty/);
    expect(() => batchImages([a, { data: new Float32Array(3), shape: [3, 1, 1] }])).toThrow(/image 1 has shape/);
  });
});
