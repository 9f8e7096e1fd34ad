/**
 * Pass inject-prefix: prefix tuning and P-tuning v2 (peft-methods.md §4, §7, §13.4). Each selected
 * layer's attention op gets trained key/value prefixes on its prefix_k/prefix_v inputs; every real
 * token attends to them and they are never rotated by RoPE. Whether the real tokens' positions
 * then start at P is the model's own rule (profile.prefixPositions, see models/types.ts): PEFT
 * hands the prefixes over as the attention cache, and transformers' Llama and GPT-2 number the
 * tokens after a cache of P from P (RoPE angles and wpe rows P..P+T−1), ChatGLM2 from 0. Where the
 * profile says "after-prefix", every reader of `positions` reads `positions.after_prefix` =
 * positions + P instead (P summed over the prefix methods); the graph input itself stays 0..T−1,
 * so a decoder's cache rows are still numbered from 0.
 *
 * PEFT's encoder, with L = the number of selected layers, P = tokens, kvdim = kv heads · head dim
 * (chatglm2: multi_query_group_num · kv_channels; PEFT's token_dim once it has applied its GQA rule):
 *   no projection:   prefix_encoder.embedding.weight [P, 2·L·kvdim]        N(0,1)
 *   projection:      prefix_encoder.embedding.weight [P, kvdim]            N(0,1)
 *                    prefix_encoder.transform.0.{weight [h,kvdim], bias [h]}      torch default
 *                    tanh
 *                    prefix_encoder.transform.2.{weight [2·L·kvdim,h], bias [2·L·kvdim]}
 * The encoder's input ids are always 0..P−1, so its embedding lookup is the table itself. The last
 * axis is ordered (layer, k|v, head, head_dim), so one split into 2L pieces gives each layer's key
 * and value, and split_heads gives [P, heads, head_dim]. With every layer selected this is PEFT's
 * table exactly; with a subset, `layer` counts the selected layers in ascending order (one table
 * over those, nothing stored for the others). A second prefix method in the same run gets its own
 * encoder, `prefix_encoder_<method index>`. ChatGLM's own encoder adds dropout 0.1 to its prefixes;
 * PEFT does not, nor do we.
 *
 * Gated (a UniPELT member, §11): in each layer <attention>.prefix_gate.{weight [1,d], bias [1]}
 * (weight N(0,0.02), bias torch default) reads the attention sub-layer input (the normalised
 * hidden state its projections read), and keys and values are both multiplied by that one gate
 * (AdapterHub's shared gating), which makes the prefixes per batch row: [B, P, heads, head_dim].
 */
import type { Graph } from "../ir/index.js";
import { POSITIONS } from "../models/graph/index.js";
import type { PassContext } from "./context.js";
import { attentionOf, BERT_INIT, EMBEDDING_INIT, Injector, methodsOf, torchLinearInit } from "./inject/common.js";
import { addGate } from "./inject/gate.js";

export function injectPrefix(graph: Graph, ctx: PassContext): Graph {
  const found = methodsOf(ctx, "prefix", "p_tuning_v2");
  if (found.length === 0) return graph;
  const inj = new Injector(graph);
  const { b } = inj;
  const { numKvHeads: heads, headDim, hiddenSize } = ctx.profile.dims;
  const kvdim = heads * headDim;
  let prefixLength = 0;
  for (const { m, i } of found) {
    const layers = ctx.targets[i]?.layers ?? [];
    if (layers.length === 0) continue;
    const owner = { origin: m.method, method: i };
    const { tokens: P, projection, hidden } = m.options;
    prefixLength += P;
    const width = 2 * layers.length * kvdim;
    const enc = b.has("prefix_encoder.embedding.weight") ? `prefix_encoder_${i}` : "prefix_encoder";
    b.after();
    let table: string;
    if (projection) {
      const emb = inj.param(`${enc}.embedding.weight`, [P, kvdim], EMBEDDING_INIT, owner);
      const w0 = inj.param(`${enc}.transform.0.weight`, [hidden, kvdim], torchLinearInit(kvdim), owner);
      const b0 = inj.param(`${enc}.transform.0.bias`, [hidden], torchLinearInit(kvdim), owner);
      const w2 = inj.param(`${enc}.transform.2.weight`, [width, hidden], torchLinearInit(hidden), owner);
      const b2 = inj.param(`${enc}.transform.2.bias`, [width], torchLinearInit(hidden), owner);
      const t0 = b.op("linear", enc, [emb, w0, b0], {}, `${enc}.transform.0.out`);
      const t1 = b.op("tanh", enc, [t0], {}, `${enc}.transform.1.out`);
      table = b.op("linear", enc, [t1, w2, b2], {}, `${enc}.transform.2.out`);
    } else {
      table = inj.param(`${enc}.embedding.weight`, [P, width], EMBEDDING_INIT, owner);
    }
    const names = layers.flatMap((l) => [`${enc}.out.${l}.key`, `${enc}.out.${l}.value`]);
    const pieces = b.opN("split", enc, [table], { axis: -1, sizes: names.map(() => kvdim) }, names);
    layers.forEach((layer, j) => {
      const { attn, input, module } = attentionOf(b, ctx, layer);
      b.before(attn);
      let pk = b.op("split_heads", module, [pieces[2 * j]!], { heads }, b.fresh(`${module}.prefix_k`));
      let pv = b.op("split_heads", module, [pieces[2 * j + 1]!], { heads }, b.fresh(`${module}.prefix_v`));
      if (m.gated) {
        const g = addGate(inj, { module, name: `${module}.prefix_gate`, input, targetRank: 4, weightInit: BERT_INIT, biasInit: torchLinearInit(hiddenSize), owner });
        pk = b.op("mul", module, [g, pk], {}, b.fresh(`${module}.prefix_k_gated`));
        pv = b.op("mul", module, [g, pv], {}, b.fresh(`${module}.prefix_v_gated`));
      }
      b.setInputs(attn, [...attn.inputs.slice(0, 3), pk, pv]);
    });
  }
  if (prefixLength > 0 && ctx.profile.prefixPositions === "after-prefix") {
    b.after();
    const shifted = b.op("offset", "", [POSITIONS], { by: prefixLength }, "positions.after_prefix");
    b.replaceUses(POSITIONS, shifted);
  }
  return inj.finish();
}
