// Bottleneck adapter body f(u) = scaling · up(act(down(u))) (peft-methods.md §9.2–9.3); the
// residual, layer norms and placement (Houlsby, Pfeiffer, parallel) are composed by the caller.
// Shapes: u [M,d]; down: wd [m,d], bd [m]; up: wu [d,m], bu [d] → out [M,d].
// act: relu, silu ("swish"), gelu (erf, AdapterHub "gelu") or gelu_tanh ("gelu_new").
// Backward keeps u, the parameters, z = down(u) (pre-activation) and h = act(z).

import { elementwiseBackward, elementwiseForward } from './elementwise.js';
import { like, type Floats } from './floats.js';
import { linearBackward, linearForward } from './linear.js';

export type AdapterAct = 'relu' | 'silu' | 'gelu' | 'gelu_tanh';

export interface BottleneckParams {
  wd: Floats;
  bd?: Floats;
  wu: Floats;
  bu?: Floats;
}

export interface BottleneckSpec {
  M: number;
  d: number;
  m: number;
  act: AdapterAct;
  scaling: number;
}

export function bottleneckForward<T extends Floats>(u: T, p: BottleneckParams, s: BottleneckSpec): { out: T; z: T; h: T } {
  const z = linearForward(u, p.wd, p.bd, { M: s.M, K: s.d, N: s.m });
  const h = elementwiseForward(s.act, z);
  const up = linearForward(h, p.wu, p.bu, { M: s.M, K: s.m, N: s.d });
  const out = like(u, up.length);
  for (let i = 0; i < up.length; i++) out[i] = up[i]! * s.scaling;
  return { out, z, h };
}

export interface BottleneckGrads<T extends Floats> {
  du?: T;
  dwd?: T;
  dbd?: T;
  dwu?: T;
  dbu?: T;
}

export function bottleneckBackward<T extends Floats>(
  u: Floats,
  p: BottleneckParams,
  z: Floats,
  h: Floats,
  dout: T,
  s: BottleneckSpec,
  need: { du?: boolean; params?: boolean },
): BottleneckGrads<T> {
  const g = like(dout, dout.length);
  for (let i = 0; i < dout.length; i++) g[i] = dout[i]! * s.scaling;
  const gu = linearBackward(h, p.wu, g, { M: s.M, K: s.m, N: s.d }, { dx: true, dw: need.params, db: need.params && !!p.bu });
  const dz = elementwiseBackward(s.act, { a: z }, gu.dx!).da;
  const gd = linearBackward(u, p.wd, dz, { M: s.M, K: s.d, N: s.m }, { dx: need.du, dw: need.params, db: need.params && !!p.bd });
  const out: BottleneckGrads<T> = {};
  if (gd.dx) out.du = gd.dx;
  if (gd.dw) out.dwd = gd.dw;
  if (gd.db) out.dbd = gd.db;
  if (gu.dw) out.dwu = gu.dw;
  if (gu.db) out.dbu = gu.db;
  return out;
}
