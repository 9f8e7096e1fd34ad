// AdaLoRA's rank allocation as device kernels: PEFT's update_and_allocate after each optimizer
// update, with the math and step indexing of the reference (src/runtime/reference/rank-allocator.ts).
// Per step the runtime records, by what the budget schedule says for that step: the EMA update of
// every part of every matrix; on masking steps the triplet scores of every matrix, then per matrix
// the mask to the global budget; after the final masking, only the re-application of the stored
// keep-mask. The schedule itself is a function of the step count, computed on the host.

export * from "./layout.js";
export { adaloraEmaKernel } from "./ema.js";
export { adaloraScoreKernel } from "./scores.js";
export { adaloraMaskKernel, adaloraReapplyKernel } from "./mask.js";
