/**
 * `pefc compile FILE --emit wgsl|plan`: the Program for the spec at its batch size and longest
 * sequence (--seq, or the data's length budget), for a device with the WebGPU baseline limits
 * (shader-f16 assumed when the spec asks for precision f16) and the register matmul variant. The
 * runtime builds the same Program for its own device, whose limits and variant may differ.
 */
import type { Spec } from "../../../check/spec.js";
import { BASELINE_CAPS } from "../caps.js";
import { buildProgram } from "./build.js";
import { dispatchesPerStep, programPlan, programWgsl } from "./describe.js";

import type { Graph } from "../../../ir/index.js";

export function defaultSeq(spec: Spec): number {
  const l = spec.data.train?.lengths;
  if (!l) return 128;
  return "maxLength" in l ? l.maxLength : l.maxSource + l.maxTarget;
}

export function emitProgram(spec: Spec, train: Graph, evalGraph: Graph, what: "wgsl" | "plan", seq: number): string {
  const f16 = spec.train.precision === "f16";
  const p = buildProgram(train, evalGraph, { B: spec.train.batch, T: seq, caps: { ...BASELINE_CAPS, f16 }, matmul: "register", f16Weights: f16 });
  if (what === "wgsl") return programWgsl(p);
  return `${programPlan(p)}\n\ndispatches per optimizer step (grad_accum ${spec.train.gradAccum}): ${dispatchesPerStep(p, spec.train.gradAccum)}`;
}
