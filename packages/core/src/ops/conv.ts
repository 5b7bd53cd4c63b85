import { Tensor } from '../tensor.js';
import { needsAutocast, withAutocast } from '../autocast/autocast.js';
import { isFloating } from '../dtype.js';
import type { Conv2dParams } from '../backend.js';
import { DTypeError, KilnError, ShapeError, fmtShape } from '../errors.js';
import { commonBackend, empty, checkAlive } from './util.js';
import { finish, needsGrad } from '../autograd/record.js';
import { tidy } from '../memory.js';
import { pad } from './indexing.js';

/** An int or a (height, width) pair, as PyTorch's _pair. */
export type Pair = number | readonly [number, number];

/** Options of conv2d, as torch.nn.functional.conv2d. */
export interface Conv2dOptions {
  /** Step of the kernel window. Default 1. */
  stride?: Pair;
  /** Ints, or 'valid' (none) / 'same' (output size = input size; stride 1 only). */
  padding?: Pair | 'same' | 'valid';
  /** Spacing between kernel taps. Default 1. */
  dilation?: Pair;
  /** Channel groups. Default 1. */
  groups?: number;
}

/** Epilogue fused into the convolution (inference fast path). */
export interface ConvEpilogue {
  /** Added to the output before the ReLU (the ResNet shortcut), same shape as the output. */
  residual?: Tensor;
  /** Applies max(0, .) last. */
  relu?: boolean;
}

export function pair(op: string, name: string, v: Pair): [number, number] {
  const p: [number, number] = typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (!p.every((x) => Number.isInteger(x))) throw new KilnError(op, `${name} must be an int or a pair of ints, got ${JSON.stringify(v)}`);
  return p;
}

function convOutSize(inSize: number, k: number, s: number, p: number, d: number): number {
  return Math.floor((inSize + 2 * p - d * (k - 1) - 1) / s) + 1;
}

/**
 * 2-D convolution over NCHW input (3-D input is an unbatched CHW image).
 * weight [O, C/groups, kH, kW]; bias [O]. Gradients for input, weight and bias.
 */
export function conv2d(input: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}, epilogue?: ConvEpilogue): Tensor {
  if (needsAutocast('conv2d', [input, weight, bias, opts, epilogue])) return withAutocast('conv2d', [input, weight, bias, opts, epilogue], conv2d);
  checkAlive('conv2d', input, weight, bias, epilogue?.residual);
  if (input.dim() === 3) return tidy(() => conv2d(input.unsqueeze(0), weight, bias, opts, epilogue).squeeze(0));
  if (input.dim() !== 4) throw new ShapeError('conv2d', `expected 3D (unbatched) or 4D (batched) input, but got input of size ${fmtShape(input.shape)}`);
  if (weight.dim() !== 4) throw new ShapeError('conv2d', `expected a 4-D weight [out_channels, in_channels/groups, kH, kW], got ${fmtShape(weight.shape)}`);
  if (!isFloating(input.dtype) || input.dtype !== weight.dtype) throw new DTypeError('conv2d', `expected float input and weight of one dtype (float32, or float16 as autocast gives), got ${input.dtype} and ${weight.dtype}`);
  const groups = opts.groups ?? 1;
  const [N, C, H, W] = input.shape as [number, number, number, number];
  const [O, Cg, kH, kW] = weight.shape as [number, number, number, number];
  if (!Number.isInteger(groups) || groups < 1) throw new KilnError('conv2d', `groups must be a positive integer, got ${groups}`);
  if (Cg * groups !== C) {
    throw new ShapeError('conv2d', `given groups=${groups}, weight of size ${fmtShape(weight.shape)}, expected input${fmtShape(input.shape)} to have ${Cg * groups} channels, but got ${C} channels instead`);
  }
  if (O % groups !== 0) throw new ShapeError('conv2d', `out_channels (${O}) must be divisible by groups (${groups})`);
  if (bias && (bias.dim() !== 1 || bias.shape[0] !== O)) throw new ShapeError('conv2d', `expected bias of shape [${O}], got ${fmtShape(bias.shape)}`);
  const stride = pair('conv2d', 'stride', opts.stride ?? 1);
  const dilation = pair('conv2d', 'dilation', opts.dilation ?? 1);
  if (stride.some((s) => s < 1) || dilation.some((d) => d < 1)) throw new KilnError('conv2d', `stride and dilation must be positive, got stride=${fmtShape(stride)}, dilation=${fmtShape(dilation)}`);
  let padding: [number, number];
  if (opts.padding === 'same') {
    if (stride.some((s) => s !== 1)) throw new KilnError('conv2d', "padding='same' is not supported for strided convolutions");
    const total = [dilation[0] * (kH - 1), dilation[1] * (kW - 1)];
    if (total.some((t) => t % 2 !== 0)) {
      // Asymmetric 'same' padding: PyTorch puts the extra cell at the end.
      return tidy(() => {
        const padded = pad(input, [Math.floor(total[1]! / 2), Math.ceil(total[1]! / 2), Math.floor(total[0]! / 2), Math.ceil(total[0]! / 2)]);
        return conv2d(padded, weight, bias, { ...opts, padding: 0 }, epilogue);
      });
    }
    padding = [total[0]! / 2, total[1]! / 2];
  } else {
    padding = opts.padding === 'valid' || opts.padding === undefined ? [0, 0] : pair('conv2d', 'padding', opts.padding);
  }
  if (padding.some((p) => p < 0)) throw new KilnError('conv2d', `negative padding is not supported, got ${fmtShape(padding)}`);
  const oH = convOutSize(H, kH, stride[0], padding[0], dilation[0]);
  const oW = convOutSize(W, kW, stride[1], padding[1], dilation[1]);
  if (oH < 1 || oW < 1) {
    throw new ShapeError('conv2d', `calculated output size (${oH}x${oW}) is too small: input ${H}x${W} (padded ${H + 2 * padding[0]}x${W + 2 * padding[1]}) is smaller than the dilated kernel ${dilation[0] * (kH - 1) + 1}x${dilation[1] * (kW - 1) + 1}`);
  }
  const p: Conv2dParams = { stride, padding, dilation, groups };
  const backend = commonBackend('conv2d', [input, weight, bias, epilogue?.residual]);
  // A fused epilogue is only taken when no gradient is needed; otherwise compose it.
  if (epilogue && (epilogue.residual || epilogue.relu) && needsGrad(input, weight, bias, epilogue.residual)) {
    return tidy(() => {
      let y = conv2d(input, weight, bias, opts);
      if (epilogue.residual) y = y.add(epilogue.residual);
      return epilogue.relu ? y.relu() : y;
    });
  }
  const out = empty([N, O, oH, oW], input.dtype, backend);
  if (epilogue?.residual && epilogue.residual.shape.join() !== out.shape.join()) {
    throw new ShapeError('conv2d', `residual must have the output's shape ${fmtShape(out.shape)}, got ${fmtShape(epilogue.residual.shape)}`);
  }
  if (out.numel() > 0) {
    backend.conv2d(input._view(), weight._view(), out._view(), p, {
      bias: bias?._view(),
      residual: epilogue?.residual?._view(),
      relu: epilogue?.relu,
    });
  }
  // Save only what the needed gradients read: frozen layers keep no activations.
  const needDx = input.requiresGrad;
  const needDw = weight.requiresGrad;
  // Read now, not in backward: a bias that is a view disposed by tidy() no longer reports requiresGrad then.
  const needDb = bias?.requiresGrad ?? false;
  const saved = [...(needDw ? [input] : []), ...(needDx ? [weight] : [])];
  // The fused residual and ReLU are part of the traced op (an exporter emits them as Add and Relu).
  const traced = epilogue?.residual || epilogue?.relu ? { ...p, relu: epilogue.relu ?? false } : { ...p };
  return finish(out, 'conv2d', [input, weight, bias, epilogue?.residual ?? null], traced, saved, (g, s) => {
    const x = needDw ? s[0] : null;
    const w = needDx ? s[needDw ? 1 : 0] : null;
    const gc = g.contiguous();
    let dx: Tensor | null = null;
    let dw: Tensor | null = null;
    if (needDx) {
      dx = empty(input.shape, input.dtype, backend);
      if (dx.numel() > 0) backend.conv2dBackwardInput(gc._view(), w!._view(), dx._view(), p);
    }
    if (needDw) {
      dw = empty(weight.shape, weight.dtype, backend);
      backend.conv2dBackwardWeight(x!._view(), gc._view(), dw._view(), p);
    }
    const db = needDb ? g.sum([0, 2, 3]) : null;
    return [dx, dw, db, null];
  });
}
