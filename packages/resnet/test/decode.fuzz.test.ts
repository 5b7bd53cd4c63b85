// decodeImage on untrusted bytes: thousands of mutated valid PNGs and JPEGs
// (bit flips, overwritten bytes and dimension fields, insertions, deletions,
// duplicated ranges, truncation; half the PNGs get their chunk CRCs repaired
// so the mutations reach inflate and unfiltering), every truncation of a
// small file, and decompression bombs (headers declaring huge frames, a zlib
// stream that inflates far past its header). Each case must either decode to
// an image of exactly width x height x 3 bytes within the pixel cap, or throw
// a FormatError; never another error, a hang, or a large allocation.
// Seeds are encoded here (fast-png, jpeg-js), so no reference files are needed.
import { describe, expect, it } from 'vitest';
import { encode as encodePng } from 'fast-png';
import { zlibSync } from 'fflate';
import jpeg from 'jpeg-js';
import { FormatError } from '@kiln/core';
import { decodeImage } from '../src/preprocess/index.js';

const CASES_PER_FORMAT = 2000;
const MAX_PIXELS = 1 << 20;
/** Slowest single decode allowed (a mutated 20x20 image decodes in well under a millisecond). */
const CASE_MS = 1000;

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Recomputes the CRC of every chunk whose length field still fits the file. */
function repairPngCrcs(b: Uint8Array): void {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let pos = 8; pos + 12 <= b.length;) {
    const length = view.getUint32(pos);
    if (pos + 12 + length > b.length) return;
    view.setUint32(pos + 8 + length, crc32(b.subarray(pos + 4, pos + 8 + length)));
    pos += 12 + length;
  }
}

function pixels(n: number, channels: number, r: () => number, max = 255): number[] {
  return Array.from({ length: n * channels }, () => Math.floor(r() * (max + 1)));
}

function pngSeeds(): Uint8Array[] {
  const r = rng(11);
  const seeds: Uint8Array[] = [];
  const add = (width: number, height: number, channels: number, depth: 8 | 16 = 8) => {
    const data = depth === 16 ? Uint16Array.from(pixels(width * height, channels, r, 65535)) : Uint8Array.from(pixels(width * height, channels, r));
    seeds.push(encodePng({ width, height, data, channels, depth }));
  };
  add(17, 13, 3);
  add(9, 11, 4);
  add(16, 7, 1);
  add(6, 5, 2);
  add(5, 6, 3, 16);
  add(7, 3, 1, 16);
  const palette = Array.from({ length: 6 }, () => [Math.floor(r() * 256), Math.floor(r() * 256), Math.floor(r() * 256)]);
  seeds.push(encodePng({ width: 8, height: 8, data: Uint8Array.from(pixels(64, 1, r, 5)), channels: 1, depth: 8, palette }));
  return seeds;
}

function jpegSeeds(): Uint8Array[] {
  const r = rng(12);
  return ([[16, 16, 90], [23, 17, 75], [8, 40, 50], [33, 9, 95]] as const).map(([width, height, quality]) => {
    const rgba = Uint8Array.from(pixels(width * height, 4, r));
    return Uint8Array.from(jpeg.encode({ data: rgba, width, height }, quality).data);
  });
}

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 0x10000, 65500];

/** 1-4 random mutations; half of them aimed at the first 64 bytes, where the headers are. */
function mutate(seed: Uint8Array, r: () => number): Uint8Array {
  let b = Uint8Array.from(seed);
  const count = 1 + Math.floor(r() * 4);
  for (let k = 0; k < count && b.length > 0; k++) {
    const pos = Math.floor(r() * (r() < 0.5 ? Math.min(64, b.length) : b.length));
    const len = 1 + Math.floor(r() * 16);
    switch (Math.floor(r() * 7)) {
      case 0: b[pos] = b[pos]! ^ (1 << Math.floor(r() * 8)); break;
      case 1: b[pos] = Math.floor(r() * 256); break;
      case 2: {
        const v = INTERESTING[Math.floor(r() * INTERESTING.length)]!;
        for (let i = 0; i < 4 && pos + i < b.length; i++) b[pos + i] = (v >>> (8 * (3 - i))) & 0xff;
        break;
      }
      case 3: b = Uint8Array.from([...b.subarray(0, pos), ...b.subarray(pos + len)]); break;
      case 4: b = Uint8Array.from([...b.subarray(0, pos), ...pixels(len, 1, r), ...b.subarray(pos)]); break;
      case 5: b = b.slice(0, pos); break;
      case 6: b = Uint8Array.from([...b.subarray(0, pos + len), ...b.subarray(pos, pos + len), ...b.subarray(pos + len)]); break;
    }
  }
  return b;
}

interface Tally { decoded: number; rejected: number; slowestMs: number }

/** Decodes `bytes`; anything but a right-sized image or a FormatError fails the test, naming the case. */
function check(bytes: Uint8Array, what: string, tally: Tally): void {
  const started = performance.now();
  try {
    const img = decodeImage(bytes, { maxPixels: MAX_PIXELS, maxMemoryMB: 64 });
    expect(img.width * img.height, `${what}: decoded size`).toBeLessThanOrEqual(MAX_PIXELS);
    expect(img.data.length, `${what}: decoded ${img.width}x${img.height}`).toBe(img.width * img.height * 3);
    tally.decoded++;
  } catch (e) {
    if (!(e instanceof FormatError)) throw new Error(`${what}: threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message ?? e}`);
    tally.rejected++;
  }
  tally.slowestMs = Math.max(tally.slowestMs, performance.now() - started);
}

const tallies = new Map<string, Tally>();
const tally = (name: string) => {
  let t = tallies.get(name);
  if (!t) tallies.set(name, (t = { decoded: 0, rejected: 0, slowestMs: 0 }));
  return t;
};

describe('decodeImage on hostile input', () => {
  it('the seeds decode (so the mutations start from valid files)', () => {
    for (const s of [...pngSeeds(), ...jpegSeeds()]) expect(decodeImage(s).data.length).toBeGreaterThan(0);
  });

  for (const [format, seeds, repair] of [['PNG', pngSeeds(), true], ['JPEG', jpegSeeds(), false]] as const) {
    it(`${CASES_PER_FORMAT} mutated ${format} files: each decodes right-sized or throws a FormatError`, () => {
      const r = rng(format === 'PNG' ? 101 : 202);
      const t = tally(`${format} mutations`);
      for (let i = 0; i < CASES_PER_FORMAT; i++) {
        const seed = seeds[i % seeds.length]!;
        const bytes = mutate(seed, r);
        if (repair && r() < 0.5) repairPngCrcs(bytes);
        check(bytes, `${format} mutation ${i}`, t);
      }
      console.log(`${format} fuzz: ${CASES_PER_FORMAT} cases, ${t.decoded} decoded, ${t.rejected} rejected (FormatError), slowest ${t.slowestMs.toFixed(1)} ms`);
      expect(t.rejected, 'the mutations must reach the error paths').toBeGreaterThan(CASES_PER_FORMAT / 4);
      expect(t.slowestMs).toBeLessThan(CASE_MS);
    });

    it(`every truncation of a ${format} file is rejected with a FormatError`, () => {
      const seed = seeds[0]!;
      const t = tally(`${format} truncations`);
      for (let n = 0; n < seed.length; n++) {
        const before = t.rejected;
        check(seed.subarray(0, n), `${format} truncated to ${n} of ${seed.length} bytes`, t);
        // A JPEG cut inside its last two bytes (the EOI marker) may still decode: jpeg-js needs no EOI.
        if (format === 'PNG' || n < seed.length - 2) expect(t.rejected, `${format} truncated to ${n} bytes was accepted`).toBe(before + 1);
      }
    });
  }

  it('PNG headers declaring huge images are refused before any allocation', () => {
    const base = pngSeeds()[0]!;
    for (const [w, h] of [[100_000, 100_000], [0xffffffff, 1], [1, 0x7fffffff], [9000, 9000], [2000, 2000]]) {
      const b = Uint8Array.from(base);
      const view = new DataView(b.buffer);
      view.setUint32(16, w);
      view.setUint32(20, h);
      repairPngCrcs(b);
      const memory = process.memoryUsage().arrayBuffers;
      const started = performance.now();
      // The default cap (Pillow's 89.5 MP) lets 9000x9000 through the pixel check: the data must then fail without a 243 MB buffer.
      expect(() => decodeImage(b), `${w}x${h}`).toThrow(FormatError);
      expect(performance.now() - started, `${w}x${h}: time`).toBeLessThan(500);
      expect(process.memoryUsage().arrayBuffers - memory, `${w}x${h}: bytes allocated`).toBeLessThan(8 << 20);
    }
  });

  it('a zlib bomb (16 KB inflating to 16 MB behind a 17x13 header) stops at the header size', () => {
    const bomb = zlibSync(new Uint8Array(16 << 20), { level: 9 });
    const png = Uint8Array.from(pngSeeds()[0]!);
    // Rebuild: signature + IHDR of the seed (17x13 RGB) + one IDAT holding the bomb + IEND.
    const ihdr = png.subarray(8, 33);
    const idat = new Uint8Array(12 + bomb.length);
    const view = new DataView(idat.buffer);
    view.setUint32(0, bomb.length);
    idat.set([0x49, 0x44, 0x41, 0x54], 4);
    idat.set(bomb, 8);
    view.setUint32(8 + bomb.length, crc32(idat.subarray(4, 8 + bomb.length)));
    const iend = Uint8Array.from([0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);
    const file = Uint8Array.from([...png.subarray(0, 8), ...ihdr, ...idat, ...iend]);
    const memory = process.memoryUsage().arrayBuffers;
    const started = performance.now();
    expect(() => decodeImage(file)).toThrow(/PNG image data inflates past the 676 bytes its header implies/);
    // Inflating it all takes seconds here; stopping at the header's size takes milliseconds (bound loose for a busy machine).
    expect(performance.now() - started).toBeLessThan(1000);
    expect(process.memoryUsage().arrayBuffers - memory).toBeLessThan(8 << 20);
    console.log(`zlib bomb: ${file.length} bytes (inflating to ${16 << 20}) rejected in ${(performance.now() - started).toFixed(1)} ms`);
  });

  it('JPEG frame headers declaring more than the file can hold are refused before jpeg-js allocates', () => {
    const base = jpegSeeds()[0]!;
    const sof = base.findIndex((v, i) => v === 0xff && base[i + 1] === 0xc0);
    for (const [w, h] of [[65535, 65535], [8000, 8000], [4000, 3000], [1200, 900]]) {
      const b = Uint8Array.from(base);
      b[sof + 5] = h >> 8; b[sof + 6] = h & 0xff; b[sof + 7] = w >> 8; b[sof + 8] = w & 0xff;
      const memory = process.memoryUsage().arrayBuffers;
      const started = performance.now();
      expect(() => decodeImage(b), `${w}x${h}`).toThrow(FormatError);
      expect(performance.now() - started, `${w}x${h}: time`).toBeLessThan(500);
      expect(process.memoryUsage().arrayBuffers - memory, `${w}x${h}: bytes allocated`).toBeLessThan(8 << 20);
    }
  });
});
