/**
 * Fine-tunes the head of a ResNet on a handful of labelled images: the
 * backbone is frozen (BatchNorm in eval, as a frozen layer should be), its
 * pooled features are computed once, and a new `fc` with one output per
 * label is trained with SGD on them. With a frozen backbone and no
 * augmentation that is exactly training `fc` inside the full model, and it
 * is what an inference-only runtime cannot do.
 */
import { fromArray, manualSeed, tensor, tidy, type Tensor } from '@kiln/core';
import { CrossEntropyLoss, Linear, optim } from '@kiln/nn';
import { extractFeatures, type ImageTensor, type ResNet } from '@kiln/resnet';

/** Options of {@link fineTuneHead}. */
export interface FineTuneOptions {
  /** SGD steps over the whole set (default 20). */
  steps?: number;
  /** Learning rate (default 0.001: pooled ResNet features have norms of tens, so 0.01 overshoots in one step). */
  lr?: number;
  /** SGD momentum (default 0.9). */
  momentum?: number;
  /** Seed of the new head's initial weights (default 0), so a run is reproducible. */
  seed?: number;
  /** Called after each step with its loss; awaited, so a page can repaint. */
  onStep?: (step: number, loss: number) => void | Promise<void>;
}

/** What {@link fineTuneHead} did. */
export interface FineTuneResult {
  /** The loss before each step's update. */
  losses: number[];
  /** The new class names, in the order of the head's outputs. */
  labels: string[];
  ms: number;
}

/**
 * Replaces `model.fc` by a new head for the distinct `labels` (first-seen
 * order) and trains it on `images` for `steps` SGD steps on `device`. The
 * model ends in eval mode with only the new head trainable.
 */
export async function fineTuneHead(model: ResNet, images: readonly ImageTensor[], labels: readonly string[], device: string, opts: FineTuneOptions = {}): Promise<FineTuneResult> {
  if (images.length === 0 || images.length !== labels.length) throw new Error(`fineTuneHead: expected one label per image, got ${images.length} images and ${labels.length} labels`);
  const start = performance.now();
  const classes = [...new Set(labels)];
  const targets = tensor(labels.map((l) => classes.indexOf(l)), { dtype: 'int32', device });
  const batch = new Float32Array(images.length * 3 * 224 * 224);
  images.forEach((img, i) => batch.set(img.data, i * img.data.length));
  const x = fromArray(batch, [images.length, ...images[0]!.shape], { device });
  const features = extractFeatures(model, x);
  x.dispose();

  manualSeed(opts.seed ?? 0);
  const old = model.fc;
  model.fc = new Linear(512, classes.length, { device });
  old.dispose();
  model.requiresGrad_(false);
  model.fc.requiresGrad_(true);
  model.eval();
  const opt = new optim.SGD(model.fc.parameters(), { lr: opts.lr ?? 1e-3, momentum: opts.momentum ?? 0.9 });
  const lossFn = new CrossEntropyLoss();
  const losses: number[] = [];
  try {
    for (let step = 0; step < (opts.steps ?? 20); step++) {
      const loss = tidy(() => {
        opt.zeroGrad();
        const l = lossFn.call(model.fc.call(features) as Tensor, targets);
        l.backward();
        opt.step();
        return l;
      });
      losses.push(await loss.item());
      loss.dispose();
      await opts.onStep?.(step, losses[step]!);
    }
  } finally {
    opt.zeroGrad();
    opt.dispose();
    features.dispose();
    targets.dispose();
  }
  return { losses, labels: classes, ms: performance.now() - start };
}
