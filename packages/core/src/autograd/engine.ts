import type { Tensor } from '../tensor.js';
import { Node } from './node.js';
import { noGrad } from './grad-mode.js';
import { withoutAutocast } from '../autocast/autocast.js';
import { keep, tidy } from '../memory.js';
import { AutogradError, ShapeError, fmtShape } from '../errors.js';
import { sameShape } from '../shape.js';

/** Every node reachable from `root`, ordered so a node comes before the nodes it feeds gradient to. */
function topoOrder(root: Node): Node[] {
  const order: Node[] = [];
  const visited = new Set<Node>();
  // Iterative DFS: deep graphs (ResNets, long loops) must not overflow the stack.
  const stack: [Node, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [node, i] = top;
    if (i < node.next.length) {
      top[1]++;
      const e = node.next[i];
      if (e && 'node' in e && !visited.has(e.node)) {
        visited.add(e.node);
        stack.push([e.node, 0]);
      }
    } else {
      stack.pop();
      order.push(node);
    }
  }
  return order.reverse();
}

function applyHooks(hooks: readonly ((g: Tensor) => Tensor | void)[], grad: Tensor, owned: (t: Tensor) => void): Tensor {
  let g = grad;
  for (const h of hooks) {
    const r = h(g);
    if (r) {
      if (!sameShape(r.shape, g.shape)) throw new ShapeError('registerHook', `hook returned a gradient of shape ${fmtShape(r.shape)}, expected ${fmtShape(g.shape)}`);
      owned(r);
      g = r;
    }
  }
  return g;
}

/**
 * Reverse-mode sweep from `root` with its gradient `grad`. Gradients of
 * leaves are accumulated into `.grad`; intermediate gradients are disposed
 * as soon as their consumer has run; saved tensors are freed unless
 * `retainGraph`.
 */
export function runBackward(root: Tensor, grad: Tensor, retainGraph: boolean): void {
  const rootNode = root.gradFn;
  if (!rootNode) {
    if (root.requiresGrad) accumulateLeaf(root, grad);
    return;
  }
  // Gradient formulas run in their tensors' dtypes: autocast is off in backward, as in PyTorch.
  withoutAutocast(() => noGrad(() => {
    const order = topoOrder(rootNode);
    // The gradient reaching each output slot of a node (one slot unless the node is a multi-output Function).
    const pending = new Map<Node, (Tensor | undefined)[]>();
    // Gradients the engine owns and may dispose once consumed.
    const owned = new Set<Tensor>();
    const own = (t: Tensor) => owned.add(t);
    const drop = (t: Tensor) => {
      if (owned.delete(t)) t.dispose();
    };
    // A leaf used several times gets the sum of its contributions, and its
    // hooks run once on that sum (as PyTorch's AccumulateGrad).
    const leafPending = new Map<Tensor, Tensor>();
    pending.set(rootNode, [grad]);
    try {
      for (const node of order) {
        const slots = pending.get(node);
        if (!slots) continue;
        pending.delete(node);
        let incoming: Tensor[];
        let grads: (Tensor | null)[];
        const multi = node.multi;
        if (multi) {
          // Outputs no gradient reached get zeros, as PyTorch materialises them for a Function.
          incoming = Array.from({ length: multi.arity }, (_, i) => {
            const given = slots[i];
            if (given) return given;
            const z = multi.zeros(i);
            own(z);
            return z;
          });
          const saved = node.saved();
          grads = tidy(() => multi.backward(incoming, saved));
        } else {
          let g = slots[0]!;
          const hooked = applyHooks(node.hooks, g, own);
          if (hooked !== g) drop(g);
          g = hooked;
          const target = node.retainTarget?.deref();
          if (target) accumulateRetained(target, g);
          const saved = node.saved();
          const gIn = g;
          incoming = [g];
          // Intermediates of the formula are freed at once; only the gradients survive.
          grads = tidy(() => node.backwardFn(gIn, saved));
        }
        const isIncoming = (t: Tensor) => incoming.includes(t);
        grads.forEach((gi, i) => {
          const edge = node.next[i];
          if (!gi) return;
          if (!edge) {
            // A formula computed a gradient nobody needs: free it now.
            if (!isIncoming(gi)) gi.dispose();
            return;
          }
          if (!isIncoming(gi)) own(gi);
          const slot = 'leaf' in edge ? 0 : (edge.slot ?? 0);
          const prev = 'leaf' in edge ? leafPending.get(edge.leaf) : pending.get(edge.node)?.[slot];
          const put = (t: Tensor) => {
            if ('leaf' in edge) leafPending.set(edge.leaf, t);
            else {
              const arr = pending.get(edge.node) ?? [];
              arr[slot] = t;
              pending.set(edge.node, arr);
            }
          };
          if (prev) {
            const sum = prev.add(gi);
            own(sum);
            put(sum);
            if (!isIncoming(prev)) drop(prev);
            if (!isIncoming(gi)) drop(gi);
          } else {
            // The same tensor may flow to several edges (add's backward): own a view per edge.
            const mine = isIncoming(gi) ? gi.alias() : gi;
            own(mine);
            put(mine);
          }
        });
        for (const t of incoming) drop(t);
        if (!retainGraph) node.releaseSaved();
      }
      for (const [leaf, g] of leafPending) accumulateLeaf(leaf, g, own, (t) => owned.delete(t));
    } finally {
      for (const t of owned) t.dispose();
      for (const slots of pending.values()) for (const t of slots) if (t && t !== grad) t.dispose();
    }
  }));
}

function accumulateRetained(target: Tensor, g: Tensor): void {
  const prev = target.grad;
  if (prev && !prev.isDisposed) prev.add_(g);
  else target.grad = keep(g.clone());
}

function accumulateLeaf(leaf: Tensor, grad: Tensor, own?: (t: Tensor) => void, release?: (t: Tensor) => boolean): void {
  if (leaf.isDisposed) throw new AutogradError('backward', 'a leaf tensor that requires grad was disposed before backward');
  const g = applyHooks(leaf._hooks, grad, own ?? (() => {}));
  const prev = leaf.grad;
  // Accumulate into the existing tensor, as PyTorch: references to .grad (an optimizer's) stay valid.
  if (prev && !prev.isDisposed && prev.device === g.device) prev.add_(g);
  // A gradient the engine owns alone (no view or saved tensor shares its
  // memory) becomes .grad as it is; anything shared is copied, so a later
  // in-place accumulation cannot reach another tensor.
  else if (release && ownsStorage(g) && release(g)) leaf.grad = keep(g);
  else leaf.grad = keep(g.clone());
}

function ownsStorage(t: Tensor): boolean {
  return t._storage.refs === 1 && t.offset === 0 && t.isContiguous() && t.numel() === t._storage.data.size;
}
