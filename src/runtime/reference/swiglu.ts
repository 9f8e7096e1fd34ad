// SwiGLU on a fused projection, as chatglm2's MLP: x [M,2F] → y [M,F],
// y = silu(x[:, :F]) ⊙ x[:, F:]. (llama's separate gate/up projections use the elementwise silu
// and mul instead.) Backward keeps x.

import { expectLength, like, type Floats } from './floats.js';

const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));

export function swigluForward<T extends Floats>(x: T, M: number, F: number): T {
  expectLength('swiglu x', x, M * 2 * F);
  const y = like(x, M * F);
  for (let m = 0; m < M; m++) {
    for (let f = 0; f < F; f++) {
      const g = x[m * 2 * F + f]!;
      y[m * F + f] = g * sigmoid(g) * x[m * 2 * F + F + f]!;
    }
  }
  return y;
}

export function swigluBackward<T extends Floats>(x: Floats, dy: T, M: number, F: number): T {
  expectLength('swiglu x', x, M * 2 * F);
  expectLength('swiglu dy', dy, M * F);
  const dx = like(dy, M * 2 * F);
  for (let m = 0; m < M; m++) {
    for (let f = 0; f < F; f++) {
      const g = x[m * 2 * F + f]!;
      const u = x[m * 2 * F + F + f]!;
      const s = sigmoid(g);
      const d = dy[m * F + f]!;
      dx[m * 2 * F + f] = d * u * s * (1 + g * (1 - s));
      dx[m * 2 * F + F + f] = d * g * s;
    }
  }
  return dx;
}
