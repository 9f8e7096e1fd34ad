// UniPELT-style gate (peft-methods.md §9.3, §11): g[b] = mean over the sequence of
// sigmoid(u[b,s] · w + bias), i.e. Linear(d,1) then sigmoid then the mean over all S positions
// (padding included, as AdapterHub does). Shapes: u [B,S,d], w [d] (the [1,d] weight), bias [1]
// → g [B]. Backward keeps u, w and sig = the per-position sigmoid [B,S].

import { expectLength, like, type Floats } from './floats.js';

export function gateForward<T extends Floats>(u: T, w: Floats, bias: Floats, B: number, S: number, d: number): { g: T; sig: T } {
  expectLength('gate u', u, B * S * d);
  expectLength('gate w', w, d);
  expectLength('gate bias', bias, 1);
  const sig = like(u, B * S);
  const g = like(u, B);
  for (let b = 0; b < B; b++) {
    let sum = 0;
    for (let s = 0; s < S; s++) {
      let z = bias[0]!;
      for (let i = 0; i < d; i++) z += u[(b * S + s) * d + i]! * w[i]!;
      const v = 1 / (1 + Math.exp(-z));
      sig[b * S + s] = v;
      sum += v;
    }
    g[b] = sum / S;
  }
  return { g, sig };
}

export function gateBackward<T extends Floats>(
  u: Floats,
  w: Floats,
  sig: Floats,
  dg: T,
  B: number,
  S: number,
  d: number,
): { du: T; dw: T; dbias: T } {
  expectLength('gate dg', dg, B);
  const du = like(dg, B * S * d);
  const dwAcc = new Float64Array(d);
  let db = 0;
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < S; s++) {
      const v = sig[b * S + s]!;
      const dz = (dg[b]! / S) * v * (1 - v);
      db += dz;
      for (let i = 0; i < d; i++) {
        du[(b * S + s) * d + i] = dz * w[i]!;
        dwAcc[i] = dwAcc[i]! + dz * u[(b * S + s) * d + i]!;
      }
    }
  }
  const dw = like(dg, d);
  dw.set(dwAcc);
  const dbias = like(dg, 1);
  dbias[0] = db;
  return { du, dw, dbias };
}
