/**
 * `layers[...]` elements with Python's meaning over the layer indices 0..n-1: a single index (negative
 * from the end), or start:stop:step, half-open, negatives from the end, out-of-range bounds clamped,
 * negative steps walking backwards. An index out of range selects nothing rather than raising, so the
 * caller can report it as an empty slice.
 */
import type { LayerSlice } from "../parser/ast.js";

/** The layer indices an element selects, in slice order; a reason when the slice itself is invalid. */
export function sliceIndices(s: LayerSlice, n: number): number[] | string {
  if (s.kind === "index") {
    const i = s.index < 0 ? s.index + n : s.index;
    return i >= 0 && i < n ? [i] : [];
  }
  const step = s.step ?? 1;
  if (step === 0) return "the step cannot be zero";
  const out: number[] = [];
  if (step > 0) {
    const start = clamp(norm(s.start, n, 0), 0, n);
    const stop = clamp(norm(s.stop, n, n), 0, n);
    for (let i = start; i < stop; i += step) out.push(i);
  } else {
    const start = clamp(norm(s.start, n, n - 1), -1, n - 1);
    const stop = s.stop === undefined ? -1 : clamp(norm(s.stop, n, -1), -1, n - 1);
    for (let i = start; i > stop; i += step) out.push(i);
  }
  return out;
}

/** How the element was written, for messages: `[30:]`, `[-2]`, `[::2]`. */
export function sliceText(s: LayerSlice): string {
  if (s.kind === "index") return `[${s.index}]`;
  const part = (v: number | undefined) => (v === undefined ? "" : String(v));
  const step = s.step === undefined ? "" : `:${s.step}`;
  return `[${part(s.start)}:${part(s.stop)}${step}]`;
}

/** `[0, 3:5]`: the whole `layers[...]` list, for messages. */
export function slicesText(slices: readonly LayerSlice[]): string {
  return `[${slices.map((s) => sliceText(s).slice(1, -1)).join(", ")}]`;
}

function norm(v: number | undefined, n: number, dflt: number): number {
  if (v === undefined) return dflt;
  return v < 0 ? v + n : v;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
