/**
 * The Llama family (LlamaForCausalLM and the models that share its module names: Mistral, Qwen2,
 * SmolLM, llama2.c exports such as stories260K). Module order is torch's registration order, which is
 * also the order of named_parameters() and of a PEFT state dict: per layer self_attn (q, k, v, o), mlp
 * (gate, up, down), then the two norms.
 */
import { ConfigReader, MAX_LAYERS, readTokenIds } from "../config-reader.js";
import { templateByName } from "../templates.js";
import type { ModelProfile, ModuleInfo, ParamInfo } from "../types.js";
import { embedding, finishProfile, linear, rmsnorm, tiedHead } from "./modules.js";

export const LLAMA_MODEL_TYPES = ["llama", "mistral", "qwen2"] as const;

export function llamaProfile(config: Record<string, unknown>, source: string): ModelProfile | string {
  const r = new ConfigReader(config);
  const modelType = String(config["model_type"]);
  const hidden = r.int("hidden_size");
  const layers = r.int("num_hidden_layers", undefined, MAX_LAYERS);
  const heads = r.int("num_attention_heads");
  const kvHeads = r.int("num_key_value_heads", heads);
  if (!r.has("head_dim") && hidden % heads !== 0) {
    r.fail(`hidden_size ${hidden} is not divisible by num_attention_heads ${heads}`);
  }
  const headDim = r.int("head_dim", Math.floor(hidden / heads));
  if (heads % kvHeads !== 0) r.fail(`num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`);
  const ffn = r.int("intermediate_size");
  const vocab = r.int("vocab_size");
  const maxPos = r.int("max_position_embeddings", 2048);
  const eps = r.float("rms_norm_eps", 1e-6);
  const theta = r.float("rope_theta", 10000);
  const tied = r.bool("tie_word_embeddings", false);
  // Qwen2 hard-codes bias on q/k/v and none on o; Llama switches all four with attention_bias.
  const qwen = modelType === "qwen2";
  const qkvBias = qwen ? true : r.bool("attention_bias", false);
  const oBias = qwen ? false : r.bool("attention_bias", false);
  const mlpBias = r.bool("mlp_bias", false);
  if (r.error) return r.error;

  const modules: ModuleInfo[] = [embedding("model.embed_tokens", vocab, hidden, ["embed"])];
  const buffers: ParamInfo[] = [];
  for (let i = 0; i < layers; i++) {
    const p = `model.layers.${i}`;
    const at = (roles: string[], bias: boolean) => ({ bias, layer: i, roles });
    modules.push(
      linear(`${p}.self_attn.q_proj`, hidden, heads * headDim, at(["q", "linear"], qkvBias)),
      linear(`${p}.self_attn.k_proj`, hidden, kvHeads * headDim, at(["k", "linear"], qkvBias)),
      linear(`${p}.self_attn.v_proj`, hidden, kvHeads * headDim, at(["v", "linear"], qkvBias)),
      linear(`${p}.self_attn.o_proj`, heads * headDim, hidden, at(["attn_out", "linear"], oBias)),
      linear(`${p}.mlp.gate_proj`, hidden, ffn, at(["ffn_in", "ffn_gate", "linear"], mlpBias)),
      linear(`${p}.mlp.up_proj`, hidden, ffn, at(["ffn_in", "ffn_up", "linear"], mlpBias)),
      linear(`${p}.mlp.down_proj`, ffn, hidden, at(["ffn_out", "linear"], mlpBias)),
      rmsnorm(`${p}.input_layernorm`, hidden, i),
      rmsnorm(`${p}.post_attention_layernorm`, hidden, i),
    );
    // Checkpoints written by transformers before 4.31 still carry the rotary frequencies per layer.
    buffers.push({ name: `${p}.self_attn.rotary_emb.inv_freq`, shape: [headDim / 2] });
  }
  modules.push(rmsnorm("model.norm", hidden));
  modules.push(
    tied
      ? tiedHead("lm_head", hidden, vocab, "model.embed_tokens.weight")
      : linear("lm_head", hidden, vocab, { bias: false, roles: ["head"] }),
  );

  const dims: ModelProfile["dims"] = {
    hiddenSize: hidden,
    numLayers: layers,
    numHeads: heads,
    numKvHeads: kvHeads,
    headDim,
    intermediateSize: ffn,
    vocabSize: vocab,
    maxPositions: maxPos,
    normEps: eps,
    ropeTheta: theta,
    tiedEmbeddings: tied,
  };
  readTokenIds(dims, r);
  return finishProfile({
    arch: "llama",
    name: modelType === "llama" ? "llama" : modelType,
    source,
    config,
    dims,
    layerContainer: "model.layers",
    modules,
    sliceRoles: [],
    feedforward: ["down_proj"],
    chatTemplate: templateByName("llama2") ?? "{prompt}",
    prefixPositions: "after-prefix",
    modelType,
    buffers,
  });
}
