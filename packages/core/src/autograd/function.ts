import type { Tensor } from '../tensor.js';
import { AutogradError, KilnError, ShapeError, fmtShape } from '../errors.js';
import { tidy } from '../memory.js';
import { isFloating } from '../dtype.js';
import { zeros } from '../ops/creation.js';
import { noGrad, isGradEnabled } from './grad-mode.js';
import { Node } from './node.js';
import { currentSavedHooks, edgeOf } from './record.js';
import { traceOp } from '../ops/trace.js';

const isTensor = (x: unknown): x is Tensor => (x as Tensor | null)?._isKilnTensor === true;

/**
 * What `forward` hands to `backward` (PyTorch's ctx): tensors saved with
 * {@link FunctionCtx.saveForBackward}, which inputs need a gradient, and
 * any other values the function stores on it as plain properties.
 */
export class FunctionCtx {
  /** For each argument of `apply`: true when it is a tensor that needs a gradient (torch's ctx.needs_input_grad). */
  readonly needsInputGrad: readonly boolean[];
  /** Free-form values forward leaves for backward (numbers, shapes, flags). */
  [key: string]: unknown;
  /** @internal */ _toSave: Tensor[] = [];
  /** @internal */ _saved: readonly Tensor[] | null = null;
  /** @internal */ _nonDifferentiable = new Set<Tensor>();

  /** @internal */
  constructor(needsInputGrad: boolean[]) {
    this.needsInputGrad = needsInputGrad;
  }

  /**
   * Keeps tensors (inputs, outputs or intermediates of forward) for
   * backward, version-checked like a built-in op's saved tensors: an
   * in-place change before backward is an error. Call it once, from forward.
   */
  saveForBackward(...tensors: Tensor[]): void {
    for (const t of this._toSave) t._releaseInternal();
    for (const t of tensors) if (!isTensor(t)) throw new KilnError('saveForBackward', `expected tensors, got ${typeof t}`);
    this._toSave = tensors.map((t) => t._savedAlias());
  }

  /** The tensors saved in forward, in order; only readable in backward (torch's ctx.saved_tensors). */
  get savedTensors(): readonly Tensor[] {
    if (!this._saved) throw new AutogradError('savedTensors', 'saved tensors are only available in backward');
    return this._saved;
  }

  /**
   * Declares outputs that have no gradient (indices, masks): they do not
   * require grad, and backward receives zeros for them.
   */
  markNonDifferentiable(...outputs: Tensor[]): void {
    for (const t of outputs) this._nonDifferentiable.add(t);
  }
}

/** A backward's answer: one gradient per argument of apply (null for none), or a lone tensor for a one-argument function. */
export type FunctionGrads = Tensor | null | readonly (Tensor | null)[];

/** The shape of a Function subclass's static forward. */
type ForwardOf = (ctx: FunctionCtx, ...args: never[]) => Tensor | readonly Tensor[];
type ArgsOf<F> = F extends (ctx: FunctionCtx, ...args: infer A) => unknown ? A : never;

/**
 * A differentiable operation defined by its forward and backward, as
 * torch.autograd.Function. Subclass it with static `forward` and
 * `backward` and call the static `apply`; it records one node on the same
 * tape the built-in ops use, so it composes with them, with hooks,
 * `retainGraph` and checkpointing.
 *
 * `forward` runs without recording (noGrad) and inside tidy(): tensors it
 * creates are freed when it returns unless returned or saved with
 * `ctx.saveForBackward`. `backward` receives one gradient per output
 * (zeros for outputs no gradient reached) and returns one gradient per
 * argument of `apply`, null where none is needed.
 *
 * @example
 * ```ts
 * class Exp extends Function {
 *   static forward(ctx: FunctionCtx, x: Tensor): Tensor {
 *     const y = x.exp();
 *     ctx.saveForBackward(y);
 *     return y;
 *   }
 *   static backward(ctx: FunctionCtx, g: Tensor): Tensor {
 *     const [y] = ctx.savedTensors;
 *     return g.mul(y!);
 *   }
 * }
 * const y = Exp.apply(x); // y.gradFn.name === 'ExpBackward'
 * ```
 */
export class Function {
  /** Computes the outputs from the arguments of apply; override it. */
  static forward(_ctx: FunctionCtx, ..._args: unknown[]): Tensor | readonly Tensor[] {
    throw new KilnError('Function.forward', `${this.name} must override the static forward(ctx, ...args)`);
  }

  /** Maps one gradient per output to one gradient per argument of apply; override it. */
  static backward(_ctx: FunctionCtx, ..._grads: Tensor[]): FunctionGrads {
    throw new KilnError('Function.backward', `${this.name} must override the static backward(ctx, ...grads)`);
  }

  /** Runs forward and records the function on the autograd tape; returns what forward returns. */
  static apply<C extends {
    /** The subclass's forward. */
    forward: ForwardOf;
  }>(this: C, ...args: ArgsOf<C['forward']>): ReturnType<C['forward']> {
    const cls = this as unknown as typeof Function;
    const name = `${cls.name}Backward`;
    for (const a of args as unknown[]) if (isTensor(a)) a._checkAlive(cls.name);
    const grad = isGradEnabled();
    const ctx = new FunctionCtx((args as unknown[]).map((a) => grad && isTensor(a) && a.requiresGrad));
    const raw = noGrad(() => tidy(() => cls.forward(ctx, ...(args as unknown[]))));
    const single = !Array.isArray(raw);
    const rawOuts: Tensor[] = single ? [raw as Tensor] : [...(raw as readonly Tensor[])];
    const outs = rawOuts.map((t, i) => {
      if (!isTensor(t)) throw new KilnError(cls.name, `forward must return a tensor or an array of tensors, output ${i} is ${typeof t}`);
      // An input returned as is becomes a new tensor object, so its own history stays intact.
      return (args as unknown[]).includes(t) ? t.alias() : t;
    });
    traceOp(cls.name, args as unknown[], {}, outs);
    const toSave = ctx._toSave;
    ctx._toSave = [];
    const differentiable = outs.map((t, i) => isFloating(t.dtype) && !ctx._nonDifferentiable.has(rawOuts[i]!));
    const result = (single ? outs[0] : outs) as ReturnType<C['forward']>;
    try {
      if (!ctx.needsInputGrad.some(Boolean) || !differentiable.some(Boolean)) return result;
      const inputs = args as unknown[];
      const metas = outs.map((t) => ({ shape: t.shape, dtype: t.dtype, device: t.device }));
      const run = (grads: readonly Tensor[], saved: readonly Tensor[]) => callBackward(cls, ctx, inputs, grads, saved);
      const edges = inputs.map(edgeOf);
      if (single) {
        outs[0]!._setGradFn(new Node(name, edges, (g, saved) => run([g], saved), toSave, currentSavedHooks()));
      } else {
        const parent = new Node(name, edges, () => {
          throw new AutogradError(name, 'a multi-output node is run through its outputs');
        }, toSave, currentSavedHooks());
        parent.multi = {
          arity: outs.length,
          zeros: (i) => zeros(metas[i]!.shape, { dtype: metas[i]!.dtype, device: metas[i]!.device }),
          backward: run,
        };
        outs.forEach((t, i) => {
          if (differentiable[i]) t._setGradFn(new Node(`${name}Output${i}`, [{ node: parent, slot: i }], (g) => [g], []));
        });
        // The outputs' nodes hold the parent now; it has no output tensor of its own.
        parent.unref();
      }
      return result;
    } finally {
      for (const t of toSave) t._releaseInternal();
    }
  }
}

function callBackward(cls: typeof Function, ctx: FunctionCtx, inputs: readonly unknown[], grads: readonly Tensor[], saved: readonly Tensor[]): (Tensor | null)[] {
  ctx._saved = saved;
  let r: FunctionGrads;
  try {
    r = cls.backward(ctx, ...grads);
  } finally {
    ctx._saved = null;
  }
  const list: (Tensor | null)[] = Array.isArray(r) ? [...(r as (Tensor | null)[])] : [r as Tensor | null];
  if (list.length !== inputs.length) {
    throw new AutogradError(`${cls.name}Backward`, `function ${cls.name}Backward returned an incorrect number of gradients (expected ${inputs.length}, got ${list.length})`);
  }
  return list.map((g, i) => {
    if (g === null || g === undefined) return null;
    const x = inputs[i];
    if (!isTensor(g)) throw new AutogradError(`${cls.name}Backward`, `gradient ${i} must be a tensor or null, got ${typeof g}`);
    if (!isTensor(x)) throw new AutogradError(`${cls.name}Backward`, `function ${cls.name}Backward returned a gradient different than null at position ${i}, but the corresponding forward input was not a tensor`);
    if (g.shape.join() !== x.shape.join()) {
      throw new ShapeError(`${cls.name}Backward`, `function ${cls.name}Backward returned an invalid gradient at index ${i} - got ${fmtShape(g.shape)} but expected shape compatible with ${fmtShape(x.shape)}`);
    }
    // A saved tensor handed back as a gradient is freed with the node: give the engine its own copy.
    return saved.includes(g) ? g.clone() : g;
  });
}
