/**
 * Choosing the next token from logits: greedy at temperature 0, else softmax(logits / T) cut to
 * the smallest set of tokens whose probability reaches top_p (nucleus sampling), drawn with a
 * seeded counter-based generator so a seed always gives the same text.
 */
import { streamKey, uniformAt } from "../reference/rng.js";

export interface SampleOptions {
  temperature: number;
  topP: number;
  seed: number;
}

export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

/** The token at generation step `step`. */
export function sampleToken(logits: ArrayLike<number>, step: number, o: SampleOptions): number {
  if (o.temperature <= 0) return argmax(logits);
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]!);
  const probs = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += probs[i] = Math.exp((logits[i]! - max) / o.temperature);
  const order = Array.from(probs.keys()).sort((a, b) => probs[b]! - probs[a]! || a - b);
  const keep: number[] = [];
  let mass = 0;
  for (const i of order) {
    keep.push(i);
    mass += probs[i]! / sum;
    if (mass >= o.topP) break;
  }
  const u = uniformAt(streamKey(o.seed, 0x5a17), step) * keep.reduce((a, i) => a + probs[i]!, 0);
  let acc = 0;
  for (const i of keep) {
    acc += probs[i]!;
    if (u < acc) return i;
  }
  return keep[keep.length - 1]!;
}
