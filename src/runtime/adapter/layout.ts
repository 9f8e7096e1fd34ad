/**
 * Which file layout a run's adapter takes, and which tensor is which, decided once for saving and
 * loading alike.
 *
 * A spec with exactly one method that PEFT has (lora, adalora, ia3, prefix or p_tuning_v2 over all
 * layers, p_tuning with the MLP encoder, prompt_tuning), ungated, outside any hybrid, and with no
 * trained base weight except the biases lora's `bias` option trains, is written as PEFT writes it:
 * keys `base_model.model.<module path>.<param>` (prompt learning: one `prompt_embeddings`), so PEFT
 * loads the folder. Anything else (bitfit, bottleneck adapters, hybrids, gates, unfreeze, several
 * methods, a prefix over some layers only) has no PEFT equivalent and is written in pefc's own
 * layout, `"peft_type": "PEFC"`: every tensor under its graph name (all method parameters and
 * every trained base weight).
 */
import type { MethodSpec, Spec } from "../../check/spec.js";
import type { Graph, Param } from "../../ir/index.js";
import type { ModelProfile } from "../../models/types.js";

export type PeftType = "LORA" | "ADALORA" | "IA3" | "PREFIX_TUNING" | "P_TUNING" | "PROMPT_TUNING" | "PEFC";

export const PEFT_PREFIX = "base_model.model.";
export const PROMPT_KEY = "prompt_embeddings";

export interface TensorEntry {
  /** Key in adapter_model.safetensors. */
  key: string;
  shape: number[];
  /** The graph parameter stored under `key`; absent for prompt_embeddings computed by an encoder. */
  param?: string;
  /** For a computed tensor: which encoder produces it from the graph's parameters. */
  computed?: "prefix_mlp" | "ptuning_mlp";
}

export interface AdapterLayout {
  peftType: PeftType;
  /** The one method of a PEFT layout (index into spec.methods). */
  method?: number;
  /** Why the layout is PEFC, in words. */
  reason?: string;
  entries: TensorEntry[];
  /** lora/adalora/ia3: the adapted module paths, in graph order. */
  modules: string[];
}

const PEFT_TYPE: Partial<Record<MethodSpec["method"], PeftType>> = {
  lora: "LORA",
  adalora: "ADALORA",
  ia3: "IA3",
  prefix: "PREFIX_TUNING",
  p_tuning_v2: "PREFIX_TUNING",
  p_tuning: "P_TUNING",
  prompt_tuning: "PROMPT_TUNING",
};

/** Parameters an adapter folder holds in pefc's layout: everything a method added, and every trained base weight. */
export function adapterParams(graph: Graph): Param[] {
  return graph.params.filter((p) => p.origin !== "base" || p.trainable);
}

/** The module path a method parameter belongs to: `<path>.lora_A.weight` → `<path>`. */
export function moduleOf(param: string, suffix: string): string | undefined {
  return param.endsWith(suffix) ? param.slice(0, -suffix.length) : undefined;
}

export function adapterLayout(spec: Spec, graph: Graph, profile: ModelProfile): AdapterLayout {
  const why = peftBlocker(spec, graph, profile);
  if (why !== undefined) {
    return { peftType: "PEFC", reason: why, entries: adapterParams(graph).map((p) => ({ key: p.name, shape: [...p.shape], param: p.name })), modules: [] };
  }
  const m = spec.methods[0]!;
  const own = graph.params.filter((p) => p.method === 0 && p.origin !== "base");
  const peftType = PEFT_TYPE[m.method]!;
  const entries: TensorEntry[] = [];
  const modules: string[] = [];
  const direct = (p: Param, key: string) => entries.push({ key, shape: [...p.shape], param: p.name });
  switch (m.method) {
    case "lora": {
      for (const p of own) {
        const mod = moduleOf(p.name, ".lora_A.weight") ?? moduleOf(p.name, ".lora_B.weight");
        if (mod === undefined) throw new Error(`unexpected lora parameter ${p.name}`);
        if (p.name.endsWith(".lora_A.weight")) modules.push(mod);
        direct(p, PEFT_PREFIX + p.name);
      }
      const wrapped = new Set(modules);
      for (const p of graph.params.filter((q) => q.origin === "base" && q.trainable)) {
        const mod = moduleOf(p.name, ".bias")!;
        direct(p, PEFT_PREFIX + (wrapped.has(mod) ? `${mod}.base_layer.bias` : p.name));
      }
      break;
    }
    case "adalora":
      for (const p of own) {
        if (p.name.endsWith(".ranknum")) continue;
        const mod = moduleOf(p.name, ".lora_A");
        if (mod !== undefined) modules.push(mod);
        direct(p, PEFT_PREFIX + p.name);
      }
      break;
    case "ia3":
      for (const p of own) {
        modules.push(moduleOf(p.name, ".ia3_l")!);
        direct(p, PEFT_PREFIX + p.name);
      }
      break;
    case "prefix":
    case "p_tuning_v2": {
      const width = prefixWidth(profile);
      const table = own.find((p) => p.name.endsWith(".embedding.weight"))!;
      if (m.options.projection) entries.push({ key: PROMPT_KEY, shape: [m.options.tokens, width], computed: "prefix_mlp" });
      else direct(table, PROMPT_KEY);
      break;
    }
    case "p_tuning":
      entries.push({ key: PROMPT_KEY, shape: [m.options.tokens, own.find((p) => p.name.endsWith(".embedding.weight"))!.shape[1]!], computed: "ptuning_mlp" });
      break;
    case "prompt_tuning":
      direct(own.find((p) => p.name.endsWith(".embedding.weight"))!, PROMPT_KEY);
      break;
    default:
      throw new Error(`no PEFT layout for ${m.method}`);
  }
  return { peftType, method: 0, entries, modules };
}

/** The prefix table's width over every layer: 2 · layers · kv heads · head dim. */
export function prefixWidth(profile: ModelProfile): number {
  const { numLayers, numKvHeads, headDim } = profile.dims;
  return 2 * numLayers * numKvHeads * headDim;
}

/** Why the run cannot be a PEFT adapter, or undefined when it can. */
function peftBlocker(spec: Spec, graph: Graph, profile: ModelProfile): string | undefined {
  if (spec.methods.length !== 1) return spec.methods.length === 0 ? "no method (only unfrozen base weights)" : `${spec.methods.length} methods in one run`;
  const m = spec.methods[0]!;
  if (!PEFT_TYPE[m.method]) return `${m.method === "adapter" ? "bottleneck adapters" : m.method} (PEFT has no such method)`;
  if (m.hybrid !== undefined || spec.hybrids.length > 0) return "a hybrid (mam, unipelt, combine)";
  if (m.gated) return `a gated ${m.method}`;
  const trainedBase = graph.params.filter((p) => p.origin === "base" && p.trainable);
  if (trainedBase.length > 0) {
    const lorabias = m.method === "lora" && m.options.bias !== "none" && trainedBase.every((p) => p.name.endsWith(".bias"));
    if (!lorabias) return `trained base weights (${trainedBase[0]!.name}${trainedBase.length > 1 ? ` and ${trainedBase.length - 1} more` : ""})`;
  }
  if (m.method === "prefix" || m.method === "p_tuning_v2") {
    const own = graph.params.filter((p) => p.method === 0 && p.origin !== "base");
    const out = m.options.projection ? own.find((p) => p.name.endsWith(".transform.2.weight"))?.shape[0] : own.find((p) => p.name.endsWith(".embedding.weight"))?.shape[1];
    if (out !== prefixWidth(profile)) return `a ${m.method} over some layers only (PEFT's prefix covers every layer)`;
  }
  if (m.method === "p_tuning" && m.options.encoder !== "mlp") return "p_tuning with an LSTM encoder";
  return undefined;
}
