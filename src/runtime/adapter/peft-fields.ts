/**
 * The fields of PEFT's config dataclass for each peft_type pefc writes, as of PEFT 0.13, the
 * oldest release pefc promises: adapter_config.json holds exactly these, no more, no fewer.
 *
 * Why exactly: PEFT builds the config class from the file's keys. 0.13 raises a TypeError on a key
 * its class lacks; from 0.14 on PEFT drops such a key with a warning ("Unexpected keyword
 * arguments … for class …"). Fields added after 0.13 (exclude_modules, eva_config, lora_bias,
 * corda_config, trainable_token_indices, init_weights, modules_to_save of the prompt-learning
 * configs, peft_version…) therefore stay out, and later releases fill them with their defaults,
 * which are what pefc trains (no exclusion, no LoRA bias, standard init). Sources, PEFT 0.13:
 * config.py (PeftConfigMixin, PeftConfig, PromptLearningConfig), tuners/lora/config.py,
 * tuners/adalora/config.py, tuners/ia3/config.py, tuners/prefix_tuning/config.py,
 * tuners/prompt_tuning/config.py, tuners/p_tuning/config.py. LoraConfig's runtime_config is a
 * field too but PEFT never writes it (to_dict drops it), so neither do we.
 *
 * The values come from the spec (config.ts `adapterConfig`); this table only says which keys a
 * file of each type holds, and is shared with whatever builds PEFT configs from a spec.
 */
import type { PeftType } from "./layout.js";

/** PeftConfigMixin + PeftConfig. */
const BASE = ["auto_mapping", "base_model_name_or_path", "inference_mode", "peft_type", "revision", "task_type"] as const;

/** PromptLearningConfig on top of BASE. */
const PROMPT_LEARNING = [...BASE, "num_attention_heads", "num_layers", "num_transformer_submodules", "num_virtual_tokens", "token_dim"] as const;

const LORA = [
  ...BASE,
  "alpha_pattern",
  "bias",
  "fan_in_fan_out",
  "init_lora_weights",
  "layer_replication",
  "layers_pattern",
  "layers_to_transform",
  "loftq_config",
  "lora_alpha",
  "lora_dropout",
  "megatron_config",
  "megatron_core",
  "modules_to_save",
  "r",
  "rank_pattern",
  "target_modules",
  "use_dora",
  "use_rslora",
] as const;

/** Field names per peft_type (the PEFC layout is pefc's own and has no PEFT class). */
export const PEFT_CONFIG_FIELDS: Readonly<Record<Exclude<PeftType, "PEFC">, readonly string[]>> = {
  LORA: [...LORA].sort(),
  ADALORA: [...LORA, "beta1", "beta2", "deltaT", "init_r", "orth_reg_weight", "target_r", "tfinal", "tinit", "total_step"].sort(),
  IA3: [...BASE, "fan_in_fan_out", "feedforward_modules", "init_ia3_weights", "modules_to_save", "target_modules"].sort(),
  PREFIX_TUNING: [...PROMPT_LEARNING, "encoder_hidden_size", "prefix_projection"].sort(),
  PROMPT_TUNING: [...PROMPT_LEARNING, "prompt_tuning_init", "prompt_tuning_init_text", "tokenizer_kwargs", "tokenizer_name_or_path"].sort(),
  P_TUNING: [...PROMPT_LEARNING, "encoder_dropout", "encoder_hidden_size", "encoder_num_layers", "encoder_reparameterization_type"].sort(),
};

/**
 * `config` with exactly the fields of `peftType`'s class, in PEFT's sorted order. A field the table
 * has and `config` lacks, or the reverse, is a bug in the writer, not a user error: it throws.
 */
export function peftConfigOf<V>(peftType: Exclude<PeftType, "PEFC">, config: Readonly<Record<string, V>>): Record<string, V> {
  const fields = PEFT_CONFIG_FIELDS[peftType];
  const missing = fields.filter((f) => !(f in config));
  const extra = Object.keys(config).filter((k) => !fields.includes(k));
  if (missing.length || extra.length) {
    throw new Error(`adapter_config.json for ${peftType}: ${missing.length ? `no value for ${missing.join(", ")}` : ""}${missing.length && extra.length ? "; " : ""}${extra.length ? `${extra.join(", ")} not fields of PEFT's class` : ""}`);
  }
  return Object.fromEntries(fields.map((f) => [f, config[f]!]));
}
