/**
 * Fused optimizer updates (Backend.optimizerStep): one kernel per rule,
 * SGD or Adam, over one parameter and its state, all contiguous float32.
 *
 * One thread updates one element, or four consecutive ones as a vec4
 * (`vec4`: the element count and every offset a multiple of 4); a
 * workgroup is 256 threads over consecutive elements (the grid is 2-D only
 * to pass 65535 workgroups).
 * Each thread reads p, grad and the state words (SGD's momentum buffer;
 * Adam's exp_avg, exp_avg_sq and AMSGrad's max) once and writes p and the
 * state once, in place: ~5 words of traffic per element for SGD with
 * momentum where the elementwise chain moved ~20. No shared memory.
 * Only the rule and whether the optional state array is bound are
 * compiled in; the coefficients (learning rate, momentum, betas, bias
 * corrections) and the flags (maximize, nesterov, the momentum buffer's
 * first step) are uniforms, so a learning-rate schedule reuses the pipeline.
 * The operations are ATen's, in its order (backend.ts SgdStep / AdamStep):
 * each add with a scale (add(x, alpha=s), addcmul) is one fma, as ATen's
 * vectorized CPU kernels compute it, so the roundings follow PyTorch's.
 */
import { entry1d, metaDecl, PRELUDE } from './common.js';

/** The rules the kernel implements. */
export type OptimRule = 'sgd' | 'adam';

/** A compiled optimizer kernel's configuration (everything in its cache key). */
export interface OptimConfig {
  rule: OptimRule;
  /** SGD: a momentum buffer is bound; Adam: AMSGrad's max_exp_avg_sq is bound. */
  optionalState: boolean;
  /** Each thread updates a vec4 of elements (meta count and offsets in vec4s). */
  vec4: boolean;
}

/** Meta words: element (or vec4) count, each binding's element (or vec4) offset, the flag bits, then the f32 coefficients. */
export const OM = { n: 0, off: 1, flags: 6, coef: 8, words: 20 };

/** Flag bits of meta word OM.flags. */
export const OPTIM_FLAGS = { maximize: 1, nesterov: 2, initBuffer: 4 };

/** The coefficients each rule reads, in meta order from OM.coef (the SgdStep / AdamStep field names). */
export const OPTIM_COEFFICIENTS = {
  sgd: ['weightDecay', 'momentum', 'dampenedScale', 'negLr'],
  adam: ['paramScale', 'weightDecay', 'beta1', 'oneMinusBeta1', 'beta2', 'oneMinusBeta2', 'biasCorrection2Sqrt', 'eps', 'negStepSize'],
} as const;

/** The binding names of a configuration, in binding order (after the meta uniform). */
export function optimBindings(c: OptimConfig): string[] {
  if (c.rule === 'sgd') return c.optionalState ? ['p', 'g', 'buf'] : ['p', 'g'];
  return c.optionalState ? ['p', 'g', 'm', 'v', 'vmax'] : ['p', 'g', 'm', 'v'];
}

/** Cache key of one optimizer kernel. */
export function optimKey(c: OptimConfig): string {
  return `optim:${c.rule}:${c.optionalState ? 's' : ''}${c.vec4 ? 'v4' : ''}`;
}

const sgdBody = (c: OptimConfig, k: (name: string) => string, raw: (name: string) => string) => `
  let pv = p[ip];
  var d = g[ig];
  if ((flags & ${OPTIM_FLAGS.maximize}u) != 0u) { d = -d; }
  if (${raw('weightDecay')} != 0.0) { d = fma(${k('weightDecay')}, pv, d); }
  ${c.optionalState ? `
  var b = d;
  if ((flags & ${OPTIM_FLAGS.initBuffer}u) == 0u) {
    let decayed = ${k('momentum')} * buf[ibuf];
    b = fma(${k('dampenedScale')}, d, decayed);
  }
  buf[ibuf] = b;
  if ((flags & ${OPTIM_FLAGS.nesterov}u) != 0u) { d = fma(${k('momentum')}, b, d); } else { d = b; }` : ''}
  p[ip] = fma(${k('negLr')}, d, pv);`;

const adamBody = (c: OptimConfig, k: (name: string) => string, raw: (name: string) => string) => `
  let pv = p[ip] * ${k('paramScale')};
  var gv = g[ig];
  if ((flags & ${OPTIM_FLAGS.maximize}u) != 0u) { gv = -gv; }
  if (${raw('weightDecay')} != 0.0) { gv = fma(${k('weightDecay')}, pv, gv); }
  let mDecayed = ${k('beta1')} * m[im];
  let mv = fma(${k('oneMinusBeta1')}, gv, mDecayed);
  let vDecayed = ${k('beta2')} * v[iv];
  let gScaled = ${k('oneMinusBeta2')} * gv;
  let vv = fma(gScaled, gv, vDecayed);
  m[im] = mv;
  v[iv] = vv;
  var second = vv;
  ${c.optionalState ? `
  let old = vmax[ivmax];
  second = select(max(old, vv), old + vv, isnanT(old) | isnanT(vv));
  vmax[ivmax] = second;` : ''}
  let root = sqrt(second) / ${k('biasCorrection2Sqrt')};
  let denom = root + ${k('eps')};
  let num = ${k('negStepSize')} * mv;
  p[ip] = pv + num / denom;`;

/** WGSL of one fused optimizer kernel. */
export function optimWgsl(c: OptimConfig): string {
  const names = optimBindings(c);
  const coefs: readonly string[] = OPTIM_COEFFICIENTS[c.rule];
  const T = c.vec4 ? 'vec4<f32>' : 'f32';
  const raw = (name: string) => `mf(${OM.coef + coefs.indexOf(name)}u)`;
  const k = (name: string) => `${T}(${raw(name)})`;
  const decls = names.map((n, i) => `@group(0) @binding(${i + 1}) var<storage, ${n === 'g' ? 'read' : 'read_write'}> ${n}: array<${T}>;`);
  const isnanT = c.vec4
    ? 'fn isnanT(x: vec4<f32>) -> vec4<bool> { return (bitcast<vec4<u32>>(x) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u); }'
    : 'fn isnanT(x: f32) -> bool { return isnan_(x); }';
  const offsets = names.map((n, i) => `let i${n} = mu(${OM.off + i}u) + gi;`);
  return `${metaDecl(OM.words)}
${PRELUDE}
${isnanT}
${decls.join('\n')}
${entry1d()}
  if (gi >= mu(${OM.n}u)) { return; }
  let flags = mu(${OM.flags}u);
  ${offsets.join('\n  ')}
  ${c.rule === 'sgd' ? sgdBody(c, k, raw) : adamBody(c, k, raw)}
}
`;
}
