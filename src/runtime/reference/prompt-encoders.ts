// Reparameterisation networks that produce virtual tokens; their input ids are always 0..P−1,
// so the embedding lookup is the table itself.
// Prefix MLP (peft-methods.md §4.2, §7): emb [P,d] → Linear(d,h) → tanh → Linear(h,O), O = L·2·kvdim
//   → out [P,O]; backward keeps emb, the weights and t = tanh(...) [P,h].
// P-tuning MLP (§5): emb [T,D] → Linear(D,h) → ReLU → Linear(h,h) → ReLU → Linear(h,D) → out [T,D];
//   backward keeps emb, the weights and the post-ReLU activations a1, a2 [T,h] (ReLU's derivative
//   step(z) equals step(relu(z)), so the post-activation suffices).

import { elementwiseBackward, elementwiseForward } from './elementwise.js';
import type { Floats } from './floats.js';
import { linearBackward, linearForward } from './linear.js';

export interface PrefixMlpParams {
  emb: Floats;
  w1: Floats;
  b1: Floats;
  w2: Floats;
  b2: Floats;
}

export interface PrefixMlpShape {
  P: number;
  d: number;
  h: number;
  O: number;
}

export function prefixMlpForward<T extends Floats>(emb: T, p: Omit<PrefixMlpParams, 'emb'>, s: PrefixMlpShape): { out: T; t: T } {
  const t = elementwiseForward('tanh', linearForward(emb, p.w1, p.b1, { M: s.P, K: s.d, N: s.h }));
  return { out: linearForward(t, p.w2, p.b2, { M: s.P, K: s.h, N: s.O }), t };
}

export function prefixMlpBackward<T extends Floats>(
  p: PrefixMlpParams,
  t: Floats,
  dout: T,
  s: PrefixMlpShape,
): { demb: T; dw1: T; db1: T; dw2: T; db2: T } {
  const g2 = linearBackward(t, p.w2, dout, { M: s.P, K: s.h, N: s.O }, { dx: true, dw: true, db: true });
  const dz = elementwiseBackward('tanh', { y: t }, g2.dx!).da;
  const g1 = linearBackward(p.emb, p.w1, dz, { M: s.P, K: s.d, N: s.h }, { dx: true, dw: true, db: true });
  return { demb: g1.dx!, dw1: g1.dw!, db1: g1.db!, dw2: g2.dw!, db2: g2.db! };
}

export interface PtuningMlpParams {
  emb: Floats;
  w1: Floats;
  b1: Floats;
  w2: Floats;
  b2: Floats;
  w3: Floats;
  b3: Floats;
}

export interface PtuningMlpShape {
  T: number;
  D: number;
  h: number;
}

export function ptuningMlpForward<T extends Floats>(
  emb: T,
  p: Omit<PtuningMlpParams, 'emb'>,
  s: PtuningMlpShape,
): { out: T; a1: T; a2: T } {
  const a1 = elementwiseForward('relu', linearForward(emb, p.w1, p.b1, { M: s.T, K: s.D, N: s.h }));
  const a2 = elementwiseForward('relu', linearForward(a1, p.w2, p.b2, { M: s.T, K: s.h, N: s.h }));
  return { out: linearForward(a2, p.w3, p.b3, { M: s.T, K: s.h, N: s.D }), a1, a2 };
}

export function ptuningMlpBackward<T extends Floats>(
  p: PtuningMlpParams,
  a1: Floats,
  a2: Floats,
  dout: T,
  s: PtuningMlpShape,
): { demb: T; dw1: T; db1: T; dw2: T; db2: T; dw3: T; db3: T } {
  const all = { dx: true, dw: true, db: true };
  const g3 = linearBackward(a2, p.w3, dout, { M: s.T, K: s.h, N: s.D }, all);
  const dz2 = elementwiseBackward('relu', { a: a2 }, g3.dx!).da;
  const g2 = linearBackward(a1, p.w2, dz2, { M: s.T, K: s.h, N: s.h }, all);
  const dz1 = elementwiseBackward('relu', { a: a1 }, g2.dx!).da;
  const g1 = linearBackward(p.emb, p.w1, dz1, { M: s.T, K: s.D, N: s.h }, all);
  return { demb: g1.dx!, dw1: g1.dw!, db1: g1.db!, dw2: g2.dw!, db2: g2.db!, dw3: g3.dw!, db3: g3.db! };
}
