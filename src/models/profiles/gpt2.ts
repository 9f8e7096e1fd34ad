/**
 * GPT-2 (GPT2LMHeadModel). Its projections are Conv1D modules that store the weight [in, out]
 * (`transposed`), every linear and LayerNorm has a bias, positions are a learned embedding (`wpe`), and
 * `c_attn` fuses q, k, v as [q | k | v] on the output side, so @q/@k/@v are output slices of it.
 *
 * Names are GPT2LMHeadModel's (`transformer.h.0.attn.c_attn.weight`). Checkpoints saved from the bare
 * GPT2Model, such as OpenAI's original gpt2 files, omit the `transformer.` prefix (`h.0.attn.c_attn.weight`,
 * `wte.weight`) and older ones also hold per-layer `attn.bias` (the causal mask, [1, 1, n_positions,
 * n_positions]) and `attn.masked_bias` buffers; `checkpointPrefix` and `buffers` describe both, and
 * src/models/checkpoint-names.ts maps such names onto these. lm_head is tied to wte unless the config
 * sets tie_word_embeddings to false.
 */
import { ConfigReader, MAX_LAYERS, readTokenIds } from "../config-reader.js";
import { templateByName } from "../templates.js";
import type { ModelProfile, ModuleInfo, ParamInfo } from "../types.js";
import { embedding, finishProfile, layernorm, linear, tiedHead } from "./modules.js";

export const GPT2_MODEL_TYPES = ["gpt2"] as const;

export function gpt2Profile(config: Record<string, unknown>, source: string): ModelProfile | string {
  const r = new ConfigReader(config);
  const hidden = r.int("n_embd");
  const layers = r.int("n_layer", undefined, MAX_LAYERS);
  const heads = r.int("n_head");
  if (hidden % heads !== 0) r.fail(`n_embd ${hidden} is not divisible by n_head ${heads}`);
  const inner = r.int("n_inner", 4 * hidden);
  const vocab = r.int("vocab_size");
  const positions = r.int("n_positions", 1024);
  const eps = r.float("layer_norm_epsilon", 1e-5);
  const tied = r.bool("tie_word_embeddings", true);
  if (r.error) return r.error;

  const conv = (layer: number, roles: string[]) => ({ bias: true, transposed: true, layer, roles });
  const modules: ModuleInfo[] = [
    embedding("transformer.wte", vocab, hidden, ["embed"]),
    embedding("transformer.wpe", positions, hidden, ["pos_embed"]),
  ];
  const buffers: ParamInfo[] = [];
  for (let i = 0; i < layers; i++) {
    const p = `transformer.h.${i}`;
    modules.push(
      layernorm(`${p}.ln_1`, hidden, i),
      linear(`${p}.attn.c_attn`, hidden, 3 * hidden, conv(i, ["qkv", "linear"])),
      linear(`${p}.attn.c_proj`, hidden, hidden, conv(i, ["attn_out", "linear"])),
      layernorm(`${p}.ln_2`, hidden, i),
      linear(`${p}.mlp.c_fc`, hidden, inner, conv(i, ["ffn_in", "linear"])),
      linear(`${p}.mlp.c_proj`, inner, hidden, conv(i, ["ffn_out", "linear"])),
    );
    buffers.push(
      { name: `${p}.attn.bias`, shape: [1, 1, positions, positions] },
      { name: `${p}.attn.masked_bias`, shape: [] },
    );
  }
  modules.push(layernorm("transformer.ln_f", hidden));
  modules.push(
    tied
      ? tiedHead("lm_head", hidden, vocab, "transformer.wte.weight")
      : linear("lm_head", hidden, vocab, { bias: false, roles: ["head"] }),
  );

  const dims: ModelProfile["dims"] = {
    hiddenSize: hidden,
    numLayers: layers,
    numHeads: heads,
    numKvHeads: heads,
    headDim: hidden / heads,
    intermediateSize: inner,
    vocabSize: vocab,
    maxPositions: positions,
    normEps: eps,
    // Learned absolute positions: no rotary embedding.
    ropeTheta: 0,
    tiedEmbeddings: tied,
  };
  readTokenIds(dims, r);
  return finishProfile({
    arch: "gpt2",
    name: "gpt2",
    source,
    config,
    dims,
    layerContainer: "transformer.h",
    modules,
    sliceRoles: [
      { role: "q", module: "c_attn", rowStart: 0, rowEnd: hidden },
      { role: "k", module: "c_attn", rowStart: hidden, rowEnd: 2 * hidden },
      { role: "v", module: "c_attn", rowStart: 2 * hidden, rowEnd: 3 * hidden },
    ],
    feedforward: ["mlp.c_proj"],
    chatTemplate: templateByName("plain") ?? "{prompt}",
    prefixPositions: "after-prefix",
    modelType: "gpt2",
    buffers,
    checkpointPrefix: "transformer.",
  });
}
