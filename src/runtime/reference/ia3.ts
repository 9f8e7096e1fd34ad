// (IA)³ scaling vectors (peft-methods.md §3.1). Shapes: rows [M,D] scaled by l [D].
//   output form (attention k/v): y = (x Wᵀ + b) ⊙ l   — scale the base output, l [out]
//   input form (feed-forward):   y = (x ⊙ l) Wᵀ + b   — scale the input, l [in]
// Backward of the scale keeps the unscaled rows (for dl) and l (for the passed-through gradient).

import { expectLength, like, type Floats } from './floats.js';
import { linearBackward, linearForward, type LinearShape } from './linear.js';

export function ia3ScaleForward<T extends Floats>(x: T, l: Floats, M: number, D: number): T {
  expectLength('ia3 rows', x, M * D);
  expectLength('ia3 l', l, D);
  const y = like(x, M * D);
  for (let m = 0; m < M; m++) for (let d = 0; d < D; d++) y[m * D + d] = x[m * D + d]! * l[d]!;
  return y;
}

export function ia3ScaleBackward<T extends Floats>(
  x: Floats,
  l: Floats,
  dy: T,
  M: number,
  D: number,
  need: { dx?: boolean; dl?: boolean },
): { dx?: T; dl?: T } {
  expectLength('ia3 dy', dy, M * D);
  const out: { dx?: T; dl?: T } = {};
  if (need.dx) out.dx = ia3ScaleForward(dy, l, M, D);
  if (need.dl) {
    const dl = like(dy, D);
    for (let d = 0; d < D; d++) {
      let acc = 0;
      for (let m = 0; m < M; m++) acc += dy[m * D + d]! * x[m * D + d]!;
      dl[d] = acc;
    }
    out.dl = dl;
  }
  return out;
}

/** Input form: (x ⊙ l) Wᵀ + b; keeps x and the scaled input xs. */
export function ia3InputForward<T extends Floats>(
  x: T,
  l: Floats,
  w: Floats,
  bias: Floats | undefined,
  s: LinearShape,
): { y: T; xs: T } {
  const xs = ia3ScaleForward(x, l, s.M, s.K);
  return { y: linearForward(xs, w, bias, s), xs };
}

export function ia3InputBackward<T extends Floats>(
  x: Floats,
  l: Floats,
  w: Floats,
  dy: T,
  s: LinearShape,
  need: { dx?: boolean; dl?: boolean },
): { dx?: T; dl?: T } {
  const g = linearBackward(x, w, dy, s, { dx: true }).dx!;
  return ia3ScaleBackward(x, l, g, s.M, s.K, need);
}

/** Output form: the base output y (bias included) scaled by l [out]. */
export const ia3OutputForward = ia3ScaleForward;
export const ia3OutputBackward = ia3ScaleBackward;
