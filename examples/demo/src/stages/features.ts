import { cat, fromArray, noGrad, tidy, type Tensor } from '@kiln/core';
import { CrossEntropyLoss, Linear, optim } from '@kiln/nn';
import { extractFeatures, type ResNet } from '@kiln/resnet';
import type { DemoContext } from '../context.js';
import { evalBatches, evalTensors, type LabelledSet } from '../data/images.js';
import type { DemoResult } from '../results.js';
import { disposing, pct } from '../train-loop.js';

/** Pooled 512-d features of every item of a set ([N, 512] on the device), batch by batch. */
export async function setFeatures(model: ResNet, set: LabelledSet, values: Float32Array, ctx: DemoContext): Promise<Tensor> {
  const parts: Tensor[] = [];
  const bar = ctx.io.bar('features', set.indices.length, 'images');
  for (const b of disposing(evalBatches(set, values, 64, ctx.pipe.size, ctx.device))) {
    const f = extractFeatures(model, b.images);
    await f.toArray(); // one batch at a time: bounded memory, honest progress
    parts.push(f);
    bar.update(b.items.at(-1)! + 1);
  }
  bar.stop();
  const all = cat(parts, 0);
  for (const p of parts) p.dispose();
  return all;
}

/**
 * The second vector fused with the visual features: a 56-d shape
 * descriptor of the raw 28×28 image (mean intensity of each row and each
 * column, in [0, 1]), standing in for the metadata or text embedding a
 * product catalogue would have.
 */
export function shapeDescriptor(set: LabelledSet): Float32Array {
  const { rows, cols, images } = set.split;
  const d = rows + cols;
  const out = new Float32Array(set.indices.length * d);
  set.indices.forEach((i, k) => {
    const img = images.subarray(i * rows * cols, (i + 1) * rows * cols);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
      const v = img[r * cols + c]! / 255;
      out[k * d + r] += v / cols;
      out[k * d + rows + c] += v / rows;
    }
  });
  return out;
}

/** Row-normalises [N, D] to unit length (cosine similarity becomes a dot product). */
const unitRows = (x: Tensor) => tidy(() => x.div(x.mul(x).sum(1, true).sqrt().add(1e-12)));

/** Standardises columns with the training rows' mean and std, so concatenated blocks weigh alike. */
function standardise(train: Tensor, test: Tensor): [Tensor, Tensor] {
  return tidy(() => {
    const mean = train.mean(0, true);
    const std = train.sub(mean).square().mean(0, true).sqrt().add(1e-6);
    return [train.sub(mean).div(std), test.sub(mean).div(std)];
  });
}

/** Trains a linear classifier full-batch with Adam and returns its test top-1. */
async function linearProbe(trainX: Tensor, trainY: Tensor, testX: Tensor, testY: Int32Array, classes: number, device: string): Promise<number> {
  const head = new Linear(trainX.shape[1]!, classes, { device });
  const opt = new optim.Adam(head.parameters(), { lr: 0.01, weightDecay: 1e-4 });
  const lossFn = new CrossEntropyLoss();
  for (let step = 0; step < 150; step++) {
    tidy(() => {
      opt.zeroGrad();
      (lossFn.call(head.call(trainX) as Tensor, trainY) as Tensor).backward();
      opt.step();
    });
  }
  const pred = noGrad(() => tidy(() => (head.call(testX) as Tensor).argmax(1)));
  const p = await pred.toArray();
  pred.dispose();
  opt.dispose();
  head.dispose();
  let right = 0;
  testY.forEach((y, i) => (right += Number(p[i]) === y ? 1 : 0));
  return right / testY.length;
}

/**
 * Stage 3: the fine-tuned backbone's 512-d features of the test split;
 * nearest-neighbour retrieval against the training images (recall@1: the
 * most similar training image, by cosine, has the query's class); and
 * fusion of the visual features with a second vector (concatenation, then
 * one linear layer), against each alone.
 */
export async function featuresStage(ctx: DemoContext, model: ResNet): Promise<DemoResult['features']> {
  const { target, device, io } = ctx;
  // The linear heads' initialisation: seeded here, so a rerun that loads the
  // cached runs (which draw nothing) gives the same heads as a first run.
  ctx.rng(10);
  io.log(`[3/7] features: 512-d pooled features of ${target.test.set.indices.length} test and ${target.train.indices.length} training images`);
  const trainValues = evalTensors(target.train, ctx.pipe);
  const gallery = await setFeatures(model, target.train, trainValues, ctx);
  const queries = await setFeatures(model, target.test.set, target.test.values, ctx);

  const nn = tidy(() => unitRows(queries).matmul(unitRows(gallery).transpose(0, 1)).argmax(1));
  const nearest = await nn.toArray();
  nn.dispose();
  let hits = 0;
  target.test.set.labels.forEach((y, q) => (hits += target.train.labels[Number(nearest[q])] === y ? 1 : 0));
  const recallAt1 = hits / target.test.set.labels.length;

  const descTrain = fromArray(shapeDescriptor(target.train), [target.train.indices.length, 56], { device });
  const descTest = fromArray(shapeDescriptor(target.test.set), [target.test.set.indices.length, 56], { device });
  const [vTr, vTe] = standardise(gallery, queries);
  const [dTr, dTe] = standardise(descTrain, descTest);
  const fTr = cat([vTr, dTr], 1);
  const fTe = cat([vTe, dTe], 1);
  const y = fromArray(target.train.labels, [target.train.labels.length], { dtype: 'int32', device });
  const classes = target.classes.length;
  const fusion = {
    visual: await linearProbe(vTr, y, vTe, target.test.set.labels, classes, device),
    descriptor: await linearProbe(dTr, y, dTe, target.test.set.labels, classes, device),
    fused: await linearProbe(fTr, y, fTe, target.test.set.labels, classes, device),
    descriptorName: '56-d row/column intensity profile',
  };
  for (const t of [gallery, queries, descTrain, descTest, vTr, vTe, dTr, dTe, fTr, fTe, y]) t.dispose();
  io.log(`  nearest-neighbour recall@1 ${pct(recallAt1)}; linear head on visual ${pct(fusion.visual)}, on the profile ${pct(fusion.descriptor)}, fused ${pct(fusion.fused)}`);
  return { recallAt1, gallery: target.train.indices.length, queries: target.test.set.indices.length, fusion };
}
