// Masking to the budget without sorting. θ is the k-th smallest of all n scores (k = init_bgt −
// budget); S_i ≤ θ exactly when fewer than k scores are strictly below S_i, so each triplet decides
// alone: keep_i = (#{j : S_j < S_i} ≥ k), which keeps everything when k = 0 and masks ties with θ
// together, as the reference's S ≤ θ does. O(n) per triplet; n is the total rank (thousands at
// most) and masking steps are every Δt steps. Per matrix, because each matrix's E is its own
// binding: bindings scores (the whole score buffer), own (this matrix's segment), sched (k in
// sched[0]), keep (this matrix's segment of the keep buffer, 1 = kept), e (its lora_E).

import type { DeviceCaps } from "../../caps.js";
import type { KernelSpec } from "../../kernel.js";
import { mapKernel } from "../common.js";

export function adaloraMaskKernel(r: number, scoreElements: number, caps: DeviceCaps): KernelSpec {
  return mapKernel({
    label: `adalora_mask_${r}_of_${scoreElements}`,
    caps,
    bindings: [
      { name: "scores", dtype: "f32", access: "read" },
      { name: "own", dtype: "f32", access: "read" },
      { name: "sched", dtype: "u32", access: "read" },
      { name: "keep", dtype: "u32", access: "read_write" },
      { name: "e", dtype: "f32", access: "read_write" },
    ],
    n: r,
    consts: { TOTAL: scoreElements },
    body: `
let s = own[i];
var below = 0u;
for (var j = 0u; j < TOTAL; j++) {
  if (scores[j] < s) { below += 1u; }
}
let kept = below >= sched[0];
keep[i] = select(0u, 1u, kept);
if (!kept) { e[i] = 0.0; }`,
    flops: r * scoreElements,
  });
}

/** E_i := 0 where the stored keep-mask says pruned (the steps after the final masking). */
export function adaloraReapplyKernel(r: number, caps: DeviceCaps): KernelSpec {
  return mapKernel({
    label: `adalora_reapply_${r}`,
    caps,
    bindings: [
      { name: "keep", dtype: "u32", access: "read" },
      { name: "e", dtype: "f32", access: "read_write" },
    ],
    n: r,
    body: `if (keep[i] == 0u) { e[i] = 0.0; }`,
  });
}
