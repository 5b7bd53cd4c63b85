import { FormatError } from '@kiln/core';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseIdx } from './idx.js';

/** Fashion-MNIST's class names, by label. */
export const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'] as const;

/** Where Debian's dataset-fashion-mnist installs the full data set. */
export const DEBIAN_FASHION_MNIST = '/usr/share/datasets/fashion-mnist';

/** The subset shipped with the demo (examples/demo/data/fashion-mnist, see its README). */
export const EMBEDDED_FASHION_MNIST = resolve(dirname(fileURLToPath(import.meta.url)), '../../data/fashion-mnist');

/** One split of Fashion-MNIST in memory: N grey 28×28 images and their labels. */
export interface FashionSplit {
  /** N × rows × cols uint8 pixels, row-major. */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  rows: number;
  cols: number;
}

/** Both splits and where they came from. */
export interface FashionMnist {
  train: FashionSplit;
  test: FashionSplit;
  /** The directory read. */
  dir: string;
  /** 'embedded' (the shipped subset), 'debian' (the full set) or 'dir' (--data). */
  kind: 'embedded' | 'debian' | 'dir';
}

/**
 * The data directory to use: `--data DIR` when given (`embedded` names the
 * shipped subset, `debian` the full set), else Debian's full set when
 * installed, else the embedded subset.
 */
export function resolveDataDir(explicit?: string): { dir: string; kind: FashionMnist['kind'] } {
  if (explicit === 'embedded' || (explicit && resolve(explicit) === EMBEDDED_FASHION_MNIST)) return { dir: EMBEDDED_FASHION_MNIST, kind: 'embedded' };
  if (explicit === 'debian') return { dir: DEBIAN_FASHION_MNIST, kind: 'debian' };
  if (explicit) return { dir: resolve(explicit), kind: 'dir' };
  if (existsSync(join(DEBIAN_FASHION_MNIST, 't10k-labels-idx1-ubyte.gz'))) return { dir: DEBIAN_FASHION_MNIST, kind: 'debian' };
  return { dir: EMBEDDED_FASHION_MNIST, kind: 'embedded' };
}

/** The first of `names` that exists in `dir` (the .gz files, or the same files unzipped). */
function findFile(dir: string, base: string): string {
  for (const name of [`${base}.gz`, base]) {
    const path = join(dir, name);
    if (existsSync(path)) return path;
  }
  throw new FormatError('loadFashionMnist', `${dir} has no ${base}.gz (nor ${base}): expected the four Fashion-MNIST idx files`);
}

async function loadSplit(dir: string, split: 'train' | 't10k'): Promise<FashionSplit> {
  const imgPath = findFile(dir, `${split}-images-idx3-ubyte`);
  const labPath = findFile(dir, `${split}-labels-idx1-ubyte`);
  const img = parseIdx(new Uint8Array(await readFile(imgPath)), imgPath);
  const lab = parseIdx(new Uint8Array(await readFile(labPath)), labPath);
  if (img.shape.length !== 3) throw new FormatError('loadFashionMnist', `${imgPath}: expected images [N, rows, cols], got [${img.shape.join(', ')}]`);
  if (lab.shape.length !== 1 || lab.shape[0] !== img.shape[0]) {
    throw new FormatError('loadFashionMnist', `${labPath}: expected ${img.shape[0]} labels, got shape [${lab.shape.join(', ')}]`);
  }
  const bad = lab.data.findIndex((v) => v >= FASHION_CLASSES.length);
  if (bad >= 0) throw new FormatError('loadFashionMnist', `${labPath}: label ${lab.data[bad]} of item ${bad} is not a class in [0, 10)`);
  return { images: img.data, labels: lab.data, count: img.shape[0]!, rows: img.shape[1]!, cols: img.shape[2]! };
}

/** Reads Fashion-MNIST's training and test splits from `dir` (see {@link resolveDataDir}). */
export async function loadFashionMnist(dir: string, kind: FashionMnist['kind'] = 'dir'): Promise<FashionMnist> {
  const [train, test] = await Promise.all([loadSplit(dir, 'train'), loadSplit(dir, 't10k')]);
  return { train, test, dir, kind };
}

/**
 * Indices of the first `perClass` items of each class in `classes`, in file
 * order, when `perClass` is a number; every item of those classes otherwise.
 * Deterministic, so a run's training and test sets are reproducible.
 */
export function selectByClass(split: FashionSplit, classes: readonly number[], perClass?: number): number[] {
  const want = new Map(classes.map((c) => [c, 0]));
  const out: number[] = [];
  for (let i = 0; i < split.count; i++) {
    const c = split.labels[i]!;
    const n = want.get(c);
    if (n === undefined || (perClass !== undefined && n >= perClass)) continue;
    want.set(c, n + 1);
    out.push(i);
  }
  const short = [...want].filter(([, n]) => perClass !== undefined && n < perClass);
  if (short.length) {
    throw new FormatError('selectByClass', `asked for ${perClass} images per class, but the split has only ${short.map(([c, n]) => `${n} of class ${c}`).join(', ')}`);
  }
  return out;
}
