// The sensitivity EMAs of one part (A, E or B) of one matrix, one invocation per element:
//   I = |w·g|;  Ī = β1·Ī + (1−β1)·I;  Ū = β2·Ū + (1−β2)·|I − Ī|  (with the new Ī).
// Bindings: w (the parameter), g (its gradient, clipped when the run clips), ema (the part's range
// of the EMA buffer: Ī then Ū). A part with no gradient has I = 0, as the reference's zero
// gradient gives: that variant binds no g.

import type { DeviceCaps } from "../../caps.js";
import type { KernelSpec } from "../../kernel.js";
import { f32 } from "../../render.js";
import { mapKernel, type BindingDecl } from "../common.js";

export function adaloraEmaKernel(count: number, beta1: number, beta2: number, hasGrad: boolean, caps: DeviceCaps): KernelSpec {
  const bindings: BindingDecl[] = [{ name: "w", dtype: "f32", access: "read" }];
  if (hasGrad) bindings.push({ name: "g", dtype: "f32", access: "read" });
  bindings.push({ name: "ema", dtype: "f32", access: "read_write" });
  return mapKernel({
    label: `adalora_ema_${count}${hasGrad ? "" : "_nograd"}`,
    caps,
    bindings,
    n: count,
    // 1 − β is formed here in float64, as the reference forms it.
    consts: { B1: f32(beta1), C1: f32(1 - beta1), B2: f32(beta2), C2: f32(1 - beta2) },
    body: `
let sens = ${hasGrad ? "abs(w[i] * g[i])" : "abs(w[i] * 0.0)"};
let ipt = B1 * ema[i] + C1 * sens;
ema[i] = ipt;
ema[N + i] = B2 * ema[N + i] + C2 * abs(sens - ipt);`,
    flops: 9 * count,
  });
}
