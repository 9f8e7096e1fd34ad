/**
 * Base weights for a compiled graph: seeded random weights for `builtin:` models, or the tensors
 * of a Hugging Face checkpoint folder (safetensors or PyTorch .bin, sharded or not, F32/F16/BF16), matched by name
 * and shape against the graph's base parameters. Opening checks every name and shape from the
 * headers alone (a missing or misshapen tensor is a UserError naming it); the data is read one
 * tensor at a time when asked (and converted to the precision asked for as it is read), so a
 * device can be filled without the model, or even a widened copy of one tensor, in host memory.
 */
import type { ModelSpec } from "../../check/spec.js";
import type { Graph } from "../../ir/index.js";
import { initBuiltinWeights } from "../../models/builtin.js";
import { checkpointNames } from "../../models/checkpoint-names.js";
import type { ModelProfile } from "../../models/types.js";
import { openCheckpoint } from "../io/checkpoint.js";
import { UserError } from "../io/errors.js";
import { f32ArrayToF16 } from "../io/half.js";

export interface BaseWeights {
  /** The graph's base parameters, every one present in the source with the graph's shape. */
  readonly names: readonly string[];
  /** One tensor widened to f32. */
  readF32(name: string): Promise<Float32Array>;
  /** One tensor as f16 bits: F16 data as stored, anything else rounded to nearest even. */
  readF16(name: string): Promise<Uint16Array>;
  /** Every tensor as f32 (the CPU reference and merging need them all). */
  loadAll(): Promise<Map<string, Float32Array>>;
}

function inMemory(w: ReadonlyMap<string, Float32Array>, names: readonly string[]): BaseWeights {
  const get = (n: string): Float32Array => {
    const v = w.get(n);
    if (!v) throw new Error(`base weights: no tensor ${n}`);
    return v;
  };
  return {
    names,
    readF32: async (n) => get(n),
    readF16: async (n) => f32ArrayToF16(get(n)),
    loadAll: async () => new Map(names.map((n) => [n, get(n)])),
  };
}

export async function openBaseWeights(model: ModelSpec, profile: ModelProfile, graph: Graph): Promise<BaseWeights> {
  const base = graph.params.filter((p) => p.origin === "base");
  const names = base.map((p) => p.name);
  if (model.builtin !== undefined) {
    const w = initBuiltinWeights(profile, model.seed);
    if (typeof w === "string") throw new UserError(`model "${model.source}": ${w}; use a checkpoint folder, or a small builtin (tiny-llama, tiny-chatglm2, tiny-gpt2) to run`);
    return inMemory(w, names);
  }
  const ckpt = await openCheckpoint(profile.source);
  const ckptNames = checkpointNames(profile);
  const byParam = new Map<string, string>();
  for (const t of ckpt.tensors.keys()) {
    const n = ckptNames.lookup(t);
    if (n?.kind === "param") byParam.set(n.name, t);
  }
  for (const p of base) {
    const t = byParam.get(p.name);
    if (t === undefined) throw new UserError(`${profile.source}: the checkpoint has no tensor ${p.name} (shape [${p.shape.join(", ")}]) that config.json implies; is config.json from the same model?`, { file: profile.source, tensor: p.name });
    const info = ckpt.get(t);
    if (info.shape.join(",") !== p.shape.join(",")) {
      throw new UserError(`${profile.source}: tensor ${t} has shape [${info.shape.join(", ")}], but config.json implies [${p.shape.join(", ")}]`, { file: profile.source, tensor: t });
    }
  }
  const tensorOf = (n: string): string => {
    const t = byParam.get(n);
    if (t === undefined) throw new Error(`base weights: ${n} is not a base parameter of this graph`);
    return t;
  };
  const readF32 = (n: string): Promise<Float32Array> => ckpt.readF32(tensorOf(n));
  return {
    names,
    readF32,
    readF16: (n) => ckpt.readF16(tensorOf(n)),
    loadAll: async () => {
      const out = new Map<string, Float32Array>();
      for (const n of names) out.set(n, await readF32(n));
      return out;
    },
  };
}

/** Every base weight of `graph` as f32. */
export async function loadBaseWeights(model: ModelSpec, profile: ModelProfile, graph: Graph): Promise<Map<string, Float32Array>> {
  return (await openBaseWeights(model, profile, graph)).loadAll();
}
