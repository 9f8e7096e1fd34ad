// Entry to the matmul family: one function that picks the generator for a named variant.

import type { DeviceCaps } from "../caps.js";
import type { KernelSpec } from "../kernel.js";
import type { MatmulProblem, MatmulVariant, RegisterTuning, TiledTuning } from "./problem.js";
import { registerMatmul } from "./register.js";
import { tiledMatmul } from "./tiled.js";

export * from "./problem.js";
export { registerMatmul, defaultRegisterTuning, DEFAULT_REGISTER_TUNING } from "./register.js";
export { tiledMatmul, DEFAULT_TILED_TUNING } from "./tiled.js";

export interface MatmulTuning {
  register?: RegisterTuning;
  tiled?: TiledTuning;
}

export function matmulKernel(p: MatmulProblem, variant: MatmulVariant, caps: DeviceCaps, tuning: MatmulTuning = {}): KernelSpec {
  switch (variant) {
    case "register":
      return registerMatmul(p, caps, tuning.register);
    case "tiled":
      return tiledMatmul(p, caps, tuning.tiled);
  }
}
