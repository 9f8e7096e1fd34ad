// Backward IR ops mapped onto the CPU reference backward functions. Statistics the IR does not
// carry (rmsnorm/layernorm rstd and mean, the attention log-sum-exp) are recomputed here from the
// saved forward inputs with the reference forward, exactly as the backward op's doc says.

import type { Attrs } from '../../../ir/opdef.js';
import { attentionBackward, attentionForward } from '../attention.js';
import { elementwiseBackward, type ElementwiseName } from '../elementwise.js';
import { embeddingBackward } from '../embedding.js';
import type { Floats } from '../floats.js';
import { linearBackward } from '../linear.js';
import { causalLmLossBackward, IGNORE_INDEX } from '../loss.js';
import { layernormBackward, layernormForward, rmsnormBackward, rmsnormForward } from '../norm.js';
import { ropeBackward } from '../rope.js';
import { swigluBackward } from '../swiglu.js';
import { batchedPrefix, linearShape, type Kernel } from './forward.js';
import { around, asFloats, asInts, copyAlong, numelOf, sumTo, transpose2, zeros, type Data, type Tensor } from './tensor.js';

const num = (a: Attrs, key: string): number => a[key] as number;

const fromKept =
  (name: ElementwiseName, kept: 'a' | 'y'): Kernel =>
  ([x, dy]) => [elementwiseBackward(name, { [kept]: asFloats(x!) }, asFloats(dy!)).da];

/** The requested gradients of a multi-gradient op, in order. */
function pick(a: Attrs, grads: Record<string, Floats | undefined>): Data[] {
  return Object.entries(grads)
    .filter(([k]) => a[k] === true)
    .map(([k, g]) => {
      if (!g) throw new Error(`reference executor: gradient ${k} was not computed`);
      return g;
    });
}

/** A zero tensor shaped like `t`, standing in where a reference function checks a length it does not read. */
const dummy = (t: { length: number } | number, f64: boolean): Floats => zeros(f64, typeof t === 'number' ? t : t.length);

export const BACKWARD_KERNELS: Readonly<Record<string, Kernel>> = {
  linear_grad_input: ([dy, w], a, [out], k) => {
    const x: Tensor = { data: dummy(numelOf(out!), k.f64), shape: out! };
    return [scaled(linearBackward(x.data as Floats, asFloats(w!), asFloats(dy!), linearShape(x, w!, a['transposed'] === true), { dx: true }).dx!, a)];
  },

  linear_grad_weight: ([x, dy], a, [out], k) => {
    const w: Tensor = { data: dummy(numelOf(out!), k.f64), shape: out! };
    return [scaled(linearBackward(asFloats(x!), w.data as Floats, asFloats(dy!), linearShape(x!, w, a['transposed'] === true), { dw: true }).dw!, a)];
  },

  sum_to_shape: ([x], _, [out], k) => [sumTo(asFloats(x!), x!.shape, out!, k.f64)],

  add_grad: (xs, _, [out], k) => {
    const o = zeros(k.f64, numelOf(out!));
    for (const x of xs) {
      const d = asFloats(x);
      for (let i = 0; i < o.length; i++) o[i] = o[i]! + d[i]!;
    }
    return [o];
  },

  embedding_grad: ([ids, dy], a, _, k) => {
    const D = dy!.shape[dy!.shape.length - 1]!;
    const V = num(a, 'rows');
    const g = embeddingBackward(asInts(ids!), asFloats(dy!), V, D);
    return [a['transposed'] === true ? transpose2(g, V, D, k.f64) : g];
  },

  rmsnorm_backward: ([x, w, dy, add], a) => {
    const D = w!.shape[0]!;
    const M = numelOf(x!.shape) / D;
    const { rstd } = rmsnormForward(asFloats(x!), asFloats(w!), M, D, num(a, 'eps'));
    const g = rmsnormBackward(asFloats(x!), asFloats(w!), rstd, asFloats(dy!), M, D, { dx: a['dx'] === true, dw: a['dw'] === true });
    return pick(a, { dx: plus(g.dx, add), dw: g.dw });
  },

  layernorm_backward: ([x, w, dy, add], a) => {
    const D = w!.shape[0]!;
    const M = numelOf(x!.shape) / D;
    const { mean, rstd } = layernormForward(asFloats(x!), asFloats(w!), undefined, M, D, num(a, 'eps'));
    const need = { dx: a['dx'] === true, dw: a['dw'] === true, db: a['db'] === true };
    const g = layernormBackward(asFloats(x!), asFloats(w!), mean, rstd, asFloats(dy!), M, D, need);
    return pick(a, { dx: plus(g.dx, add), dw: g.dw, db: g.db });
  },

  rope_backward: ([dy, pos], a) => {
    const [B, T, H, hd] = dy!.shape as [number, number, number, number];
    const mode = a['mode'] as 'half' | 'interleaved';
    return [ropeBackward(asFloats(dy!), asInts(pos!), { B, T, H, hd, mode, rotaryDim: num(a, 'rotary_dim'), theta: num(a, 'theta') })];
  },

  attention_backward: ([q, kk, v, out, dout, pk, pv], a, _, k) => {
    const [B, T, Hq, hd] = q!.shape as [number, number, number, number];
    const [, S, Hkv] = kk!.shape as [number, number, number];
    const P = pk ? pk.shape[pk.shape.length - 3]! : 0;
    const prefixK = batchedPrefix(pk, B, k.f64);
    const prefixV = batchedPrefix(pv, B, k.f64);
    const spec = { B, T, S, Hq, Hkv, hd, P, causal: a['causal'] === true, scale: num(a, 'scale') };
    const ins = { q: asFloats(q!), k: asFloats(kk!), v: asFloats(v!), ...(prefixK && prefixV ? { prefixK, prefixV } : {}) };
    const { lse } = attentionForward(ins, spec);
    const g = attentionBackward(ins, asFloats(out!), lse, asFloats(dout!), spec);
    const res: Data[] = [g.dq, g.dk, g.dv];
    for (const [t, d] of [[pk, g.dprefixK], [pv, g.dprefixV]] as const) {
      if (!t) continue;
      // A prefix shared by the batch receives the sum of every row's gradient.
      res.push(t.shape.length === 4 ? d! : sumTo(d!, [B, ...t.shape], t.shape, k.f64));
    }
    return res;
  },

  cross_entropy_backward: ([logits, labels, dloss], a) => {
    if (a['ignore_index'] !== IGNORE_INDEX) throw new Error(`reference executor: cross_entropy supports ignore_index ${IGNORE_INDEX} only`);
    const [B, T, V] = logits!.shape as [number, number, number];
    return [causalLmLossBackward(asFloats(logits!), asInts(labels!), { B, T, V }, asFloats(dloss!)[0]!)];
  },

  silu_backward: fromKept('silu', 'a'),
  gelu_tanh_backward: fromKept('gelu_tanh', 'a'),
  gelu_backward: fromKept('gelu', 'a'),
  relu_backward: fromKept('relu', 'a'),
  tanh_backward: fromKept('tanh', 'y'),
  sigmoid_backward: fromKept('sigmoid', 'y'),

  swiglu_backward: ([x, dy]) => {
    const F = dy!.shape[dy!.shape.length - 1]!;
    return [swigluBackward(asFloats(x!), asFloats(dy!), numelOf(dy!.shape) / F, F)];
  },

  slice_backward: ([dy], a, [out], k) => {
    const o = zeros(k.f64, numelOf(out!));
    copyAlong(dy!.data, dy!.shape, 0, o, out!, num(a, 'start'), around(dy!.shape, num(a, 'axis')).len, num(a, 'axis'));
    return [o];
  },

  mean_seq_backward: ([dy], _, [out], k) => {
    const [B, T] = out! as [number, number];
    const inner = numelOf(out!.slice(2));
    const d = asFloats(dy!);
    const o = zeros(k.f64, numelOf(out!));
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let i = 0; i < inner; i++) o[(b * T + t) * inner + i] = d[b * inner + i]! / T;
    return [o];
  },
};

/** The fuse pass's folded scale on a linear gradient (alpha, default 1). */
/** A norm's dx with the fuse pass's addend added (dx unchanged without one). */
function plus(dx: Floats | undefined, add: Tensor | undefined): Floats | undefined {
  if (!dx || !add) return dx;
  const r = asFloats(add);
  for (let i = 0; i < dx.length; i++) dx[i] = dx[i]! + r[i]!;
  return dx;
}

function scaled(d: Floats, a: Attrs): Floats {
  const alpha = a['alpha'];
  if (typeof alpha === 'number' && alpha !== 1) for (let i = 0; i < d.length; i++) d[i] = d[i]! * alpha;
  return d;
}
