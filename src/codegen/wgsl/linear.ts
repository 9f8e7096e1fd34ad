// Linear layers as matmul problems. x [..., K] flattens its leading dims into M rows; the weight
// is [N,K] as torch.nn.Linear stores it, or [K,N] for GPT-2's Conv1D (`transposed`), exactly as
// src/runtime/reference/linear.ts defines them. Backward: dX = dY·W needs only a layout change;
// dW = dYᵀ·X (torch) or Xᵀ·dY (Conv1D) reads dY or X as a transposed A, and may accumulate.

import type { DeviceCaps } from "./caps.js";
import type { KernelSpec } from "./kernel.js";
import { matmulKernel, type Epilogue, type MatmulTuning, type MatmulVariant } from "./matmul/index.js";

export interface LinearKernelShape {
  /** Rows of x: a count, or x's leading dims ([B, T]) which are flattened. */
  rows: number | readonly number[];
  K: number;
  N: number;
  /** w stored [K,N] (GPT-2 Conv1D) instead of [N,K]. */
  transposed?: boolean;
  /** w stored as f16 (frozen base weight); needs shader-f16. */
  weightF16?: boolean;
}

export function flattenRows(rows: number | readonly number[]): number {
  return typeof rows === "number" ? rows : rows.reduce((a, b) => a * b, 1);
}

/** y = x·Wᵀ (+ bias) (then epilogue). Bindings: x, w, [bias], y. */
export function linearForwardKernel(
  s: LinearKernelShape & { bias?: boolean; epilogue?: Epilogue },
  variant: MatmulVariant,
  caps: DeviceCaps,
  tuning?: MatmulTuning,
): KernelSpec {
  const M = flattenRows(s.rows);
  return matmulKernel(
    {
      M,
      N: s.N,
      K: s.K,
      aLayout: "mk",
      bLayout: s.transposed ? "kn" : "nk",
      bF16: s.weightF16,
      bias: s.bias,
      epilogue: s.epilogue,
      names: { a: "x", b: "w", c: "y", bias: "bias" },
      label: `linear_fwd_${variant}_${M}x${s.N}x${s.K}${s.transposed ? "_t" : ""}${s.weightF16 ? "_f16" : ""}`,
    },
    variant,
    caps,
    tuning,
  );
}

/** dX = dY·W. Bindings: dy, w, dx. */
export function linearBackwardInputKernel(
  s: LinearKernelShape & { accumulate?: boolean },
  variant: MatmulVariant,
  caps: DeviceCaps,
  tuning?: MatmulTuning,
): KernelSpec {
  const M = flattenRows(s.rows);
  // Reduction runs over N: W [N,K] is B stored [reduction, out] = "kn"; W [K,N] is "nk".
  return matmulKernel(
    {
      M,
      N: s.K,
      K: s.N,
      aLayout: "mk",
      bLayout: s.transposed ? "nk" : "kn",
      bF16: s.weightF16,
      accumulate: s.accumulate,
      names: { a: "dy", b: "w", c: "dx" },
      label: `linear_dx_${variant}_${M}x${s.K}x${s.N}${s.transposed ? "_t" : ""}${s.weightF16 ? "_f16" : ""}`,
    },
    variant,
    caps,
    tuning,
  );
}

/**
 * dW in w's own layout, summed over all rows (and over earlier calls when `accumulate`).
 * Bindings: dy, x, dw (torch layout) or x, dy, dw (Conv1D layout).
 */
export function linearBackwardWeightKernel(
  s: Omit<LinearKernelShape, "weightF16"> & { accumulate?: boolean },
  variant: MatmulVariant,
  caps: DeviceCaps,
  tuning?: MatmulTuning,
): KernelSpec {
  const rows = flattenRows(s.rows);
  const label = `linear_dw_${variant}_${s.N}x${s.K}x${rows}${s.transposed ? "_t" : ""}`;
  // torch: dW[N,K] = dYᵀ·X, A = dY stored [rows, N] ("km"), B = X stored [rows, K] ("kn").
  // Conv1D: dW[K,N] = Xᵀ·dY, A = X stored [rows, K] ("km"), B = dY stored [rows, N] ("kn").
  const p = s.transposed
    ? { M: s.K, N: s.N, names: { a: "x", b: "dy", c: "dw" } }
    : { M: s.N, N: s.K, names: { a: "dy", b: "x", c: "dw" } };
  return matmulKernel(
    { ...p, K: rows, aLayout: "km", bLayout: "kn", accumulate: s.accumulate, label },
    variant,
    caps,
    tuning,
  );
}
