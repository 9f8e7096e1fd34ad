/**
 * adapter_config.json contents. For PEFT layouts: exactly the fields of PEFT 0.13's config class
 * of the peft_type (the table in peft-fields.ts, which says why), with the values a PEFT user
 * would have passed to get the same adapter; defaults as PEFT has them, floats marked as floats.
 * pefc's own facts go into the safetensors metadata instead (see save.ts).
 *
 * Rules that need a word:
 * - target_modules: see peft-targets.ts. fan_in_fan_out is true when an adapted module is a GPT-2
 *   Conv1D (its weight stored [in, out]).
 * - LoRA overrides become rank_pattern/alpha_pattern entries (only where they differ from r/alpha),
 *   keyed as in peft-targets.ts `patternKey`. A per-module dropout has no PEFT field: the file keeps
 *   the statement's dropout (dropout changes training, not the saved weights).
 * - AdaLoRA: `r` stays at PEFT's default 8 because PEFT ignores it (and warns when it is not 8);
 *   the spec's r is target_r. rank_pattern is null until the rank allocator has produced one, then
 *   `{"<module>.lora_E": [kept?...]}` as PEFT keys it.
 * - Prefix tuning: token_dim and num_attention_heads are the key/value width and heads (PEFT's rule
 *   for grouped-query models: token_dim = head_dim · kv heads); num_layers every layer.
 */
import { basename } from "node:path";
import type { Spec } from "../../check/spec.js";
import type { Graph } from "../../ir/index.js";
import type { ModelProfile } from "../../models/types.js";
import { adapterLayout, type AdapterLayout, type PeftType } from "./layout.js";
import { moduleOf } from "./layout.js";
import { loraModuleSettings } from "./lora-settings.js";
import { peftConfigOf } from "./peft-fields.js";
import { feedforwardNames, patternKey, peftTargets, type PeftTargets } from "./peft-targets.js";
import { pyFloat, type PyJson } from "./py-json.js";

/** The version of pefc's own layout (the PEFC peft_type); bumped when its fields change meaning. */
export const PEFC_FORMAT_VERSION = 1;

export interface ConfigInputs {
  spec: Spec;
  graph: Graph;
  profile: ModelProfile;
  layout: AdapterLayout;
  baseModel: string;
  /** AdaLoRA: the rank allocator's keep-masks, keyed by module path or `<path>.lora_E`. */
  rankPattern?: Record<string, boolean[]>;
  /** AdaLoRA: total optimizer steps when the spec leaves total_step to the run. */
  totalStep?: number;
}

type Json = { [key: string]: PyJson };

/** Python writes an int for whole numbers a user types as ints and a float otherwise. */
function num(x: number): PyJson {
  return Number.isInteger(x) ? x : pyFloat(x);
}

function common(baseModel: string, peftType: string): Json {
  return { auto_mapping: null, base_model_name_or_path: baseModel, inference_mode: true, peft_type: peftType, revision: null, task_type: "CAUSAL_LM" };
}

function targetFields(t: PeftTargets): Json {
  return {
    target_modules: t.targetModules,
    layers_to_transform: t.layersToTransform ?? null,
    layers_pattern: t.layersPattern ?? null,
  };
}

function loraFamily(c: ConfigInputs, r: number, alpha: number, dropout: number, t: PeftTargets): Json {
  const conv1d = c.layout.modules.some((p) => c.profile.modules.find((m) => m.path === p)?.transposed);
  return {
    ...common(c.baseModel, c.layout.peftType),
    ...targetFields(t),
    alpha_pattern: {},
    bias: "none",
    fan_in_fan_out: conv1d,
    init_lora_weights: true,
    layer_replication: null,
    loftq_config: {},
    lora_alpha: num(alpha),
    lora_dropout: pyFloat(dropout),
    megatron_config: null,
    megatron_core: "megatron.core",
    modules_to_save: null,
    r,
    rank_pattern: {},
    use_dora: false,
    use_rslora: false,
  };
}

/**
 * The PEFT config of the adapter a spec trains: its peft_type and field → value, exactly the
 * fields of peft-fields.ts, as `export adapter` writes them (for building the same PEFT config
 * elsewhere, e.g. a PEFT + Accelerate script). Undefined where PEFT has no one config class for
 * the run (pefc's PEFC layout: hybrids, bottleneck adapters, several methods…).
 */
export function peftConfigForSpec(o: Omit<ConfigInputs, "layout">): { peftType: Exclude<PeftType, "PEFC">; config: Json } | undefined {
  const layout = adapterLayout(o.spec, o.graph, o.profile);
  if (layout.peftType === "PEFC") return undefined;
  return { peftType: layout.peftType, config: adapterConfig({ ...o, layout }) };
}

/** The whole adapter_config.json: for PEFT's types, exactly the fields of peft-fields.ts. */
export function adapterConfig(c: ConfigInputs): Json {
  const t = c.layout.peftType;
  return t === "PEFC" ? pefcConfig(c) : peftConfigOf(t, peftValues(c));
}

/** Field → value for the PEFT config class of the layout's method, from the spec. */
function peftValues(c: ConfigInputs): Json {
  const { layout, spec, profile } = c;
  const m = spec.methods[layout.method!]!;
  switch (m.method) {
    case "lora": {
      const t = peftTargets(profile, [layout.modules]);
      const o = m.options;
      const cfg = loraFamily(c, o.r, o.alpha, o.dropout, t);
      const settings = loraModuleSettings(spec, profile, m, layout.modules);
      const rank: Json = {};
      const alpha: Json = {};
      for (const [path, s] of settings) {
        if (s.r !== o.r) rank[patternKey(path)] = s.r;
        if (s.alpha !== o.alpha) alpha[patternKey(path)] = num(s.alpha);
      }
      return { ...cfg, bias: o.bias, use_rslora: o.rslora, init_lora_weights: o.init === "gaussian" ? "gaussian" : true, rank_pattern: rank, alpha_pattern: alpha };
    }
    case "adalora": {
      const o = m.options;
      const total = o.total_step ?? c.totalStep;
      if (total === undefined) throw new Error("saving an adalora adapter needs total_step (from the spec or the run)");
      const t = peftTargets(profile, [layout.modules]);
      return {
        ...loraFamily(c, 8, o.alpha, o.dropout, t),
        beta1: pyFloat(o.beta1),
        beta2: pyFloat(o.beta2),
        deltaT: o.delta_t,
        init_r: o.init_r,
        orth_reg_weight: pyFloat(o.orth_reg_weight),
        rank_pattern: c.rankPattern ? adaloraRankPattern(c.rankPattern, layout.modules, o.init_r) : null,
        target_r: o.r,
        tfinal: o.tfinal,
        tinit: o.tinit,
        total_step: total,
      };
    }
    case "ia3": {
      const ffSet = c.graph.params.filter((p) => p.method === layout.method && p.name.endsWith(".ia3_l") && p.shape[0] === 1).map((p) => moduleOf(p.name, ".ia3_l")!);
      const ff = new Set(ffSet);
      const other = layout.modules.filter((p) => !ff.has(p));
      const t = peftTargets(profile, [ffSet, other].filter((g) => g.length > 0), { layerFilter: false });
      const conv1d = layout.modules.some((p) => profile.modules.find((x) => x.path === p)?.transposed);
      return {
        ...common(c.baseModel, "IA3"),
        target_modules: t.targetModules,
        fan_in_fan_out: conv1d,
        feedforward_modules: feedforwardNames(t, ffSet, layout.modules),
        init_ia3_weights: true,
        modules_to_save: null,
      };
    }
    case "prefix":
    case "p_tuning_v2": {
      const o = m.options;
      const { numKvHeads, headDim, numLayers } = profile.dims;
      return {
        ...promptLearning(c, o.tokens, numKvHeads * headDim),
        encoder_hidden_size: o.projection ? o.hidden : numKvHeads * headDim,
        num_attention_heads: numKvHeads,
        num_layers: numLayers,
        prefix_projection: o.projection,
      };
    }
    case "p_tuning": {
      const o = m.options;
      const D = embedDim(profile);
      return {
        ...promptLearning(c, o.tokens, D),
        encoder_dropout: pyFloat(o.encoder_dropout),
        encoder_hidden_size: o.hidden ?? D,
        encoder_num_layers: o.encoder_layers,
        encoder_reparameterization_type: "MLP",
        num_attention_heads: profile.dims.numHeads,
        num_layers: profile.dims.numLayers,
      };
    }
    case "prompt_tuning": {
      const init = m.options.init;
      return {
        ...promptLearning(c, m.options.tokens, embedDim(profile)),
        num_attention_heads: profile.dims.numHeads,
        num_layers: profile.dims.numLayers,
        prompt_tuning_init: init.kind === "text" ? "TEXT" : init.kind === "vocab" ? "SAMPLE_VOCAB" : "RANDOM",
        prompt_tuning_init_text: init.kind === "text" ? init.text : null,
        tokenizer_kwargs: null,
        tokenizer_name_or_path: init.kind === "text" ? c.baseModel : null,
      };
    }
    default:
      throw new Error(`no PEFT config for ${m.method}`);
  }
}

function promptLearning(c: ConfigInputs, tokens: number, tokenDim: number): Json {
  return { ...common(c.baseModel, c.layout.peftType), num_transformer_submodules: 1, num_virtual_tokens: tokens, token_dim: tokenDim };
}

function embedDim(profile: ModelProfile): number {
  const e = profile.modules.find((m) => m.roles.includes("embed"));
  if (!e) throw new Error(`${profile.name} has no token embedding`);
  return e.outFeatures;
}

/** PEFT's AdaLoRA rank_pattern: `<module>.lora_E` → keep-mask of length init_r, for every adapted module. */
export function adaloraRankPattern(given: Record<string, boolean[]>, modules: readonly string[], initR: number): Json {
  const byModule = new Map(Object.entries(given).map(([k, v]) => [k.endsWith(".lora_E") ? k.slice(0, -".lora_E".length) : k, v]));
  const out: Json = {};
  for (const path of modules) {
    const mask = byModule.get(path);
    if (!mask) throw new Error(`rank pattern has no entry for ${path}`);
    if (mask.length !== initR) throw new Error(`rank pattern of ${path} has ${mask.length} entries, init_r is ${initR}`);
    out[`${path}.lora_E`] = [...mask];
  }
  for (const k of byModule.keys()) if (!modules.includes(k)) throw new Error(`rank pattern names ${k}, which adalora does not adapt`);
  return out;
}

/** pefc's own layout: what the run trained, as the spec says it, so `init from` can check it. */
function pefcConfig(c: ConfigInputs): Json {
  const { spec, profile } = c;
  return {
    base_model_name_or_path: c.baseModel,
    inference_mode: true,
    peft_type: "PEFC",
    task_type: "CAUSAL_LM",
    pefc: {
      format_version: PEFC_FORMAT_VERSION,
      language_version: spec.version,
      spec_file: basename(spec.file),
      reason: c.layout.reason ?? null,
      model: { arch: profile.arch, name: profile.name, num_layers: profile.dims.numLayers, hidden_size: profile.dims.hiddenSize },
      methods: spec.methods.map((m) => stripSpans(m)),
      hybrids: spec.hybrids.map((h) => stripSpans({ kind: h.kind, gated: h.gated, members: h.members })),
      freeze: spec.freeze.map((f) => stripSpans(f)),
      selects: stripSpans(spec.selects),
      tensors: Object.fromEntries(
        c.graph.params.filter((p) => p.origin !== "base" || p.trainable).map((p) => [p.name, { method: p.method ?? null, origin: p.origin, shape: p.shape }]),
      ),
    },
  };
}

/** Plain JSON of spec data, without source positions (spans, lines); floats kept as floats. */
function stripSpans(v: unknown): PyJson {
  if (v === null || v === undefined) return null;
  if (typeof v === "number") return Number.isInteger(v) ? v : pyFloat(v);
  if (typeof v === "string" || typeof v === "boolean") return v;
  if (Array.isArray(v)) return v.map(stripSpans);
  if (typeof v === "object") {
    const out: Json = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (k === "span" || k === "line" || k.endsWith("Span") || x === undefined) continue;
      out[k] = stripSpans(x);
    }
    return out;
  }
  throw new Error(`cannot write ${typeof v} into adapter_config.json`);
}
