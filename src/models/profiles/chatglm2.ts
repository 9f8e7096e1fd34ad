/**
 * ChatGLM2/ChatGLM3 (model_type "chatglm", remote code modeling_chatglm.py). Queries, keys and values
 * come out of one fused `query_key_value` projection laid out [q | k | v], so @q/@k/@v are row slices of
 * it; keys and values have `multi_query_group_num` heads. `dense_h_to_4h` is twice `ffn_hidden_size`
 * wide because it holds both SwiGLU halves. The rotary `inv_freq` is a buffer: the checkpoint stores it
 * but torch does not count it, so neither does totalParams (6,243,584,000 for ChatGLM2-6B).
 */
import { ConfigReader, MAX_LAYERS, readTokenIds } from "../config-reader.js";
import { templateByName } from "../templates.js";
import type { ModelProfile, ModuleInfo } from "../types.js";
import { embedding, finishProfile, layernorm, linear, rmsnorm } from "./modules.js";

export const CHATGLM_MODEL_TYPES = ["chatglm"] as const;

export function chatglm2Profile(config: Record<string, unknown>, source: string): ModelProfile | string {
  const r = new ConfigReader(config);
  // ChatGLM-6B (v1) shares the model_type but has another module tree and none of these keys.
  if (!r.has("ffn_hidden_size") || !r.has("num_layers")) {
    return "this chatglm config has no ffn_hidden_size/num_layers; only the ChatGLM2/ChatGLM3 layout is supported";
  }
  const hidden = r.int("hidden_size");
  const layers = r.int("num_layers", undefined, MAX_LAYERS);
  const heads = r.int("num_attention_heads");
  if (!r.has("kv_channels") && hidden % heads !== 0) {
    r.fail(`hidden_size ${hidden} is not divisible by num_attention_heads ${heads}`);
  }
  const kvChannels = r.int("kv_channels", Math.floor(hidden / heads));
  const mqa = r.bool("multi_query_attention", false);
  const groups = mqa ? r.int("multi_query_group_num") : heads;
  if (heads % groups !== 0) r.fail(`num_attention_heads ${heads} is not a multiple of multi_query_group_num ${groups}`);
  const ffn = r.int("ffn_hidden_size");
  const vocab = r.int("padded_vocab_size", typeof config["vocab_size"] === "number" ? config["vocab_size"] : undefined);
  const seq = r.int("seq_length", 2048);
  const eps = r.float("layernorm_epsilon", 1e-5);
  const useRms = r.bool("rmsnorm", true);
  const postNorm = r.bool("post_layer_norm", true);
  const biasLinear = r.bool("add_bias_linear", false);
  const qkvBias = r.bool("add_qkv_bias", false) || biasLinear;
  const ropeRatio = r.float("rope_ratio", 1);
  if (r.error) return r.error;

  const norm = useRms ? rmsnorm : layernorm;
  const q = heads * kvChannels;
  const kv = groups * kvChannels;
  const modules: ModuleInfo[] = [embedding("transformer.embedding.word_embeddings", vocab, hidden, ["embed"])];
  for (let i = 0; i < layers; i++) {
    const p = `transformer.encoder.layers.${i}`;
    modules.push(
      norm(`${p}.input_layernorm`, hidden, i),
      linear(`${p}.self_attention.query_key_value`, hidden, q + 2 * kv, { bias: qkvBias, layer: i, roles: ["qkv", "linear"] }),
      linear(`${p}.self_attention.dense`, q, hidden, { bias: biasLinear, layer: i, roles: ["attn_out", "linear"] }),
      norm(`${p}.post_attention_layernorm`, hidden, i),
      linear(`${p}.mlp.dense_h_to_4h`, hidden, 2 * ffn, { bias: biasLinear, layer: i, roles: ["ffn_in", "linear"] }),
      linear(`${p}.mlp.dense_4h_to_h`, ffn, hidden, { bias: biasLinear, layer: i, roles: ["ffn_out", "linear"] }),
    );
  }
  if (postNorm) modules.push(norm("transformer.encoder.final_layernorm", hidden));
  modules.push(linear("transformer.output_layer", hidden, vocab, { bias: false, roles: ["head"] }));

  const dims: ModelProfile["dims"] = {
    hiddenSize: hidden,
    numLayers: layers,
    numHeads: heads,
    numKvHeads: groups,
    headDim: kvChannels,
    intermediateSize: ffn,
    vocabSize: vocab,
    maxPositions: seq,
    normEps: eps,
    ropeTheta: 10000 * ropeRatio,
    tiedEmbeddings: false,
  };
  readTokenIds(dims, r);
  return finishProfile({
    arch: "chatglm2",
    name: "chatglm2",
    source,
    config,
    dims,
    layerContainer: "transformer.encoder.layers",
    modules,
    sliceRoles: [
      { role: "q", module: "query_key_value", rowStart: 0, rowEnd: q },
      { role: "k", module: "query_key_value", rowStart: q, rowEnd: q + kv },
      { role: "v", module: "query_key_value", rowStart: q + kv, rowEnd: q + 2 * kv },
    ],
    feedforward: ["dense_4h_to_h"],
    chatTemplate: templateByName("chatglm2") ?? "{prompt}",
    prefixPositions: "from-zero",
    modelType: "chatglm",
    // Rotary on half of each head: RotaryEmbedding(kv_channels / 2) keeps one frequency per pair.
    buffers: [{ name: "transformer.rotary_pos_emb.inv_freq", shape: [Math.ceil(Math.floor(kvChannels / 2) / 2)] }],
  });
}
