/**
 * The parameters a decode step reads: the model's and the adapter's, plus the constants its setup
 * graph computes from them once (prefix keys/values, prompt rows), on the CPU reference executor
 * in f32, as the reference decoder computes them. Weights named in `streamed` may be missing from
 * `params` (the setup's own excepted): the uploader reads them one at a time.
 */
import type { DecodeStep } from "../../codegen/wgsl/decode/step-graph.js";
import { runGraph } from "../reference/executor.js";

export function stepParams(step: DecodeStep, params: ReadonlyMap<string, Float32Array>, streamed: ReadonlySet<string> = new Set()): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  if (step.setup.outputs.length) {
    const vals = runGraph(step.setup, { params, dims: { B: 1, T: 1 }, dtype: "f32" });
    for (const name of step.setup.outputs) out.set(name, Float32Array.from(vals.get(name)!.data));
  }
  for (const p of step.graph.params) {
    if (out.has(p.name)) continue;
    const v = params.get(p.name);
    if (v) out.set(p.name, v);
    else if (!streamed.has(p.name)) throw new Error(`decode: no value for parameter ${p.name}`);
  }
  return out;
}
