/**
 * Base forward graph of GPT-2 (GPT2LMHeadModel): token plus learned position embeddings, pre-norm
 * blocks with LayerNorm, Conv1D projections (weights stored [in, out]), fused c_attn split into
 * q, k, v, multi-head attention, gelu_tanh MLP, ln_f, head tied to wte unless the config unties it.
 */
import type { Graph } from "../../ir/graph.js";
import type { ModelProfile } from "../types.js";
import { BaseGraph, INPUT_IDS, POSITIONS, type BaseGraphOptions } from "./common.js";

const ACTIVATIONS: Readonly<Record<string, string>> = {
  gelu_new: "gelu_tanh",
  gelu_pytorch_tanh: "gelu_tanh",
  relu: "relu",
  tanh: "tanh",
};

function activation(profile: ModelProfile): string | undefined {
  return ACTIVATIONS[String(profile.config["activation_function"] ?? "gelu_new")];
}

export function gpt2Unsupported(profile: ModelProfile): string | undefined {
  if (!activation(profile))
    return `activation_function '${String(profile.config["activation_function"])}' is not supported (${Object.keys(ACTIVATIONS).join(", ")})`;
  return undefined;
}

export function buildGpt2(profile: ModelProfile, opts: BaseGraphOptions): Graph {
  const g = new BaseGraph(profile, opts);
  const { b } = g;
  const { numHeads: heads, headDim: hd, hiddenSize: d, numLayers } = profile.dims;
  const act = activation(profile);
  if (!act) throw new Error(gpt2Unsupported(profile));
  const scaleWeights = profile.config["scale_attn_weights"] !== false;
  const byLayer = profile.config["scale_attn_by_inverse_layer_idx"] === true;
  const pEmbd = g.configNumber("embd_pdrop", 0.1);
  const pResid = g.configNumber("resid_pdrop", 0.1);

  const tok = g.embed("transformer.wte", INPUT_IDS);
  const pos = g.embed("transformer.wpe", POSITIONS);
  const sum = b.op("add", "transformer", [tok, pos], {}, "transformer.embed_sum");
  let h = g.dropout(sum, pEmbd, "transformer.drop", "transformer.drop.out");
  for (let i = 0; i < numLayers; i++) {
    const p = `${profile.layerContainer}.${i}`;
    const at = `${p}.attn`;
    const x = g.norm(`${p}.ln_1`, h);
    const [q, k, v] = b.opN("split", at, [g.linear(`${at}.c_attn`, x)], { axis: -1, sizes: [d, d, d] }, [
      `${at}.q`,
      `${at}.k`,
      `${at}.v`,
    ]) as [string, string, string];
    const scale = (scaleWeights ? 1 / Math.sqrt(hd) : 1) / (byLayer ? i + 1 : 1);
    const qh = g.heads(q, heads, at, "q_heads");
    const kh = g.heads(k, heads, at, "k_heads");
    const vh = g.heads(v, heads, at, "v_heads");
    const a = b.op("attention", at, [qh, kh, vh], { causal: true, scale }, `${at}.attn`);
    const merged = g.mergeHeads(a, at);
    const o = g.dropout(g.linear(`${at}.c_proj`, merged), pResid, `${at}.resid_dropout`, `${at}.resid_dropout.out`);
    h = b.op("add", p, [h, o], {}, `${p}.attn_residual`);

    const mp = `${p}.mlp`;
    const fc = g.linear(`${mp}.c_fc`, g.norm(`${p}.ln_2`, h));
    const y = b.op(act, `${mp}.act`, [fc], {}, `${mp}.act.out`);
    const m = g.dropout(g.linear(`${mp}.c_proj`, y), pResid, `${mp}.dropout`, `${mp}.dropout.out`);
    h = b.op("add", p, [h, m], {}, `${p}.mlp_residual`);
  }
  g.headAndLoss("lm_head", g.norm("transformer.ln_f", h));
  return b.finish();
}
