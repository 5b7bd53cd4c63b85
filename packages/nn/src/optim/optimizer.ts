import { KilnError, keep, noGrad, tidy, type Tensor } from '@kiln/core';
import { isTensor } from '../parameter.js';
import { zeroGrads } from '../module.js';

/** Hyper-parameters a group may carry (each optimizer reads its own). */
export interface GroupOptions {
  /** Learning rate. */
  lr?: number;
  /** SGD momentum factor. Default 0. */
  momentum?: number;
  /** SGD dampening of the momentum buffer. Default 0. */
  dampening?: number;
  /** L2 penalty (AdamW: decoupled weight decay). Default 0 (AdamW 0.01). */
  weightDecay?: number;
  /** SGD Nesterov momentum. Default false. */
  nesterov?: boolean;
  /** Ascend the objective instead of descending. Default false. */
  maximize?: boolean;
  /** Adam's running-average coefficients. Default [0.9, 0.999]. */
  betas?: [number, number];
  /** Adam's denominator term. Default 1e-8. */
  eps?: number;
  /** Adam's AMSGrad variant. Default false. */
  amsgrad?: boolean;
  /** Set by the first LR scheduler: the lr it started from. */
  initialLr?: number;
  /** Other options, kept as given (PyTorch keeps unknown group keys too). */
  [option: string]: unknown;
}

/** A parameter group as passed in: params plus overrides of the optimizer's defaults. */
export interface ParamGroupInput extends GroupOptions {
  /** The parameters this group updates. */
  params: Iterable<Tensor>;
}

/** A parameter group as the optimizer holds it: every option filled in. */
export interface ParamGroup extends GroupOptions {
  /** The parameters this group updates. */
  params: Tensor[];
  /** The group's current learning rate (schedulers change it). */
  lr: number;
}

/** Per-parameter state: tensors (momentum_buffer, exp_avg, ...) and numbers (step), under PyTorch's names. */
export type ParamState = Record<string, Tensor | number>;

/**
 * An optimizer's state in PyTorch's layout: `state` keyed by parameter index
 * (counting through the groups in order), `param_groups` with `params`
 * index lists and option names in PyTorch's snake_case.
 */
export interface OptimizerStateDict {
  /** Per-parameter state, keyed by the parameter's index across groups. */
  state: Record<number, ParamState>;
  /** Each group's options, with `params` as indices. */
  param_groups: Record<string, unknown>[];
}

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const camel = (k: string) => k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/**
 * Base of the optimizers (torch.optim.Optimizer): parameter groups with
 * per-group options, per-parameter state, zeroGrad, stateDict. Subclasses
 * implement `updateGroup(group)`, run under noGrad and tidy so an update
 * allocates nothing that outlives it.
 */
export abstract class Optimizer {
  /** The options groups fall back to. */
  readonly defaults: GroupOptions;
  /** The parameter groups, in the order given. */
  readonly paramGroups: ParamGroup[] = [];
  /** Per-parameter state, created on a parameter's first update. */
  readonly state = new Map<Tensor, ParamState>();

  /** `params` is a list of tensors (one group) or of groups with their own options. */
  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInput>, defaults: GroupOptions) {
    this.defaults = defaults;
    const list = [...params] as (Tensor | ParamGroupInput)[];
    if (list.length === 0) throw new KilnError(this.constructor.name, 'optimizer got an empty parameter list');
    const groups: ParamGroupInput[] = isTensor(list[0]) ? [{ params: list as Tensor[] }] : (list as ParamGroupInput[]);
    for (const g of groups) this.addParamGroup(g);
  }

  /** Adds a group (e.g. newly unfrozen layers with their own lr); missing options come from the defaults. */
  addParamGroup(group: ParamGroupInput): void {
    const name = this.constructor.name;
    if (typeof group !== 'object' || group === null || !('params' in group)) throw new KilnError('addParamGroup', 'param group must be an object with a params list');
    const params = isTensor(group.params) ? [group.params as unknown as Tensor] : [...group.params];
    for (const p of params) {
      if (!isTensor(p)) throw new KilnError(name, `optimizer can only optimize Tensors, but one of the params is ${typeof p}`);
      if (!p.isLeaf) throw new KilnError(name, "can't optimize a non-leaf Tensor");
    }
    if (new Set(params).size !== params.length) {
      console.warn(`[kiln] ${name}: a parameter group contains duplicate parameters; this will be an error in a future version (as in PyTorch)`);
    }
    const full = { ...this.defaults, ...group, params } as ParamGroup;
    if (full.lr === undefined) throw new KilnError(name, `parameter group didn't specify a value of required optimization parameter lr`);
    const seen = new Set(this.paramGroups.flatMap((g) => g.params));
    if (params.some((p) => seen.has(p))) throw new KilnError('addParamGroup', 'some parameters appear in more than one parameter group');
    this.paramGroups.push(full);
  }

  /** Clears the gradients of every parameter: dispose and set to null (default), or zero in place. */
  zeroGrad(opts: { setToNone?: boolean } = {}): void {
    zeroGrads(this.paramGroups.flatMap((g) => g.params), opts.setToNone ?? true);
  }

  /**
   * One update of every parameter that has a gradient, in place on its
   * device (no readback). `closure` recomputes the loss, as in PyTorch.
   */
  step<T = void>(closure?: () => T): T | undefined {
    const loss = closure ? closure() : undefined;
    noGrad(() =>
      tidy(() => {
        for (const group of this.paramGroups) this.updateGroup(group);
      }),
    );
    return loss;
  }

  /**
   * Frees the per-parameter state tensors (momentum buffers, Adam moments)
   * now instead of when the garbage collector finds them; the next step
   * starts from fresh state, as after construction.
   */
  dispose(): void {
    for (const s of this.state.values()) {
      for (const v of Object.values(s)) if (v && typeof v === 'object' && (v as Tensor)._isKilnTensor) (v as Tensor).dispose();
    }
    this.state.clear();
  }

  /** Updates one group's parameters (inside noGrad and tidy: keep() new state tensors). */
  protected abstract updateGroup(group: ParamGroup): void;

  /** A parameter's state, created empty on first use. */
  protected stateOf(p: Tensor): ParamState {
    let s = this.state.get(p);
    if (!s) this.state.set(p, (s = {}));
    return s;
  }

  /** Keeps a state tensor alive past the step's tidy. */
  protected keepState(t: Tensor): Tensor {
    return keep(t);
  }

  /** State and groups in PyTorch's layout (state tensors are the live ones, not copies). */
  stateDict(): OptimizerStateDict {
    const index = new Map<Tensor, number>();
    const param_groups = this.paramGroups.map((g) => {
      const packed: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(g)) if (k !== 'params') packed[snake(k)] = Array.isArray(v) ? [...v] : v;
      packed.params = g.params.map((p) => {
        if (!index.has(p)) index.set(p, index.size);
        return index.get(p)!;
      });
      return packed;
    });
    const state: Record<number, ParamState> = {};
    for (const [p, s] of this.state) {
      const i = index.get(p);
      if (i !== undefined) state[i] = { ...s };
    }
    return { state, param_groups };
  }

  /**
   * Loads a state dict from {@link stateDict} (or PyTorch's layout):
   * group options are replaced, state tensors copied onto each parameter's device.
   */
  loadStateDict(sd: OptimizerStateDict): void {
    const name = this.constructor.name;
    const saved = sd.param_groups;
    if (saved.length !== this.paramGroups.length) throw new KilnError(name, 'loaded state dict has a different number of parameter groups');
    saved.forEach((g, i) => {
      if ((g.params as number[]).length !== this.paramGroups[i]!.params.length) {
        throw new KilnError(name, "loaded state dict contains a parameter group that doesn't match the size of optimizer's group");
      }
    });
    const byId = new Map<number, Tensor>();
    saved.forEach((g, i) => (g.params as number[]).forEach((id, j) => byId.set(id, this.paramGroups[i]!.params[j]!)));
    for (const s of this.state.values()) for (const v of Object.values(s)) if (isTensor(v)) v.dispose();
    this.state.clear();
    for (const [id, s] of Object.entries(sd.state)) {
      const p = byId.get(Number(id));
      if (!p) continue;
      const copy: ParamState = {};
      for (const [k, v] of Object.entries(s)) copy[k] = isTensor(v) ? noGrad(() => (v.device === p.device ? v.clone() : v.to(p.device))) : v;
      this.state.set(p, copy);
    }
    saved.forEach((g, i) => {
      const group = this.paramGroups[i]!;
      for (const [k, v] of Object.entries(g)) if (k !== 'params') group[camel(k)] = Array.isArray(v) ? [...v] : v;
    });
  }
}

