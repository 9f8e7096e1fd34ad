/**
 * The stop for bad numbers: a NaN or infinite loss, gradient norm or trained value ends the run at
 * that step, before anything of it is saved, so the last checkpoint on disk is the last good one.
 * The diagnostic points at the train block, names the step and the last good checkpoint, and
 * says what usually helps.
 */
import { diag, DiagnosticsError } from "../../diagnostics/index.js";
import type { Spec } from "../../check/spec.js";
import type { StepOutcome } from "./backend.js";

const show = (x: number): string => (Number.isNaN(x) ? "NaN" : x > 0 ? "+Inf" : "-Inf");

/** What in a step's outcome is not finite, or undefined. */
export function nonFiniteOutcome(out: StepOutcome): string | undefined {
  if (!Number.isFinite(out.loss)) return `loss is ${show(out.loss)}`;
  if (out.gradNorm !== undefined && !Number.isFinite(out.gradNorm)) return `gradient norm is ${show(out.gradNorm)}`;
  return undefined;
}

/** The first trained tensor holding a value that is not finite, or undefined. */
export function nonFiniteValue(values: ReadonlyMap<string, Float32Array>): string | undefined {
  for (const [name, v] of values) {
    for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i]!)) return `parameter ${name} holds ${show(v[i]!)} (element ${i})`;
  }
  return undefined;
}

export function nonFiniteStop(spec: Spec, step: number, what: string, lr: number, lastGood: string | undefined, resumed: boolean): DiagnosticsError {
  const kept = lastGood ? `the last good checkpoint is ${lastGood}` : resumed ? "the checkpoint this run resumed from is unchanged" : "no checkpoint had been saved yet";
  const help = `try a lower lr (this step's was ${lr.toExponential(2)}), clip = 1.0 in the train block, a warmup, or precision = f32` + (lastGood ? `; then resume with --resume ${lastGood}` : "");
  return new DiagnosticsError([diag("P703", spec.file, spec.train.span ?? spec.model?.span, [step, what, kept], help)]);
}
