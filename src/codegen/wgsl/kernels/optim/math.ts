// The WGSL text of the update rules, written once and shared by the per-tensor kernels and the
// fused one, in torch's operation order (src/runtime/reference/optim.ts). lr and step are read
// from buffers the runtime writes each step; the bias corrections 1 − βᵗ are computed as
// −expm1(t·ln β), so early steps (1 − 0.999¹ = 0.001) keep f32's full relative precision where
// 1 − pow(β, t) would lose about four digits to cancellation.

import { f32 } from "../../render.js";

export interface AdamHyper {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** AdamW: decoupled decay p·(1 − lr·wd) before the moments; Adam adds wd·p to the gradient. */
  decoupled: boolean;
}

export interface SgdHyper {
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

/** `fn one_minus_pow(ln_beta, t)`: 1 − βᵗ for t ≥ 1 given ln β. */
export const ONE_MINUS_POW = `
fn one_minus_pow(ln_beta: f32, t: f32) -> f32 {
  let x = t * ln_beta;
  if (x > -0.5) {
    // −expm1(x) by its Taylor series in Horner form; 9 terms reach f32 precision for |x| ≤ 0.5.
    var e = 1.0 + x / 9.0;
    e = 1.0 + x / 8.0 * e;
    e = 1.0 + x / 7.0 * e;
    e = 1.0 + x / 6.0 * e;
    e = 1.0 + x / 5.0 * e;
    e = 1.0 + x / 4.0 * e;
    e = 1.0 + x / 3.0 * e;
    e = 1.0 + x / 2.0 * e;
    return -x * e;
  }
  return 1.0 - exp(x);
}`;

/** WGSL expression of 1 − βᵗ for a baked β and a runtime step `t`. */
export function biasCorrection(beta: number, t: string): string {
  if (!(beta >= 0 && beta < 1)) throw new Error(`adam: beta ${beta} outside [0, 1)`);
  return beta === 0 ? "1.0" : `one_minus_pow(${f32(Math.log(beta))}, ${t})`;
}

export function checkAdam(h: AdamHyper): void {
  for (const [k, x] of Object.entries({ eps: h.eps, weight_decay: h.weightDecay }))
    if (!Number.isFinite(x) || x < 0) throw new Error(`adam: ${k} ${x} must be finite and ≥ 0`);
  biasCorrection(h.beta1, "t");
  biasCorrection(h.beta2, "t");
}

/**
 * Statements that define `step_size` and `bc2_sqrt` from `lr` and `t` (f32 lets in scope).
 * step_size = lr / (1 − β1ᵗ); bc2_sqrt = sqrt(1 − β2ᵗ).
 */
export function adamScalars(h: AdamHyper): string {
  return `let step_size = lr / ${biasCorrection(h.beta1, "t")};
let bc2_sqrt = sqrt(${biasCorrection(h.beta2, "t")});`;
}

/**
 * Statements updating `p`, `m`, `v` (f32 vars) from `grad` (f32 var) with `lr`, `step_size`,
 * `bc2_sqrt` in scope; `wd` is the weight-decay expression (a literal, or a per-segment lookup).
 */
export function adamElement(h: AdamHyper, wd: string | number): string {
  const w1 = 1 - h.beta1;
  const lines: string[] = [];
  if (wd !== 0) {
    const w = typeof wd === "number" ? f32(wd) : wd;
    lines.push(h.decoupled ? `p = p * (1.0 - lr * ${w});` : `grad = grad + ${w} * p;`);
  }
  // torch.lerp(m, grad, 1 − β1): the formula switches at weight 0.5.
  lines.push(w1 < 0.5 ? `m = m + ${f32(w1)} * (grad - m);` : `m = grad - (grad - m) * (1.0 - ${f32(w1)});`);
  lines.push(`v = v * ${f32(h.beta2)} + ${f32(1 - h.beta2)} * grad * grad;`);
  lines.push(`let denom = sqrt(v) / bc2_sqrt + ${f32(h.eps)};`);
  lines.push(`p = p - step_size * (m / denom);`);
  return lines.join("\n");
}

/**
 * Statements updating `p` (and `buf` with momentum) from `d` (f32 var, the gradient) with `lr`
 * and `t` in scope; torch starts the momentum buffer from the first step's gradient.
 */
export function sgdElement(h: SgdHyper, wd: string | number): string {
  const lines: string[] = [];
  if (wd !== 0) lines.push(`d = d + ${typeof wd === "number" ? f32(wd) : wd} * p;`);
  if (h.momentum !== 0) {
    lines.push(`buf = select(${f32(h.momentum)} * buf + ${f32(1 - h.dampening)} * d, d, t <= 1.0);`);
    lines.push(h.nesterov ? `d = d + ${f32(h.momentum)} * buf;` : `d = buf;`);
  }
  lines.push(`p = p - lr * d;`);
  return lines.join("\n");
}
