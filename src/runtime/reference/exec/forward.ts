// Forward IR ops mapped onto the CPU reference functions. Each kernel receives its inputs with
// concrete shapes and the output shapes the IR's shape rules gave, and returns output data in the
// run's precision; symbolic dimension attributes arrive evaluated to numbers. Data-movement ops (split, slice, concat, reshape) have no reference function:
// their plain loops are here.

import type { Attrs } from '../../../ir/opdef.js';
import { attentionForward } from '../attention.js';
import { dropoutForward } from '../dropout.js';
import { elementwiseForward, type ElementwiseName } from '../elementwise.js';
import { embeddingForward } from '../embedding.js';
import { linearForward } from '../linear.js';
import { causalLmLossForward, IGNORE_INDEX } from '../loss.js';
import { layernormForward, rmsnormForward } from '../norm.js';
import { ropeForward } from '../rope.js';
import { swigluForward } from '../swiglu.js';
import type { Floats } from '../floats.js';
import {
  allocLike,
  around,
  asFloats,
  asInts,
  broadcastTo,
  copyAlong,
  numelOf,
  streamId,
  transpose2,
  zeros,
  type Data,
  type Tensor,
} from './tensor.js';

export interface KernelCtx {
  f64: boolean;
  /** Dropout masks come from (seed, stream name, step). */
  seed: number;
  step: number;
}

export type Kernel = (ins: Tensor[], attrs: Attrs, outShapes: number[][], k: KernelCtx) => Data[];

const num = (a: Attrs, key: string): number => a[key] as number;

export function dropoutSpec(a: Attrs, k: KernelCtx): { p: number; seed: number; stream: number } {
  return { p: num(a, 'p'), seed: k.seed, stream: streamId(`${String(a['stream'])}@${k.step}`) };
}

/** The prefix as [B,P,H,hd]: a shared [P,H,hd] prefix is repeated for each batch row. */
export function batchedPrefix(t: Tensor | undefined, B: number, f64: boolean): Floats | undefined {
  if (!t) return undefined;
  const x = asFloats(t);
  return t.shape.length === 4 ? x : broadcastTo(x, [1, ...t.shape], [B, ...t.shape], f64);
}

const unary =
  (name: ElementwiseName): Kernel =>
  ([x]) => [elementwiseForward(name, asFloats(x!))];

const binary =
  (name: ElementwiseName): Kernel =>
  ([a, b], _, [out], k) => [
    elementwiseForward(name, broadcastTo(asFloats(a!), a!.shape, out!, k.f64), broadcastTo(asFloats(b!), b!.shape, out!, k.f64)),
  ];

const copy: Kernel = ([x]) => [x!.data.slice()];

export function linearShape(x: Tensor, w: Tensor, transposed: boolean): { M: number; K: number; N: number; transposed: boolean } {
  const K = x.shape[x.shape.length - 1]!;
  const N = transposed ? w.shape[1]! : w.shape[0]!;
  return { M: numelOf(x.shape) / K, K, N, transposed };
}

export const FORWARD_KERNELS: Readonly<Record<string, Kernel>> = {
  embedding: ([ids, table], a, _, k) => {
    const tr = a['transposed'] === true;
    const [r, c] = table!.shape as [number, number];
    const t = tr ? transpose2(asFloats(table!), r, c, k.f64) : asFloats(table!);
    const [V, D] = tr ? [c, r] : [r, c];
    return [embeddingForward(asInts(ids!), t, V, D)];
  },

  linear: ([x, w, b], a) => [linearForward(asFloats(x!), asFloats(w!), b && asFloats(b), linearShape(x!, w!, a['transposed'] === true))],

  add: binary('add'),
  mul: binary('mul'),
  scale: ([x], a) => [elementwiseForward('scale', asFloats(x!), undefined, { s: num(a, 'factor') })],

  rmsnorm: ([x, w], a) => {
    const D = w!.shape[0]!;
    return [rmsnormForward(asFloats(x!), asFloats(w!), numelOf(x!.shape) / D, D, num(a, 'eps')).y];
  },

  layernorm: ([x, w, b], a) => {
    const D = w!.shape[0]!;
    return [layernormForward(asFloats(x!), asFloats(w!), asFloats(b!), numelOf(x!.shape) / D, D, num(a, 'eps')).y];
  },

  rope: ([x, pos], a) => {
    const [B, T, H, hd] = x!.shape as [number, number, number, number];
    const mode = a['mode'] as 'half' | 'interleaved';
    return [ropeForward(asFloats(x!), asInts(pos!), { B, T, H, hd, mode, rotaryDim: num(a, 'rotary_dim'), theta: num(a, 'theta') })];
  },

  attention: ([q, kk, v, pk, pv], a, _, k) => {
    const [B, T, Hq, hd] = q!.shape as [number, number, number, number];
    const [, S, Hkv] = kk!.shape as [number, number, number];
    const P = pk ? pk.shape[pk.shape.length - 3]! : 0;
    const prefixK = batchedPrefix(pk, B, k.f64);
    const prefixV = batchedPrefix(pv, B, k.f64);
    const spec = { B, T, S, Hq, Hkv, hd, P, causal: a['causal'] === true, scale: num(a, 'scale') };
    return [attentionForward({ q: asFloats(q!), k: asFloats(kk!), v: asFloats(v!), ...(prefixK && prefixV ? { prefixK, prefixV } : {}) }, spec).out];
  },

  reshape: copy,
  split_heads: copy,
  merge_heads: copy,

  split: ([x], a, outs, k) => {
    let at = 0;
    return outs.map((s) => {
      const out = allocLike(x!.data, numelOf(s), k.f64);
      const len = s[around(s, num(a, 'axis')).ax]!;
      copyAlong(x!.data, x!.shape, at, out, s, 0, len, num(a, 'axis'));
      at += len;
      return out;
    });
  },

  slice: ([x], a, [out], k) => {
    const o = allocLike(x!.data, numelOf(out!), k.f64);
    const ax = around(out!, num(a, 'axis'));
    copyAlong(x!.data, x!.shape, num(a, 'start'), o, out!, 0, ax.len, num(a, 'axis'));
    return [o];
  },

  concat: (xs, a, [out], k) => {
    const o = allocLike(xs[0]!.data, numelOf(out!), k.f64);
    let at = 0;
    for (const x of xs) {
      const len = x.shape[around(x.shape, num(a, 'axis')).ax]!;
      copyAlong(x.data, x.shape, 0, o, out!, at, len, num(a, 'axis'));
      at += len;
    }
    return [o];
  },

  broadcast: ([x], _, [out], k) => [broadcastTo(asFloats(x!), x!.shape, out!, k.f64).slice()],

  full: (_, a, [out], k) => {
    const n = numelOf(out!);
    const o = a['dtype'] === 'i32' ? new Int32Array(n) : zeros(k.f64, n);
    o.fill(num(a, 'value'));
    return [o];
  },

  offset: ([x], a) => [Int32Array.from(asInts(x!), (v) => v + num(a, 'by'))],

  silu: unary('silu'),
  gelu_tanh: unary('gelu_tanh'),
  gelu: unary('gelu'),
  relu: unary('relu'),
  tanh: unary('tanh'),
  sigmoid: unary('sigmoid'),

  swiglu: ([x], _, [out]) => {
    const F = out![out!.length - 1]!;
    return [swigluForward(asFloats(x!), numelOf(out!) / F, F)];
  },

  dropout: ([x], a, _, k) => [dropoutForward(asFloats(x!), dropoutSpec(a, k))],

  mean_seq: ([x], _, [out], k) => {
    const [B, T] = x!.shape as [number, number];
    const inner = numelOf(x!.shape.slice(2));
    const xs = asFloats(x!);
    const o = zeros(k.f64, numelOf(out!));
    for (let b = 0; b < B; b++)
      for (let i = 0; i < inner; i++) {
        let s = 0;
        for (let t = 0; t < T; t++) s += xs[(b * T + t) * inner + i]!;
        o[b * inner + i] = s / T;
      }
    return [o];
  },

  cross_entropy: ([logits, labels], a, _, k) => {
    if (a['ignore_index'] !== IGNORE_INDEX) throw new Error(`reference executor: cross_entropy supports ignore_index ${IGNORE_INDEX} only`);
    const [B, T, V] = logits!.shape as [number, number, number];
    const o = zeros(k.f64, 1);
    o[0] = causalLmLossForward(asFloats(logits!), asInts(labels!), { B, T, V }).loss;
    return [o];
  },

  rank_scale: ([x, n], a) => [elementwiseForward('scale', asFloats(x!), undefined, { s: num(a, 'factor') / (asFloats(n!)[0]! + num(a, 'eps')) })],
};

