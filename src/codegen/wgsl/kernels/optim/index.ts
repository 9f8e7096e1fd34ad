// Optimizer-step kernels: per-tensor updates, gradient clipping, AdaLoRA's regulariser, and the
// fused update over packed arenas.

export * from "./math.js";
export * from "./update.js";
export * from "./clip.js";
export * from "./orth.js";
export * from "./fused.js";
