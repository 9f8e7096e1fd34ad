// Optimizer steps, gradient clipping and gradient accumulation with PyTorch's exact semantics and
// operation order (torch.optim.SGD / Adam / AdamW, torch.nn.utils.clip_grad_norm_), so a GPU
// update kernel can be compared against them step by step. Parameters and state are updated in
// place; gradients are never modified except by clipping. Every tensor is a flat array.
//   SGD:   g' = g + wd·p; buf = g' on the first step, else momentum·buf + (1 − dampening)·g';
//          (nesterov: g' + momentum·buf, else buf); p −= lr·that
//   Adam:  g' = g + wd·p (L2);  AdamW: p *= 1 − lr·wd first (decoupled), g' = g
//          m = lerp(m, g', 1 − β1); v = β2·v + (1 − β2)·g'²; t += 1
//          step_size = lr / (1 − β1^t); denom = sqrt(v) / sqrt(1 − β2^t) + eps; p −= step_size·m/denom
// amsgrad, maximize and complex tensors are not modelled.

import { like, type Floats } from './floats.js';

export interface SgdOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

export interface SgdState<T extends Floats = Floats> {
  momentumBuffer?: T;
}

export function sgdStep<T extends Floats>(p: T, g: Floats, state: SgdState<T>, o: SgdOptions): void {
  const momentum = o.momentum ?? 0;
  const dampening = o.dampening ?? 0;
  const wd = o.weightDecay ?? 0;
  let buf = state.momentumBuffer;
  const first = buf === undefined;
  if (momentum !== 0 && !buf) buf = state.momentumBuffer = like(p, p.length);
  for (let i = 0; i < p.length; i++) {
    let d = g[i]!;
    if (wd !== 0) d += wd * p[i]!;
    if (momentum !== 0 && buf) {
      buf[i] = first ? d : momentum * buf[i]! + (1 - dampening) * d;
      d = o.nesterov ? d + momentum * buf[i]! : buf[i]!;
    }
    p[i] = p[i]! - o.lr * d;
  }
}

export interface AdamOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** true: AdamW (decoupled weight decay); false: Adam (L2 added to the gradient). */
  decoupled: boolean;
}

export interface AdamState<T extends Floats = Floats> {
  step: number;
  m: T;
  v: T;
}

export function adamInit<T extends Floats>(p: T): AdamState<T> {
  return { step: 0, m: like(p, p.length), v: like(p, p.length) };
}

/** torch.lerp: start + w·(end − start) for w < 0.5, else end − (end − start)·(1 − w). */
function lerp(start: number, end: number, w: number): number {
  return w < 0.5 ? start + w * (end - start) : end - (end - start) * (1 - w);
}

export function adamStep<T extends Floats>(p: T, g: Floats, state: AdamState<T>, o: AdamOptions): void {
  const beta1 = o.beta1 ?? 0.9;
  const beta2 = o.beta2 ?? 0.999;
  const eps = o.eps ?? 1e-8;
  const wd = o.weightDecay ?? 0;
  state.step += 1;
  const bc1 = 1 - Math.pow(beta1, state.step);
  const bc2 = 1 - Math.pow(beta2, state.step);
  const stepSize = o.lr / bc1;
  const bc2Sqrt = Math.sqrt(bc2);
  const { m, v } = state;
  for (let i = 0; i < p.length; i++) {
    let grad = g[i]!;
    if (wd !== 0) {
      if (o.decoupled) p[i] = p[i]! * (1 - o.lr * wd);
      else grad += wd * p[i]!;
    }
    m[i] = lerp(m[i]!, grad, 1 - beta1);
    v[i] = v[i]! * beta2 + (1 - beta2) * grad * grad;
    const denom = Math.sqrt(v[i]!) / bc2Sqrt + eps;
    p[i] = p[i]! - stepSize * (m[i]! / denom);
  }
}

/**
 * torch.nn.utils.clip_grad_norm_: the norm over all gradients together; every gradient is
 * multiplied by min(1, maxNorm / (total + 1e-6)). Returns the total norm before clipping.
 */
export function clipGradNorm(grads: readonly Floats[], maxNorm: number, normType: 2 | 'inf' = 2): number {
  let total = 0;
  if (normType === 'inf') {
    for (const g of grads) for (let i = 0; i < g.length; i++) total = Math.max(total, Math.abs(g[i]!));
  } else {
    let ss = 0;
    for (const g of grads) for (let i = 0; i < g.length; i++) ss += g[i]! * g[i]!;
    total = Math.sqrt(ss);
  }
  const coef = Math.min(maxNorm / (total + 1e-6), 1);
  for (const g of grads) for (let i = 0; i < g.length; i++) g[i] = g[i]! * coef;
  return total;
}

/** acc += scale · g, elementwise (one micro-batch's contribution). */
export function addScaled(acc: Floats, g: Floats, scale: number): void {
  if (acc.length !== g.length) throw new Error(`reference: accumulate ${g.length} into ${acc.length}`);
  for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! + scale * g[i]!;
}

/**
 * Gradient accumulation as the Hugging Face Trainer does it: each micro-batch's loss is divided by
 * the number of accumulation steps, so the step's gradient is the sum of micro-batch gradients
 * divided by that number. `micro[i][j]` is micro-batch i's gradient for tensor j.
 */
export function accumulateGradients<T extends Floats>(micro: readonly (readonly T[])[], accumSteps = micro.length): T[] {
  const first = micro[0];
  if (!first) throw new Error('reference: no micro-batches to accumulate');
  const out = first.map((g) => like(g, g.length));
  for (const grads of micro) grads.forEach((g, j) => addScaled(out[j]!, g, 1 / accumSteps));
  return out;
}
