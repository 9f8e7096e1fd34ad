/**
 * A micro-batch padded to the program's fixed [B, T] on the right: pad tokens 0, labels -100 (the
 * loss ignores them, and causal attention keeps earlier tokens from seeing them), whole pad rows
 * for a short last batch. Loss and gradients are those of the unpadded batch.
 */
import type { MicroBatch } from "../train/backend.js";

export const IGNORE_LABEL = -100;

export function padBatch(m: MicroBatch, B: number, T: number, padId = 0): MicroBatch {
  if (m.B > B || m.T > T) throw new Error(`gpu: batch [${m.B}, ${m.T}] exceeds the program's [${B}, ${T}]`);
  if (m.B === B && m.T === T) return m;
  const inputIds = new Int32Array(B * T).fill(padId);
  const labels = new Int32Array(B * T).fill(IGNORE_LABEL);
  for (let b = 0; b < m.B; b++) {
    inputIds.set(m.inputIds.subarray(b * m.T, (b + 1) * m.T), b * T);
    labels.set(m.labels.subarray(b * m.T, (b + 1) * m.T), b * T);
  }
  return { inputIds, labels, B, T, tokens: m.tokens, lossTokens: m.lossTokens };
}
