// Causal-LM cross-entropy as Hugging Face computes it: logits [B,T,V], labels [B,T] (Int32Array),
// position t is scored against label t+1 (the shift happens here), labels of −100 are ignored,
// and the mean is over counted tokens (0/0 = NaN when none counts, as torch). The `sum`/`count`
// pair is what gradient accumulation over micro-batches adds up. Softmax is in float64 with the
// row max subtracted. Backward keeps logits and labels and recomputes the softmax:
// dlogits[b,t] = g · (softmax(logits[b,t]) − onehot(label[b,t+1])) on counted rows, 0 elsewhere,
// with g = dLoss/count for the mean and g = dSum for the sum.

import { expectLength, like, type Floats } from './floats.js';

export const IGNORE_INDEX = -100;

export interface LossShape {
  B: number;
  T: number;
  V: number;
}

function target(labels: Int32Array, s: LossShape, b: number, t: number): number {
  if (t + 1 >= s.T) return IGNORE_INDEX;
  const y = labels[b * s.T + t + 1]!;
  if (y !== IGNORE_INDEX && !(y >= 0 && y < s.V)) throw new Error(`reference: label ${y} outside [0, ${s.V})`);
  return y;
}

/** The row max and log Σ exp(x − max), kept apart so that x − max stays exact. */
function logSumExp(logits: Floats, off: number, V: number): { max: number; logSum: number } {
  let max = -Infinity;
  for (let i = 0; i < V; i++) max = Math.max(max, logits[off + i]!);
  let sum = 0;
  for (let i = 0; i < V; i++) sum += Math.exp(logits[off + i]! - max);
  return { max, logSum: Math.log(sum) };
}

/** Summed token losses and the number of counted tokens. */
export function causalLmLossSumCount(logits: Floats, labels: Int32Array, s: LossShape): { sum: number; count: number } {
  expectLength('loss logits', logits, s.B * s.T * s.V);
  expectLength('loss labels', labels, s.B * s.T);
  let sum = 0;
  let count = 0;
  for (let b = 0; b < s.B; b++) {
    for (let t = 0; t < s.T; t++) {
      const y = target(labels, s, b, t);
      if (y === IGNORE_INDEX) continue;
      const off = (b * s.T + t) * s.V;
      const { max, logSum } = logSumExp(logits, off, s.V);
      sum += max - logits[off + y]! + logSum;
      count++;
    }
  }
  return { sum, count };
}

export function causalLmLossForward(logits: Floats, labels: Int32Array, s: LossShape): { loss: number; sum: number; count: number } {
  const { sum, count } = causalLmLossSumCount(logits, labels, s);
  return { loss: sum / count, sum, count };
}

function lossGrad<T extends Floats>(logits: T, labels: Int32Array, s: LossShape, g: number): T {
  expectLength('loss logits', logits, s.B * s.T * s.V);
  expectLength('loss labels', labels, s.B * s.T);
  const d = like(logits, logits.length);
  for (let b = 0; b < s.B; b++) {
    for (let t = 0; t < s.T; t++) {
      const y = target(labels, s, b, t);
      if (y === IGNORE_INDEX) continue;
      const off = (b * s.T + t) * s.V;
      const { max, logSum } = logSumExp(logits, off, s.V);
      for (let i = 0; i < s.V; i++) d[off + i] = g * Math.exp(logits[off + i]! - max - logSum);
      d[off + y] = d[off + y]! - g;
    }
  }
  return d;
}

/** Gradient of the mean loss; `dLoss` is the upstream gradient (1 for a plain loss). */
export function causalLmLossBackward<T extends Floats>(logits: T, labels: Int32Array, s: LossShape, dLoss = 1): T {
  const { count } = causalLmLossSumCount(logits, labels, s);
  return lossGrad(logits, labels, s, count > 0 ? dLoss / count : 0);
}

/** Gradient of the summed loss times `dSum` (e.g. 1/total tokens over all micro-batches). */
export function causalLmLossSumBackward<T extends Floats>(logits: T, labels: Int32Array, s: LossShape, dSum = 1): T {
  return lossGrad(logits, labels, s, dSum);
}
