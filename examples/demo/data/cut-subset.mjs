#!/usr/bin/env node
// Cuts the demo's embedded Fashion-MNIST subset from the full data set
// (Debian's dataset-fashion-mnist, /usr/share/datasets/fashion-mnist):
// the first TRAIN_PER_CLASS training and TEST_PER_CLASS test images of
// every class, in file order, written as idx files gzipped like the
// originals. Run again to reproduce the committed files byte for byte:
//   node examples/demo/data/cut-subset.mjs [/usr/share/datasets/fashion-mnist]
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';

const TRAIN_PER_CLASS = 600;
const TEST_PER_CLASS = 200;
const src = process.argv[2] ?? '/usr/share/datasets/fashion-mnist';
const out = join(dirname(fileURLToPath(import.meta.url)), 'fashion-mnist');

function cut(split, perClass) {
  const images = gunzipSync(readFileSync(join(src, `${split}-images-idx3-ubyte.gz`)));
  const labels = gunzipSync(readFileSync(join(src, `${split}-labels-idx1-ubyte.gz`)));
  if (images.readUInt32BE(0) !== 0x803 || labels.readUInt32BE(0) !== 0x801) throw new Error(`${split}: not idx3/idx1 files`);
  const n = labels.readUInt32BE(4);
  const [rows, cols] = [images.readUInt32BE(8), images.readUInt32BE(12)];
  const size = rows * cols;
  const taken = new Array(10).fill(0);
  const keep = [];
  for (let i = 0; i < n && keep.length < 10 * perClass; i++) {
    const c = labels[8 + i];
    if (taken[c] < perClass) {
      taken[c]++;
      keep.push(i);
    }
  }
  const img = Buffer.alloc(16 + keep.length * size);
  const lab = Buffer.alloc(8 + keep.length);
  img.writeUInt32BE(0x803, 0); img.writeUInt32BE(keep.length, 4); img.writeUInt32BE(rows, 8); img.writeUInt32BE(cols, 12);
  lab.writeUInt32BE(0x801, 0); lab.writeUInt32BE(keep.length, 4);
  keep.forEach((i, j) => {
    images.copy(img, 16 + j * size, 16 + i * size, 16 + (i + 1) * size);
    lab[8 + j] = labels[8 + i];
  });
  // mtime 0 in the gzip header (node:zlib writes none), so reruns are byte-identical.
  writeFileSync(join(out, `${split}-images-idx3-ubyte.gz`), gzipSync(img, { level: 9 }));
  writeFileSync(join(out, `${split}-labels-idx1-ubyte.gz`), gzipSync(lab, { level: 9 }));
  console.log(`${split}: ${keep.length} images (${perClass} per class) of ${n}, last source index ${keep.at(-1)}`);
}

cut('train', TRAIN_PER_CLASS);
cut('t10k', TEST_PER_CLASS);
