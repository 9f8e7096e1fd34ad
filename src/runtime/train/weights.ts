/**
 * Base weights for a compiled graph: seeded random weights for `builtin:` models, or the tensors
 * of a Hugging Face checkpoint folder (safetensors, sharded or not, F32/F16/BF16 widened to f32),
 * matched by name and shape against the graph's base parameters. A missing or misshapen tensor is
 * a UserError naming it.
 */
import type { ModelSpec } from "../../check/spec.js";
import type { Graph } from "../../ir/index.js";
import { initBuiltinWeights } from "../../models/builtin.js";
import { checkpointNames } from "../../models/checkpoint-names.js";
import type { ModelProfile } from "../../models/types.js";
import { openCheckpoint } from "../io/checkpoint.js";
import { UserError } from "../io/errors.js";

export async function loadBaseWeights(model: ModelSpec, profile: ModelProfile, graph: Graph): Promise<Map<string, Float32Array>> {
  const base = graph.params.filter((p) => p.origin === "base");
  if (model.builtin !== undefined) {
    const w = initBuiltinWeights(profile, model.seed);
    if (typeof w === "string") throw new UserError(`model "${model.source}": ${w}; use a checkpoint folder, or a small builtin (tiny-llama, tiny-chatglm2, tiny-gpt2) to run`);
    return w;
  }
  const ckpt = await openCheckpoint(profile.source);
  const names = checkpointNames(profile);
  const byParam = new Map<string, string>();
  for (const t of ckpt.tensors.keys()) {
    const n = names.lookup(t);
    if (n?.kind === "param") byParam.set(n.name, t);
  }
  const out = new Map<string, Float32Array>();
  for (const p of base) {
    const t = byParam.get(p.name);
    if (t === undefined) throw new UserError(`${profile.source}: the checkpoint has no tensor ${p.name} (shape [${p.shape.join(", ")}]) that config.json implies; is config.json from the same model?`, { file: profile.source, tensor: p.name });
    const info = ckpt.get(t);
    if (info.shape.join(",") !== p.shape.join(",")) {
      throw new UserError(`${profile.source}: tensor ${t} has shape [${info.shape.join(", ")}], but config.json implies [${p.shape.join(", ")}]`, { file: profile.source, tensor: t });
    }
    out.set(p.name, await ckpt.readF32(t));
  }
  return out;
}
