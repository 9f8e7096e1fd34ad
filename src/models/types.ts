/**
 * What an architecture profile knows about a model from its config.json alone: the module tree with
 * Hugging Face names, shapes, roles, and the numbers the planner needs. No weights are read.
 */

export type Arch = "llama" | "chatglm2" | "gpt2";

/** The kind of a module decides which methods may adapt it. */
export type ModuleKind = "linear" | "embedding" | "rmsnorm" | "layernorm";

/** One parameter tensor, named exactly as in the checkpoint (`model.layers.0.self_attn.q_proj.weight`). */
export interface ParamInfo {
  name: string;
  shape: number[];
}

export interface ModuleInfo {
  /** Full dotted path, as in the checkpoint: `transformer.encoder.layers.3.self_attention.query_key_value`. */
  path: string;
  kind: ModuleKind;
  /** For linear modules; embeddings give vocab/dim here. */
  inFeatures: number;
  outFeatures: number;
  /** Linear weight stored [in, out] (GPT-2 Conv1D) instead of torch's [out, in]. */
  transposed: boolean;
  hasBias: boolean;
  /** Index in the layer container, or undefined for modules outside it (embeddings, head, final norm). */
  layer?: number;
  /** Role names without `@` (q, k, v, qkv, attn_out, ffn_in, ffn_gate, ffn_up, ffn_out, embed, pos_embed, head, norm, linear). */
  roles: string[];
  /** Empty for a tied head: its weight is another module's parameter (see `tiedTo`). */
  params: ParamInfo[];
  /** Set on a head whose weight is the input embedding's (tie_word_embeddings): that parameter's name. */
  tiedTo?: string;
}

/** A role that is a row slice of a fused module (@q/@k/@v inside ChatGLM2's query_key_value, GPT-2's c_attn). */
export interface SliceRole {
  role: string;
  /** The fused module's leaf name (`query_key_value`). */
  module: string;
  /** Output features [rowStart, rowEnd): weight rows for a torch Linear, columns for a transposed Conv1D. */
  rowStart: number;
  rowEnd: number;
}

/** Normalised hyper-parameters every architecture has (from config.json under its own key names). */
export interface ModelDims {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  maxPositions: number;
  normEps: number;
  ropeTheta: number;
  tiedEmbeddings: boolean;
  bosTokenId?: number;
  eosTokenId?: number;
  padTokenId?: number;
}

export interface ModelProfile {
  arch: Arch;
  /** Human name for messages: `chatglm2`, `llama`, `gpt2`. */
  name: string;
  /** Where the config came from: a folder path or `builtin:NAME`. */
  source: string;
  config: Record<string, unknown>;
  dims: ModelDims;
  /** Module path prefix of the repeated blocks: `model.layers`, `transformer.encoder.layers`, `transformer.h`. */
  layerContainer: string;
  modules: ModuleInfo[];
  sliceRoles: SliceRole[];
  /** Leaf names of the feed-forward modules IA3 scales on the input side (PEFT's feedforward_modules). */
  feedforward: string[];
  /** Default chat template (src/models/templates.ts): the prompt side, with {system} and {prompt}; the response follows it. */
  chatTemplate: string;
  /**
   * How the model numbers the real tokens when prefix tuning gives every layer P keys/values that
   * PEFT hands it as the attention cache (past_key_values). "after-prefix": its modelling code
   * counts positions from the cache length (transformers' LlamaModel and GPT2Model:
   * cache_position = arange(past_seen_tokens, past_seen_tokens + T), position_ids from it), so
   * real tokens sit at P..P+T−1 for RoPE and for learned position embeddings alike. "from-zero":
   * it numbers them 0..T−1 whatever the cache holds (ChatGLM2's modelling_chatglm.py).
   */
  prefixPositions: "after-prefix" | "from-zero";
  /** model_type written into adapter_config.json's base model info. */
  modelType: string;
  /** Number of parameters as torch counts them (model.parameters(), tied weights once). */
  totalParams: number;
  /**
   * Tensors a checkpoint may hold that are buffers, not parameters (ChatGLM2's rotary inv_freq, GPT-2's
   * causal-mask attn.bias): a loader skips them, and they are not counted in totalParams.
   */
  buffers?: ParamInfo[];
  /** A leading prefix some checkpoints omit (original GPT-2 files name `h.0.attn.c_attn.weight`). */
  checkpointPrefix?: string;
}
