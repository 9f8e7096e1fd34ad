// Scaled dot-product attention with grouped/multi-query heads and optional prefix keys/values.
// Shapes: q [B,T,Hq,hd]; k, v [B,S,Hkv,hd]; prefixK, prefixV [B,P,Hkv,hd]; keyMask [B,S]
// (1 = visible, 0 = padding; sequence part only) → out [B,T,Hq,hd], lse [B,Hq,T].
// Query head h reads kv head floor(h·Hkv/Hq). Keys are ordered [prefix (P) | sequence (S)];
// prefix keys are always visible; with `causal`, query t sees sequence key s iff
// s ≤ t + (S − T) (the queries are the last T positions, so S = T is the usual triangle).
// Scores are scaled by `scale` (default 1/sqrt(hd)) and softmaxed in float64 with the row max
// subtracted. A row with no visible key outputs 0 (lse = −Infinity) and passes no gradient.
// Backward keeps q, k, v, the prefix, out and lse (log-sum-exp per row) and recomputes the
// probabilities p = exp(score − lse) instead of storing them, as a fused kernel does.

import { expectLength, like, type Floats } from './floats.js';

export interface AttentionSpec {
  B: number;
  T: number;
  S: number;
  Hq: number;
  Hkv: number;
  hd: number;
  /** Prefix length; 0 or absent when there is no prefix. */
  P?: number;
  causal: boolean;
  scale?: number;
}

export interface AttentionInputs<T extends Floats> {
  q: T;
  k: Floats;
  v: Floats;
  prefixK?: Floats;
  prefixV?: Floats;
  keyMask?: Uint8Array;
}

interface Layout {
  P: number;
  scale: number;
  /** Flat offset of key j (prefix first) of batch b, kv head g. */
  keyAt: (b: number, j: number, g: number) => { arr: 'seq' | 'prefix'; off: number };
  visible: (b: number, t: number, j: number) => boolean;
}

function layout<T extends Floats>(x: AttentionInputs<T>, s: AttentionSpec): Layout {
  const { B, T, S, Hq, Hkv, hd } = s;
  const P = s.P ?? 0;
  if (Hq % Hkv !== 0) throw new Error(`reference: attention Hq=${Hq} not a multiple of Hkv=${Hkv}`);
  expectLength('attention q', x.q, B * T * Hq * hd);
  expectLength('attention k', x.k, B * S * Hkv * hd);
  expectLength('attention v', x.v, B * S * Hkv * hd);
  if (P > 0) {
    if (!x.prefixK || !x.prefixV) throw new Error('reference: attention P > 0 needs prefixK and prefixV');
    expectLength('attention prefixK', x.prefixK, B * P * Hkv * hd);
    expectLength('attention prefixV', x.prefixV, B * P * Hkv * hd);
  }
  if (x.keyMask) expectLength('attention keyMask', x.keyMask, B * S);
  const mask = x.keyMask;
  return {
    P,
    scale: s.scale ?? 1 / Math.sqrt(hd),
    keyAt: (b, j, g) =>
      j < P
        ? { arr: 'prefix', off: ((b * P + j) * Hkv + g) * hd }
        : { arr: 'seq', off: ((b * S + (j - P)) * Hkv + g) * hd },
    visible: (b, t, j) => {
      if (j < P) return true;
      const sk = j - P;
      if (mask && !mask[b * S + sk]) return false;
      return !s.causal || sk <= t + (S - T);
    },
  };
}

export function attentionForward<T extends Floats>(x: AttentionInputs<T>, s: AttentionSpec): { out: T; lse: T } {
  const { B, T, Hq, Hkv, hd } = s;
  const L = layout(x, s);
  const J = L.P + s.S;
  const out = like(x.q, B * T * Hq * hd);
  const lse = like(x.q, B * Hq * T);
  const scores = new Float64Array(J);
  const acc = new Float64Array(hd);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const g = Math.floor((h * Hkv) / Hq);
      for (let t = 0; t < T; t++) {
        const qo = ((b * T + t) * Hq + h) * hd;
        let max = -Infinity;
        for (let j = 0; j < J; j++) {
          if (!L.visible(b, t, j)) {
            scores[j] = -Infinity;
            continue;
          }
          const { arr, off } = L.keyAt(b, j, g);
          const kk = arr === 'seq' ? x.k : x.prefixK!;
          let dot = 0;
          for (let d = 0; d < hd; d++) dot += x.q[qo + d]! * kk[off + d]!;
          scores[j] = dot * L.scale;
          if (scores[j]! > max) max = scores[j]!;
        }
        if (max === -Infinity) {
          lse[(b * Hq + h) * T + t] = -Infinity;
          continue;
        }
        let sum = 0;
        acc.fill(0);
        for (let j = 0; j < J; j++) {
          if (scores[j] === -Infinity) continue;
          const p = Math.exp(scores[j]! - max);
          sum += p;
          const { arr, off } = L.keyAt(b, j, g);
          const vv = arr === 'seq' ? x.v : x.prefixV!;
          for (let d = 0; d < hd; d++) acc[d] = acc[d]! + p * vv[off + d]!;
        }
        for (let d = 0; d < hd; d++) out[qo + d] = acc[d]! / sum;
        lse[(b * Hq + h) * T + t] = max + Math.log(sum);
      }
    }
  }
  return { out, lse };
}

export interface AttentionGrads<T extends Floats> {
  dq: T;
  dk: T;
  dv: T;
  dprefixK?: T;
  dprefixV?: T;
}

export function attentionBackward<T extends Floats>(
  x: AttentionInputs<Floats>,
  out: Floats,
  lse: Floats,
  dout: T,
  s: AttentionSpec,
): AttentionGrads<T> {
  const { B, T, S, Hq, Hkv, hd } = s;
  const L = layout(x, s);
  const J = L.P + S;
  expectLength('attention out', out, B * T * Hq * hd);
  expectLength('attention lse', lse, B * Hq * T);
  expectLength('attention dout', dout, B * T * Hq * hd);
  const dq = like(dout, B * T * Hq * hd);
  const dk = like(dout, B * S * Hkv * hd);
  const dv = like(dout, B * S * Hkv * hd);
  const dpk = L.P > 0 ? like(dout, B * L.P * Hkv * hd) : undefined;
  const dpv = L.P > 0 ? like(dout, B * L.P * Hkv * hd) : undefined;
  const dqAcc = new Float64Array(hd);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const g = Math.floor((h * Hkv) / Hq);
      for (let t = 0; t < T; t++) {
        const rowLse = lse[(b * Hq + h) * T + t]!;
        if (rowLse === -Infinity) continue;
        const qo = ((b * T + t) * Hq + h) * hd;
        let delta = 0;
        for (let d = 0; d < hd; d++) delta += dout[qo + d]! * out[qo + d]!;
        dqAcc.fill(0);
        for (let j = 0; j < J; j++) {
          if (!L.visible(b, t, j)) continue;
          const { arr, off } = L.keyAt(b, j, g);
          const kk = arr === 'seq' ? x.k : x.prefixK!;
          const vv = arr === 'seq' ? x.v : x.prefixV!;
          const dkT = arr === 'seq' ? dk : dpk!;
          const dvT = arr === 'seq' ? dv : dpv!;
          let dot = 0;
          let dp = 0;
          for (let d = 0; d < hd; d++) {
            dot += x.q[qo + d]! * kk[off + d]!;
            dp += dout[qo + d]! * vv[off + d]!;
          }
          const p = Math.exp(dot * L.scale - rowLse);
          const ds = p * (dp - delta) * L.scale;
          for (let d = 0; d < hd; d++) {
            dqAcc[d] = dqAcc[d]! + ds * kk[off + d]!;
            dkT[off + d] = dkT[off + d]! + ds * x.q[qo + d]!;
            dvT[off + d] = dvT[off + d]! + p * dout[qo + d]!;
          }
        }
        for (let d = 0; d < hd; d++) dq[qo + d] = dqAcc[d]!;
      }
    }
  }
  const grads: AttentionGrads<T> = { dq, dk, dv };
  if (dpk && dpv) {
    grads.dprefixK = dpk;
    grads.dprefixV = dpv;
  }
  return grads;
}
