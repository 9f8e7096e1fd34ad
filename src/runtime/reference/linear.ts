// Linear layer y = x Wᵀ + b as torch.nn.Linear, or y = x W + b for GPT-2's Conv1D (`transposed`).
// Shapes: x [M,K]; w [N,K] (torch) or [K,N] (transposed); bias [N]; y [M,N].
// Backward keeps x (for dW) and w (for dx); each gradient is computed only when asked for, since
// frozen weights get no dW and the first trainable layer needs no dx.

import { expectLength, like, type Floats } from './floats.js';

export interface LinearShape {
  M: number;
  K: number;
  N: number;
  /** w stored [K,N] (GPT-2 Conv1D) instead of [N,K]. */
  transposed?: boolean;
}

export function linearForward<T extends Floats>(x: T, w: Floats, bias: Floats | undefined, s: LinearShape): T {
  const { M, K, N } = s;
  expectLength('linear x', x, M * K);
  expectLength('linear w', w, N * K);
  if (bias) expectLength('linear bias', bias, N);
  // Element w[n,k] lives at n*sn + k*sk.
  const sn = s.transposed ? 1 : K;
  const sk = s.transposed ? N : 1;
  const y = like(x, M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let acc = bias ? bias[n]! : 0;
      for (let k = 0; k < K; k++) acc += x[m * K + k]! * w[n * sn + k * sk]!;
      y[m * N + n] = acc;
    }
  }
  return y;
}

export interface LinearNeeds {
  dx?: boolean;
  dw?: boolean;
  db?: boolean;
}

export interface LinearGrads<T extends Floats> {
  dx?: T;
  /** Same layout as w. */
  dw?: T;
  db?: T;
}

export function linearBackward<T extends Floats>(
  x: Floats,
  w: Floats,
  dy: T,
  s: LinearShape,
  need: LinearNeeds,
): LinearGrads<T> {
  const { M, K, N } = s;
  expectLength('linear x', x, M * K);
  expectLength('linear w', w, N * K);
  expectLength('linear dy', dy, M * N);
  const sn = s.transposed ? 1 : K;
  const sk = s.transposed ? N : 1;
  const out: LinearGrads<T> = {};
  if (need.dx) {
    const dx = like(dy, M * K);
    for (let m = 0; m < M; m++) {
      for (let k = 0; k < K; k++) {
        let acc = 0;
        for (let n = 0; n < N; n++) acc += dy[m * N + n]! * w[n * sn + k * sk]!;
        dx[m * K + k] = acc;
      }
    }
    out.dx = dx;
  }
  if (need.dw) {
    const dw = like(dy, N * K);
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < K; k++) {
        let acc = 0;
        for (let m = 0; m < M; m++) acc += dy[m * N + n]! * x[m * K + k]!;
        dw[n * sn + k * sk] = acc;
      }
    }
    out.dw = dw;
  }
  if (need.db) {
    const db = like(dy, N);
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let m = 0; m < M; m++) acc += dy[m * N + n]!;
      db[n] = acc;
    }
    out.db = db;
  }
  return out;
}
