// LoRA and AdaLoRA branch deltas (peft-methods.md §1.2, §2.3); the caller adds the delta to the
// base layer's output. Shapes: x [M,in], A [r,in], B [out,r], E [r] → delta [M,out].
//   LoRA:    delta = s · (dropout(x) Aᵀ) Bᵀ
//   AdaLoRA: delta = (dropout(x) (A ⊙ E)ᵀ) Bᵀ · alpha / (ranknum + 1e-5)
// Backward keeps x, the parameters and u = dropout(x) Aᵀ [M,r]; the dropout mask is rebuilt
// from its seed. dx is the branch's contribution only.

import type { DropoutSpec } from './dropout.js';
import { dropoutBackward, dropoutForward } from './dropout.js';
import { like, type Floats } from './floats.js';
import { linearBackward, linearForward } from './linear.js';

export interface LoraShape {
  M: number;
  inF: number;
  outF: number;
  r: number;
}

export interface LoraNeeds {
  dx?: boolean;
  dA?: boolean;
  dB?: boolean;
  dE?: boolean;
}

function dropped<T extends Floats>(x: T, dropout: DropoutSpec | undefined): T {
  return dropout && dropout.p > 0 ? dropoutForward(x, dropout) : x;
}

function scaled<T extends Floats>(a: T, s: number): T {
  const out = like(a, a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! * s;
  return out;
}

export function loraForward<T extends Floats>(
  x: T,
  A: Floats,
  B: Floats,
  scaling: number,
  s: LoraShape,
  dropout?: DropoutSpec,
): { delta: T; u: T } {
  const u = linearForward(dropped(x, dropout), A, undefined, { M: s.M, K: s.inF, N: s.r });
  const delta = scaled(linearForward(u, B, undefined, { M: s.M, K: s.r, N: s.outF }), scaling);
  return { delta, u };
}

export function loraBackward<T extends Floats>(
  x: Floats,
  A: Floats,
  B: Floats,
  u: Floats,
  dy: T,
  scaling: number,
  s: LoraShape,
  need: LoraNeeds,
  dropout?: DropoutSpec,
): { dx?: T; dA?: T; dB?: T } {
  const dys = scaled(dy, scaling);
  const gb = linearBackward(u, B, dys, { M: s.M, K: s.r, N: s.outF }, { dx: need.dx || need.dA, dw: need.dB });
  const out: { dx?: T; dA?: T; dB?: T } = {};
  if (gb.dw) out.dB = gb.dw;
  if (gb.dx) {
    const ga = linearBackward(dropped(x, dropout), A, gb.dx, { M: s.M, K: s.inF, N: s.r }, { dx: need.dx, dw: need.dA });
    if (ga.dw) out.dA = ga.dw;
    if (ga.dx) out.dx = dropout && dropout.p > 0 ? dropoutBackward(ga.dx, dropout) : ga.dx;
  }
  return out;
}

/** AdaLoRA's effective scale alpha / (ranknum + 1e-5), ranknum = init_r. */
export function adaloraScale(alpha: number, ranknum: number): number {
  return alpha / (ranknum + 1e-5);
}

export function adaloraForward<T extends Floats>(
  x: T,
  A: Floats,
  E: Floats,
  B: Floats,
  scale: number,
  s: LoraShape,
  dropout?: DropoutSpec,
): { delta: T; u: T } {
  const u = linearForward(dropped(x, dropout), A, undefined, { M: s.M, K: s.inF, N: s.r });
  const h = like(u, u.length);
  for (let m = 0; m < s.M; m++) for (let i = 0; i < s.r; i++) h[m * s.r + i] = u[m * s.r + i]! * E[i]!;
  const delta = scaled(linearForward(h, B, undefined, { M: s.M, K: s.r, N: s.outF }), scale);
  return { delta, u };
}

export function adaloraBackward<T extends Floats>(
  x: Floats,
  A: Floats,
  E: Floats,
  B: Floats,
  u: Floats,
  dy: T,
  scale: number,
  s: LoraShape,
  need: LoraNeeds,
  dropout?: DropoutSpec,
): { dx?: T; dA?: T; dB?: T; dE?: T } {
  const { M, r } = s;
  const h = like(dy, M * r);
  for (let m = 0; m < M; m++) for (let i = 0; i < r; i++) h[m * r + i] = u[m * r + i]! * E[i]!;
  const dys = scaled(dy, scale);
  const gb = linearBackward(h, B, dys, { M, K: r, N: s.outF }, { dx: true, dw: need.dB });
  const dh = gb.dx!;
  const out: { dx?: T; dA?: T; dB?: T; dE?: T } = {};
  if (gb.dw) out.dB = gb.dw;
  if (need.dE) {
    const dE = like(dy, r);
    for (let i = 0; i < r; i++) {
      let acc = 0;
      for (let m = 0; m < M; m++) acc += dh[m * r + i]! * u[m * r + i]!;
      dE[i] = acc;
    }
    out.dE = dE;
  }
  if (need.dA || need.dx) {
    const du = like(dy, M * r);
    for (let m = 0; m < M; m++) for (let i = 0; i < r; i++) du[m * r + i] = dh[m * r + i]! * E[i]!;
    const ga = linearBackward(dropped(x, dropout), A, du, { M, K: s.inF, N: r }, { dx: need.dx, dw: need.dA });
    if (ga.dw) out.dA = ga.dw;
    if (ga.dx) out.dx = dropout && dropout.p > 0 ? dropoutBackward(ga.dx, dropout) : ga.dx;
  }
  return out;
}
