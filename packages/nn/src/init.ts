// torch.nn.init: in-place initialisers. Numbers come from Kiln's seeded
// generator on the host (the same on every backend, not torch's stream) and
// are copied into the tensor without autograd.
import { KilnError, defaultGenerator, fromArray, noGrad, type Generator, type Tensor } from '@kiln/core';

/** Nonlinearities calculateGain knows, as torch.nn.init.calculate_gain. */
export type Nonlinearity =
  | 'linear' | 'conv1d' | 'conv2d' | 'conv3d' | 'conv_transpose1d' | 'conv_transpose2d' | 'conv_transpose3d'
  | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu' | 'selu';

/** Which fan kaiming init preserves: 'fan_in' (forward pass) or 'fan_out' (backward pass). */
export type FanMode = 'fan_in' | 'fan_out';

let skipping = 0;

/**
 * Builds modules without drawing their initial weights (torch.nn.utils.
 * skip_init in spirit): inside `fn` the random initialisers leave tensors
 * as allocated. For models whose weights are loaded right after — a
 * ResNet18's 11.7M host draws cost seconds.
 */
export function skipInit<T>(fn: () => T): T {
  skipping++;
  try {
    return fn();
  } finally {
    skipping--;
  }
}

function fillFrom(op: string, t: Tensor, draw: () => number): Tensor {
  if (t.dtype !== 'float32') throw new KilnError(op, `expected a float32 tensor, got ${t.dtype}`);
  if (skipping > 0) return t;
  const data = new Float32Array(t.numel());
  for (let i = 0; i < data.length; i++) data[i] = draw();
  noGrad(() => {
    const src = fromArray(data, t.shape, { device: t.device });
    try {
      t.copy_(src);
    } finally {
      src.dispose();
    }
  });
  return t;
}

/** The recommended gain for a nonlinearity (`param` is leaky_relu's negative slope, default 0.01). */
export function calculateGain(nonlinearity: Nonlinearity, param?: number | null): number {
  switch (nonlinearity) {
    case 'linear': case 'conv1d': case 'conv2d': case 'conv3d':
    case 'conv_transpose1d': case 'conv_transpose2d': case 'conv_transpose3d': case 'sigmoid':
      return 1;
    case 'tanh':
      return 5.0 / 3;
    case 'relu':
      return Math.sqrt(2.0);
    case 'leaky_relu': {
      const slope = param ?? 0.01;
      if (typeof slope !== 'number' || Number.isNaN(slope)) throw new KilnError('calculateGain', `negative_slope ${slope} not a valid number`);
      return Math.sqrt(2.0 / (1 + slope ** 2));
    }
    case 'selu':
      return 3.0 / 4;
    default:
      throw new KilnError('calculateGain', `Unsupported nonlinearity ${String(nonlinearity)}`);
  }
}

/** Fan-in and fan-out of a weight: [out, in, ...kernel] gives in*k and out*k. */
export function _calculateFanInAndFanOut(t: Tensor | readonly number[]): [number, number] {
  const shape = Array.isArray(t) ? (t as readonly number[]) : (t as Tensor).shape;
  if (shape.length < 2) throw new KilnError('init', 'Fan in and fan out can not be computed for tensor with fewer than 2 dimensions');
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return [shape[1]! * receptive, shape[0]! * receptive];
}

function fan(t: Tensor, mode: FanMode): number {
  if (mode !== 'fan_in' && mode !== 'fan_out') throw new KilnError('init', `Mode ${String(mode)} not supported, please use one of fan_in, fan_out`);
  const [fanIn, fanOut] = _calculateFanInAndFanOut(t);
  return mode === 'fan_in' ? fanIn : fanOut;
}

/** Fills with U(a, b). */
export function uniform_(t: Tensor, a = 0, b = 1, generator: Generator = defaultGenerator): Tensor {
  return fillFrom('uniform_', t, () => a + (b - a) * generator.random());
}

/** Fills with N(mean, std²). */
export function normal_(t: Tensor, mean = 0, std = 1, generator: Generator = defaultGenerator): Tensor {
  return fillFrom('normal_', t, () => mean + std * generator.normal());
}

/** Fills with `value`. */
export function constant_(t: Tensor, value: number): Tensor {
  noGrad(() => t.fill_(value));
  return t;
}

/** Fills with zeros. */
export function zeros_(t: Tensor): Tensor {
  return constant_(t, 0);
}

/** Fills with ones. */
export function ones_(t: Tensor): Tensor {
  return constant_(t, 1);
}

/** Options of the kaiming initialisers (PyTorch's defaults: a=0, fan_in, leaky_relu). */
export interface KaimingOptions {
  /** Negative slope of the rectifier after this layer (leaky_relu only). */
  a?: number;
  /** Which fan the variance is preserved for. Default 'fan_in'. */
  mode?: FanMode;
  /** The activation the gain is computed for. Default 'leaky_relu'. */
  nonlinearity?: Nonlinearity;
  /** The generator to draw from. Default: the global one. */
  generator?: Generator;
}

/** He et al. uniform: U(-bound, bound), bound = gain * sqrt(3 / fan). */
export function kaimingUniform_(t: Tensor, opts: KaimingOptions = {}): Tensor {
  if (t.numel() === 0) return t;
  const gain = calculateGain(opts.nonlinearity ?? 'leaky_relu', opts.a ?? 0);
  const std = gain / Math.sqrt(fan(t, opts.mode ?? 'fan_in'));
  const bound = Math.sqrt(3.0) * std;
  return uniform_(t, -bound, bound, opts.generator);
}

/** He et al. normal: N(0, std²), std = gain / sqrt(fan). */
export function kaimingNormal_(t: Tensor, opts: KaimingOptions = {}): Tensor {
  if (t.numel() === 0) return t;
  const gain = calculateGain(opts.nonlinearity ?? 'leaky_relu', opts.a ?? 0);
  const std = gain / Math.sqrt(fan(t, opts.mode ?? 'fan_in'));
  return normal_(t, 0, std, opts.generator);
}

/** Glorot uniform: U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)). */
export function xavierUniform_(t: Tensor, gain = 1.0, generator?: Generator): Tensor {
  const [fanIn, fanOut] = _calculateFanInAndFanOut(t);
  const std = gain * Math.sqrt(2.0 / (fanIn + fanOut));
  const a = Math.sqrt(3.0) * std;
  return uniform_(t, -a, a, generator);
}

/** Glorot normal: N(0, std²), std = gain * sqrt(2 / (fan_in + fan_out)). */
export function xavierNormal_(t: Tensor, gain = 1.0, generator?: Generator): Tensor {
  const [fanIn, fanOut] = _calculateFanInAndFanOut(t);
  const std = gain * Math.sqrt(2.0 / (fanIn + fanOut));
  return normal_(t, 0, std, generator);
}

/**
 * The default initialisation of Linear and Conv2d in PyTorch
 * (reset_parameters): kaiming-uniform weight with a = √5, bias uniform in
 * ±1/√fan_in.
 */
export function defaultLayerInit_(weight: Tensor, bias: Tensor | null): void {
  kaimingUniform_(weight, { a: Math.sqrt(5) });
  if (bias) {
    const [fanIn] = _calculateFanInAndFanOut(weight);
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    uniform_(bias, -bound, bound);
  }
}
