/**
 * Base forward graph of ChatGLM2/3 (peft-methods.md §13.3): RMSNorm pre-norm blocks, one fused
 * query_key_value projection (with bias) split into q [heads·hd] and k, v [groups·hd], RoPE with
 * interleaved pairs on the first half of each head, multi-query attention over `groups` kv heads,
 * dense_h_to_4h then SwiGLU, dense_4h_to_h, final_layernorm, untied output_layer. HF runs this
 * sequence-first ([S,B,d]); the IR is batch-first like the other models, which changes no math.
 */
import type { Graph } from "../../ir/graph.js";
import type { ModelProfile } from "../types.js";
import { BaseGraph, INPUT_IDS, POSITIONS, type BaseGraphOptions } from "./common.js";

export function chatglm2Unsupported(profile: ModelProfile): string | undefined {
  const c = profile.config;
  if (c["fp32_residual_connection"] === true) return "fp32_residual_connection is not supported";
  return undefined;
}

/**
 * Channels per head that RoPE rotates: RotaryEmbedding(kv_channels / 2) keeps one frequency per
 * pair of that width, and apply_rotary_pos_emb rotates twice as many channels as it has frequencies.
 */
export function chatglm2RotaryDim(headDim: number): number {
  return 2 * Math.ceil(Math.floor(headDim / 2) / 2);
}

export function buildChatglm2(profile: ModelProfile, opts: BaseGraphOptions): Graph {
  const g = new BaseGraph(profile, opts);
  const { b } = g;
  const { numHeads: hq, numKvHeads: groups, headDim: hd, numLayers, ropeTheta } = profile.dims;
  const rope = { mode: "interleaved", rotary_dim: chatglm2RotaryDim(hd), theta: ropeTheta };
  const residualFromNorm = profile.config["apply_residual_connection_post_layernorm"] === true;
  const pDrop = g.configNumber("hidden_dropout", 0);

  let h = g.embed("transformer.embedding.word_embeddings", INPUT_IDS);
  for (let i = 0; i < numLayers; i++) {
    const p = `${profile.layerContainer}.${i}`;
    const at = `${p}.self_attention`;
    const x = g.norm(`${p}.input_layernorm`, h);
    const qkv = g.linear(`${at}.query_key_value`, x);
    const [q, k, v] = b.opN("split", at, [qkv], { axis: -1, sizes: [hq * hd, groups * hd, groups * hd] }, [
      `${at}.q`,
      `${at}.k`,
      `${at}.v`,
    ]) as [string, string, string];
    const qr = b.op("rope", at, [g.heads(q, hq, at, "q_heads"), POSITIONS], rope, `${at}.q_rot`);
    const kr = b.op("rope", at, [g.heads(k, groups, at, "k_heads"), POSITIONS], rope, `${at}.k_rot`);
    const vh = g.heads(v, groups, at, "v_heads");
    const a = b.op("attention", at, [qr, kr, vh], { causal: true, scale: 1 / Math.sqrt(hd) }, `${at}.attn`);
    const merged = g.mergeHeads(a, at);
    const o = g.dropout(g.linear(`${at}.dense`, merged), pDrop, p, `${p}.attn_dropout`);
    h = b.op("add", p, [residualFromNorm ? x : h, o], {}, `${p}.attn_residual`);

    const mp = `${p}.mlp`;
    const y = g.norm(`${p}.post_attention_layernorm`, h);
    const z = b.op("swiglu", mp, [g.linear(`${mp}.dense_h_to_4h`, y)], {}, `${mp}.swiglu`);
    const d = g.dropout(g.linear(`${mp}.dense_4h_to_h`, z), pDrop, p, `${p}.mlp_dropout`);
    h = b.op("add", p, [residualFromNorm ? y : h, d], {}, `${p}.mlp_residual`);
  }
  const finalNorm = "transformer.encoder.final_layernorm";
  g.headAndLoss("transformer.output_layer", g.has(finalNorm) ? g.norm(finalNorm, h) : h);
  return b.finish();
}
