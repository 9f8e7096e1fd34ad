// Sums of squares without atomics, deterministic: a workgroup folds its elements in registers,
// then a tree in workgroup memory; the one invocation left writes or adds one number. Adding into
// a running total is safe because kernels of one op run in order. Shared by clip_grad_norm (per
// tensor and packed) and the AdaLoRA regulariser.

import { treeTop } from "../common.js";

export const REDUCE_THREADS = 256;

/** Workgroup memory for the tree. */
export const TREE_VAR = `red: array<f32, ${REDUCE_THREADS}>`;

/**
 * Statements that tree-reduce the f32 `part` of every invocation; afterwards `red[0]` holds the
 * workgroup's sum (valid in every invocation after the final barrier). `bound` names any storage
 * binding of the module (see treeTop).
 */
export const treeReduce = (bound: string): string => `
red[lid] = part;
workgroupBarrier();
for (var w = ${treeTop(`${REDUCE_THREADS / 2}u`, bound)}; w > 0u; w >>= 1u) {
  if (lid < w) { red[lid] += red[lid + w]; }
  workgroupBarrier();
}`;
