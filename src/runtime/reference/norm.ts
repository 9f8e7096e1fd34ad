// Row normalisations over the last axis. Shapes: x [M,D], w [D], b [D] → y [M,D].
// RMSNorm (llama, chatglm2): y = x · rsqrt(mean(x²) + eps) · w.
// LayerNorm (gpt2): y = (x − mean) · rsqrt(var + eps) · w + b, with the biased variance.
// Backward keeps x and the per-row statistics the forward returns (rstd, and mean for
// LayerNorm), recomputing x̂ from them.

import { expectLength, like, type Floats } from './floats.js';

export interface NormNeeds {
  dx?: boolean;
  dw?: boolean;
  db?: boolean;
}

export function rmsnormForward<T extends Floats>(x: T, w: Floats, M: number, D: number, eps: number): { y: T; rstd: T } {
  expectLength('rmsnorm x', x, M * D);
  expectLength('rmsnorm w', w, D);
  const y = like(x, M * D);
  const rstd = like(x, M);
  for (let m = 0; m < M; m++) {
    let ss = 0;
    for (let d = 0; d < D; d++) ss += x[m * D + d]! ** 2;
    const r = 1 / Math.sqrt(ss / D + eps);
    rstd[m] = r;
    for (let d = 0; d < D; d++) y[m * D + d] = x[m * D + d]! * r * w[d]!;
  }
  return { y, rstd };
}

export function rmsnormBackward<T extends Floats>(
  x: Floats,
  w: Floats,
  rstd: Floats,
  dy: T,
  M: number,
  D: number,
  need: NormNeeds,
): { dx?: T; dw?: T } {
  expectLength('rmsnorm dy', dy, M * D);
  const dx = need.dx ? like(dy, M * D) : undefined;
  const dwAcc = need.dw ? new Float64Array(D) : undefined;
  for (let m = 0; m < M; m++) {
    const r = rstd[m]!;
    let dot = 0;
    for (let d = 0; d < D; d++) {
      const xh = x[m * D + d]! * r;
      const g = dy[m * D + d]!;
      dot += g * w[d]! * xh;
      if (dwAcc) dwAcc[d] = dwAcc[d]! + g * xh;
    }
    if (dx) {
      const mean = dot / D;
      for (let d = 0; d < D; d++) {
        const xh = x[m * D + d]! * r;
        dx[m * D + d] = r * (dy[m * D + d]! * w[d]! - xh * mean);
      }
    }
  }
  const out: { dx?: T; dw?: T } = {};
  if (dx) out.dx = dx;
  if (dwAcc) {
    const dw = like(dy, D);
    dw.set(dwAcc);
    out.dw = dw;
  }
  return out;
}

export function layernormForward<T extends Floats>(
  x: T,
  w: Floats,
  b: Floats | undefined,
  M: number,
  D: number,
  eps: number,
): { y: T; mean: T; rstd: T } {
  expectLength('layernorm x', x, M * D);
  expectLength('layernorm w', w, D);
  if (b) expectLength('layernorm b', b, D);
  const y = like(x, M * D);
  const mean = like(x, M);
  const rstd = like(x, M);
  for (let m = 0; m < M; m++) {
    let s = 0;
    for (let d = 0; d < D; d++) s += x[m * D + d]!;
    const mu = s / D;
    let ss = 0;
    for (let d = 0; d < D; d++) ss += (x[m * D + d]! - mu) ** 2;
    const r = 1 / Math.sqrt(ss / D + eps);
    mean[m] = mu;
    rstd[m] = r;
    for (let d = 0; d < D; d++) y[m * D + d] = (x[m * D + d]! - mu) * r * w[d]! + (b ? b[d]! : 0);
  }
  return { y, mean, rstd };
}

export function layernormBackward<T extends Floats>(
  x: Floats,
  w: Floats,
  mean: Floats,
  rstd: Floats,
  dy: T,
  M: number,
  D: number,
  need: NormNeeds,
): { dx?: T; dw?: T; db?: T } {
  expectLength('layernorm dy', dy, M * D);
  const dx = need.dx ? like(dy, M * D) : undefined;
  const dwAcc = need.dw ? new Float64Array(D) : undefined;
  const dbAcc = need.db ? new Float64Array(D) : undefined;
  for (let m = 0; m < M; m++) {
    const mu = mean[m]!;
    const r = rstd[m]!;
    let sum = 0;
    let dot = 0;
    for (let d = 0; d < D; d++) {
      const xh = (x[m * D + d]! - mu) * r;
      const g = dy[m * D + d]!;
      const gh = g * w[d]!;
      sum += gh;
      dot += gh * xh;
      if (dwAcc) dwAcc[d] = dwAcc[d]! + g * xh;
      if (dbAcc) dbAcc[d] = dbAcc[d]! + g;
    }
    if (dx) {
      for (let d = 0; d < D; d++) {
        const xh = (x[m * D + d]! - mu) * r;
        dx[m * D + d] = r * (dy[m * D + d]! * w[d]! - sum / D - (xh * dot) / D);
      }
    }
  }
  const out: { dx?: T; dw?: T; db?: T } = {};
  if (dx) out.dx = dx;
  if (dwAcc) {
    out.dw = like(dy, D);
    out.dw.set(dwAcc);
  }
  if (dbAcc) {
    out.db = like(dy, D);
    out.db.set(dbAcc);
  }
  return out;
}
