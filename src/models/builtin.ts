/**
 * Models pefc knows without a folder. The tiny ones (hidden 64, 2 layers, vocab 320 for a byte-level
 * tokenizer: 0 pad, 1 bos, 2 eos, 3..258 the bytes) get seeded random weights, so examples and tests
 * run end to end with no download. The full-size ones carry their real config only, for planning and
 * checking (`pefc plan`), and have no weights.
 */
import { Prng } from "./prng.js";
import type { ModelProfile } from "./types.js";

const TINY_TOKENS = { bos_token_id: 1, eos_token_id: 2, pad_token_id: 0 };

const BUILTINS: Record<string, Record<string, unknown>> = {
  "tiny-chatglm2": {
    model_type: "chatglm",
    architectures: ["ChatGLMModel"],
    add_bias_linear: false,
    add_qkv_bias: true,
    apply_query_key_layer_scaling: true,
    apply_residual_connection_post_layernorm: false,
    attention_dropout: 0.0,
    attention_softmax_in_fp32: true,
    ffn_hidden_size: 96,
    hidden_dropout: 0.0,
    hidden_size: 64,
    kv_channels: 16,
    layernorm_epsilon: 1e-5,
    multi_query_attention: true,
    multi_query_group_num: 2,
    num_attention_heads: 4,
    num_layers: 2,
    original_rope: true,
    padded_vocab_size: 320,
    post_layer_norm: true,
    rmsnorm: true,
    seq_length: 1024,
    tie_word_embeddings: false,
    torch_dtype: "float32",
    ...TINY_TOKENS,
  },
  "tiny-llama": {
    model_type: "llama",
    architectures: ["LlamaForCausalLM"],
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 16,
    vocab_size: 320,
    max_position_embeddings: 1024,
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    hidden_act: "silu",
    tie_word_embeddings: false,
    attention_bias: false,
    mlp_bias: false,
    torch_dtype: "float32",
    ...TINY_TOKENS,
  },
  "tiny-gpt2": {
    model_type: "gpt2",
    architectures: ["GPT2LMHeadModel"],
    activation_function: "gelu_new",
    attn_pdrop: 0.0,
    embd_pdrop: 0.0,
    resid_pdrop: 0.0,
    layer_norm_epsilon: 1e-5,
    n_ctx: 256,
    n_embd: 64,
    n_head: 4,
    n_inner: null,
    n_layer: 2,
    n_positions: 256,
    scale_attn_weights: true,
    tie_word_embeddings: true,
    torch_dtype: "float32",
    vocab_size: 320,
    ...TINY_TOKENS,
  },
  // THUDM/chatglm2-6b config.json, verbatim.
  "chatglm2-6b": {
    _name_or_path: "THUDM/chatglm2-6b",
    model_type: "chatglm",
    architectures: ["ChatGLMModel"],
    auto_map: {
      AutoConfig: "configuration_chatglm.ChatGLMConfig",
      AutoModel: "modeling_chatglm.ChatGLMForConditionalGeneration",
      AutoModelForSeq2SeqLM: "modeling_chatglm.ChatGLMForConditionalGeneration",
    },
    add_bias_linear: false,
    add_qkv_bias: true,
    apply_query_key_layer_scaling: true,
    apply_residual_connection_post_layernorm: false,
    attention_dropout: 0.0,
    attention_softmax_in_fp32: true,
    bias_dropout_fusion: true,
    ffn_hidden_size: 13696,
    fp32_residual_connection: false,
    hidden_dropout: 0.0,
    hidden_size: 4096,
    kv_channels: 128,
    layernorm_epsilon: 1e-5,
    multi_query_attention: true,
    multi_query_group_num: 2,
    num_attention_heads: 32,
    num_layers: 28,
    original_rope: true,
    padded_vocab_size: 65024,
    post_layer_norm: true,
    rmsnorm: true,
    seq_length: 32768,
    use_cache: true,
    torch_dtype: "float16",
    transformers_version: "4.27.1",
    tie_word_embeddings: false,
    eos_token_id: 2,
  },
  // meta-llama/Llama-2-7b-hf.
  "llama-2-7b": {
    architectures: ["LlamaForCausalLM"],
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: "silu",
    hidden_size: 4096,
    initializer_range: 0.02,
    intermediate_size: 11008,
    max_position_embeddings: 4096,
    model_type: "llama",
    num_attention_heads: 32,
    num_hidden_layers: 32,
    num_key_value_heads: 32,
    pretraining_tp: 1,
    rms_norm_eps: 1e-5,
    rope_scaling: null,
    tie_word_embeddings: false,
    torch_dtype: "float16",
    use_cache: true,
    vocab_size: 32000,
  },
  // openai-community/gpt2 (124M).
  gpt2: {
    activation_function: "gelu_new",
    architectures: ["GPT2LMHeadModel"],
    attn_pdrop: 0.1,
    bos_token_id: 50256,
    embd_pdrop: 0.1,
    eos_token_id: 50256,
    initializer_range: 0.02,
    layer_norm_epsilon: 1e-5,
    model_type: "gpt2",
    n_ctx: 1024,
    n_embd: 768,
    n_head: 12,
    n_layer: 12,
    n_positions: 1024,
    resid_pdrop: 0.1,
    summary_activation: null,
    summary_first_dropout: 0.1,
    summary_proj_to_labels: true,
    summary_type: "cls_index",
    summary_use_proj: true,
    task_specific_params: { "text-generation": { do_sample: true, max_length: 50 } },
    vocab_size: 50257,
  },
};

/** The tiny models, which have seeded weights; the others are config only. */
const WITH_WEIGHTS = new Set(["tiny-chatglm2", "tiny-llama", "tiny-gpt2"]);

/** Above this many parameters a model is not initialised in memory: it is a planning config. */
const MAX_INIT_PARAMS = 16_000_000;

export function builtinNames(): string[] {
  return Object.keys(BUILTINS);
}

/** A fresh copy of the named config (callers may change it), or undefined. */
export function builtinConfig(name: string): Record<string, unknown> | undefined {
  const c = Object.hasOwn(BUILTINS, name) ? BUILTINS[name] : undefined;
  return c === undefined ? undefined : structuredClone(c);
}

export function builtinHasWeights(name: string): boolean {
  return WITH_WEIGHTS.has(name);
}

/**
 * Seeded weights for a small profile, keyed by parameter name in module order: linear and embedding
 * weights N(0, 0.02), norm weights 1, every bias 0 (GPT-2's initializer_range and zero-bias rule,
 * applied to all three architectures). Returns a reason instead for a model too big to hold.
 */
export function initBuiltinWeights(profile: ModelProfile, seed: number): Map<string, Float32Array> | string {
  if (profile.totalParams > MAX_INIT_PARAMS) {
    return (
      `${profile.source} has no weights: it describes a ${profile.totalParams.toLocaleString("en-US")}-parameter ` +
      `model for planning; built-ins with weights are ${[...WITH_WEIGHTS].join(", ")}`
    );
  }
  const rng = new Prng(seed);
  const out = new Map<string, Float32Array>();
  for (const m of profile.modules) {
    for (const p of m.params) {
      const data = new Float32Array(p.shape.reduce((a, b) => a * b, 1));
      const isBias = p.name.endsWith(".bias");
      if (m.kind === "rmsnorm" || m.kind === "layernorm") {
        if (!isBias) data.fill(1);
      } else if (!isBias) {
        for (let i = 0; i < data.length; i++) data[i] = rng.normal(0, 0.02);
      }
      out.set(p.name, data);
    }
  }
  return out;
}
