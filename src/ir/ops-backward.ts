/**
 * Backward ops: what the autodiff pass emits. Each is the gradient of a forward op toward the
 * inputs training needs.
 */
import type { OpDef } from "./opdef.js";

export const BACKWARD_OPS: Readonly<Record<string, OpDef>> = {};
