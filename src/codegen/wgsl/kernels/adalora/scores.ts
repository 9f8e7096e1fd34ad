// Triplet scores of one matrix: with s = Ī·Ū per element,
//   S_i = s(E_i) + mean_j s(A_ij) + mean_j s(B_ji),   A [r,in], E [r], B [out,r].
// One workgroup per triplet i folds the row of A and the column of B (tree sums in workgroup
// memory), then writes S_i. Bindings: ema (the matrix's whole EMA buffer, read), scores (the
// matrix's segment of the score buffer).

import type { DeviceCaps } from "../../caps.js";
import type { KernelSpec } from "../../kernel.js";
import { kernel, RED_VAR, rowWorkgroup, wgSum } from "../common.js";
import type { AllocMatrixLayout } from "./layout.js";

export function adaloraScoreKernel(m: AllocMatrixLayout, caps: DeviceCaps): KernelSpec {
  const { r, inF, outF } = m.shape;
  const { A, E, B } = m.parts;
  return kernel({
    label: `adalora_scores_${r}x${inF}x${outF}`,
    caps,
    bindings: [
      { name: "ema", dtype: "f32", access: "read" },
      { name: "scores", dtype: "f32", access: "read_write" },
    ],
    workgroupSize: rowWorkgroup(Math.max(inF, outF), 64),
    groups: r,
    consts: { R: r, IN: inF, OUT: outF, A_AT: A.at, A_N: A.count, E_AT: E.at, B_AT: B.at, B_N: B.count },
    helpers: wgSum("scores"),
    workgroupVars: [RED_VAR],
    body: `
let i = group;
var a = 0.0;
for (var j = lid; j < IN; j += WG) {
  let e = A_AT + i * IN + j;
  a += ema[e] * ema[e + A_N];
}
let sum_a = wg_sum(a, lid);
var b = 0.0;
for (var j = lid; j < OUT; j += WG) {
  let e = B_AT + j * R + i;
  b += ema[e] * ema[e + B_N];
}
let sum_b = wg_sum(b, lid);
if (lid == 0u) {
  scores[i] = ema[E_AT + i] * ema[E_AT + R + i] + sum_a / f32(IN) + sum_b / f32(OUT);
}`,
    flops: 2 * r * (inF + outF + 2),
  });
}
