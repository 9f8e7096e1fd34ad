/**
 * Optimizer and training-step ops: gradient clipping, accumulation and parameter updates.
 */
import type { OpDef } from "./opdef.js";

export const OPTIMIZER_OPS: Readonly<Record<string, OpDef>> = {};
