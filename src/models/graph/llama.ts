/**
 * Base forward graph of the Llama family (LlamaForCausalLM, Mistral, Qwen2): pre-norm blocks with
 * RMSNorm, rotate-half RoPE on q and k, grouped-query attention, SwiGLU MLP silu(gate) ⊙ up, final
 * norm, head (tied to embed_tokens when the profile says so) and shifted cross-entropy.
 */
import type { Graph } from "../../ir/graph.js";
import type { ModelProfile } from "../types.js";
import { BaseGraph, INPUT_IDS, POSITIONS, type BaseGraphOptions } from "./common.js";

/** Config features this builder does not model, as a reason; undefined when it can build the graph. */
export function llamaUnsupported(profile: ModelProfile): string | undefined {
  const act = profile.config["hidden_act"] ?? "silu";
  if (act !== "silu") return `hidden_act '${String(act)}' is not supported (only silu)`;
  const scaling = profile.config["rope_scaling"];
  if (scaling !== undefined && scaling !== null) return `rope_scaling is not supported`;
  return undefined;
}

/** Channels per head that RoPE rotates (partial_rotary_factor, as transformers rounds it: down to an even count). */
export function llamaRotaryDim(profile: ModelProfile): number {
  const f = profile.config["partial_rotary_factor"];
  const hd = profile.dims.headDim;
  if (typeof f !== "number" || f >= 1 || f <= 0) return hd;
  return Math.max(2, Math.floor((hd * f) / 2) * 2);
}

export function buildLlama(profile: ModelProfile, opts: BaseGraphOptions): Graph {
  const g = new BaseGraph(profile, opts);
  const { b } = g;
  const { numHeads: hq, numKvHeads: hkv, headDim: hd, numLayers, ropeTheta } = profile.dims;
  const rope = { mode: "half", rotary_dim: llamaRotaryDim(profile), theta: ropeTheta };

  let h = g.embed("model.embed_tokens", INPUT_IDS);
  for (let i = 0; i < numLayers; i++) {
    const p = `${profile.layerContainer}.${i}`;
    const at = `${p}.self_attn`;
    const x = g.norm(`${p}.input_layernorm`, h);
    const q = g.heads(g.linear(`${at}.q_proj`, x), hq, at, "q_heads");
    const k = g.heads(g.linear(`${at}.k_proj`, x), hkv, at, "k_heads");
    const v = g.heads(g.linear(`${at}.v_proj`, x), hkv, at, "v_heads");
    const qr = b.op("rope", at, [q, POSITIONS], rope, `${at}.q_rot`);
    const kr = b.op("rope", at, [k, POSITIONS], rope, `${at}.k_rot`);
    const a = b.op("attention", at, [qr, kr, v], { causal: true, scale: 1 / Math.sqrt(hd) }, `${at}.attn`);
    const merged = g.mergeHeads(a, at);
    const o = g.linear(`${at}.o_proj`, merged);
    h = b.op("add", p, [h, o], {}, `${p}.attn_residual`);

    const mp = `${p}.mlp`;
    const y = g.norm(`${p}.post_attention_layernorm`, h);
    const gate = g.linear(`${mp}.gate_proj`, y);
    const up = g.linear(`${mp}.up_proj`, y);
    const act = b.op("silu", `${mp}.act_fn`, [gate], {}, `${mp}.act_fn.out`);
    const z = b.op("mul", mp, [act, up], {}, `${mp}.gated`);
    const d = g.linear(`${mp}.down_proj`, z);
    h = b.op("add", p, [h, d], {}, `${p}.mlp_residual`);
  }
  g.headAndLoss("lm_head", g.norm("model.norm", h));
  return b.finish();
}
