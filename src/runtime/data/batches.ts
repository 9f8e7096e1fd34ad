// Examples to padded batches. Each batch is as long as its longest example. Padding is on the
// right: real tokens keep positions 0..n-1 and, under the causal mask, never attend to a pad.
// (ChatGLM2's own collator pads on the left; since padded labels are -100, the loss differs only
// through position ids.) Arrays are row-major [B, T].

import { epochOrder } from "./order.js";
import { IGNORE_INDEX, type Example } from "./types.js";

export interface Batch {
  /** Rows B (the last batch of an epoch may be smaller unless dropLast). */
  size: number;
  /** Columns T: the longest example in the batch. */
  length: number;
  inputIds: Int32Array;
  labels: Int32Array;
  attentionMask: Int32Array;
  /** Real (unpadded) tokens. */
  tokens: number;
  /** Labels other than -100. */
  labelTokens: number;
  /** Targets a causal LM loss averages over: labels other than -100 at positions t >= 1 (labels shift left by one, as in Hugging Face). */
  lossTokens: number;
  sources: Example["source"][];
}

export interface BatchOptions {
  batch: number;
  seed: number;
  shuffle: boolean;
  epoch: number;
  /** Pad id of the tokenizer; 0 when it has none. */
  padId?: number;
  /** Drop a last batch smaller than `batch`; default false (Hugging Face's default too). */
  dropLast?: boolean;
}

export function makeBatches(examples: readonly Example[], opts: BatchOptions): Batch[] {
  if (!Number.isInteger(opts.batch) || opts.batch < 1) throw new Error(`makeBatches: batch size ${opts.batch} must be a positive integer`);
  const n = examples.length;
  const order = opts.shuffle ? epochOrder(n, opts.seed, opts.epoch) : Uint32Array.from({ length: n }, (_, i) => i);
  const out: Batch[] = [];
  for (let start = 0; start < n; start += opts.batch) {
    const rows = Array.from(order.subarray(start, Math.min(n, start + opts.batch)), (i) => examples[i]!);
    if (rows.length < opts.batch && opts.dropLast) break;
    out.push(padBatch(rows, opts.padId ?? 0));
  }
  return out;
}

export function padBatch(rows: readonly Example[], padId: number): Batch {
  const B = rows.length;
  let T = 0;
  for (const r of rows) T = Math.max(T, r.inputIds.length);
  const inputIds = new Int32Array(B * T).fill(padId);
  const labels = new Int32Array(B * T).fill(IGNORE_INDEX);
  const attentionMask = new Int32Array(B * T);
  let tokens = 0;
  let labelTokens = 0;
  let lossTokens = 0;
  rows.forEach((r, b) => {
    const n = r.inputIds.length;
    inputIds.set(r.inputIds, b * T);
    labels.set(r.labels, b * T);
    attentionMask.fill(1, b * T, b * T + n);
    tokens += n;
    for (let t = 0; t < n; t++) {
      if (r.labels[t] === IGNORE_INDEX) continue;
      labelTokens++;
      if (t >= 1) lossTokens++;
    }
  });
  return { size: B, length: T, inputIds, labels, attentionMask, tokens, labelTokens, lossTokens, sources: rows.map((r) => r.source) };
}
