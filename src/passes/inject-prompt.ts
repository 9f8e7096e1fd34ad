/**
 * Pass inject-prompt: P-tuning and prompt tuning (peft-methods.md §5, §6). P virtual-token
 * embeddings are prepended to the token embeddings, as PEFT prepends them to inputs_embeds:
 *
 *   prompt tuning:  prompt_encoder.embedding.weight [P, D], used as it is;
 *                   init random N(0,1); vocab = rows of P token ids drawn uniformly from the
 *                   vocabulary with the train seed; text = rows of the text's token ids, repeated
 *                   and cut to P (needs the model's tokenizer: ctx.encode).
 *   P-tuning (MLP): prompt_encoder.embedding.weight [P, D] N(0,1) through
 *                   prompt_encoder.mlp_head.0 Linear(D,h) · relu · .2 Linear(h,h) · relu · .4 Linear(h,D)
 *                   (torch default inits; h = hidden or D). The LSTM encoder is not built yet (P316).
 *
 * The sequence grows from T to T+P after the embedding. What the graph's inputs become:
 *   input_ids [B,T]   unchanged: the real tokens only;
 *   labels    [B,T]   unchanged: the graph prepends P labels of -100 itself, so virtual positions
 *                     never count in the loss (PEFT pads labels the same way);
 *   positions [B,T+P] covers the virtual tokens too: PEFT drops position ids under prompt learning,
 *                     so the model numbers the joined sequence 0..T+P−1 and the real tokens start at P.
 * logits come out [B,T+P,V]; the first P rows belong to the virtual tokens.
 */
import { diag } from "../diagnostics/index.js";
import { dimAdd, type Graph, type ParamInit } from "../ir/index.js";
import { INPUT_IDS, LABELS, POSITIONS } from "../models/graph/index.js";
import { Prng } from "../models/prng.js";
import type { PassContext } from "./context.js";
import { EMBEDDING_INIT, Injector, methodsOf, torchLinearInit, type MethodOf } from "./inject/common.js";

const ENC = "prompt_encoder";

export function injectPrompt(graph: Graph, ctx: PassContext): Graph {
  const found = methodsOf(ctx, "p_tuning", "prompt_tuning");
  const first = found[0];
  if (!first) return graph;
  const { m, i } = first;
  if (m.gated) {
    ctx.diagnostics.push(diag("P316", ctx.file, m.span, [`a gate on ${m.method}`, "gates exist for lora, adapters, prefix and p_tuning_v2"]));
    return graph;
  }
  const embed = ctx.profile.modules.find((x) => x.roles.includes("embed"));
  const table = embed?.params.find((p) => p.name.endsWith(".weight"))?.name;
  if (!embed || !table) throw new Error(`${ctx.profile.name} has no token embedding`);
  const inj = new Injector(graph);
  const { b } = inj;
  const owner = { origin: m.method, method: i };
  const P = m.options.tokens;
  const D = embed.outFeatures;

  let prompt: string;
  if (m.method === "p_tuning") {
    if (m.options.encoder === "lstm") {
      ctx.diagnostics.push(diag("P316", ctx.file, m.span, ["p_tuning encoder = lstm", "use encoder = mlp"]));
      return graph;
    }
    prompt = mlpEncoder(inj, P, D, m.options.hidden ?? D, owner);
  } else {
    const init = promptInit(m, ctx, table, embed.inFeatures);
    if (!init) return graph;
    prompt = inj.param(`${ENC}.embedding.weight`, [P, D], init, owner);
  }

  const e = b.uses(table).find((u) => u.op.op === "embedding" && u.op.inputs[0] === INPUT_IDS)?.op.outputs[0]?.name;
  if (!e) throw new Error(`no token embedding op reads ${table}`);
  const [batch, seq] = b.typeOf(e).shape as [string | number, string | number];
  b.after(e);
  const rows = b.op("broadcast", ENC, [prompt], { shape: [batch, P, D] }, `${ENC}.rows`);
  const joined = b.op("concat", ENC, [rows, e], { axis: 1 }, `${ENC}.embeds`);
  const pad = b.op("full", ENC, [], { shape: [batch, P], value: -100, dtype: "i32" }, `${ENC}.label_pad`);
  const labels = b.op("concat", ENC, [pad, LABELS], { axis: 1 }, `${ENC}.labels`);
  b.replaceUses(e, joined, { shapeChange: true });
  b.replaceUses(LABELS, labels, { shapeChange: true });
  b.setInputShape(POSITIONS, [batch, dimAdd(seq, P)]);
  b.retype();
  return inj.finish();
}

function mlpEncoder(inj: Injector, P: number, D: number, h: number, owner: { origin: string; method: number }): string {
  const { b } = inj;
  const emb = inj.param(`${ENC}.embedding.weight`, [P, D], EMBEDDING_INIT, owner);
  const layer = (x: string, k: number, fanIn: number, out: number): string =>
    b.op("linear", ENC, [x, inj.param(`${ENC}.mlp_head.${k}.weight`, [out, fanIn], torchLinearInit(fanIn), owner), inj.param(`${ENC}.mlp_head.${k}.bias`, [out], torchLinearInit(fanIn), owner)], {}, `${ENC}.mlp_head.${k}.out`);
  b.after();
  const a1 = b.op("relu", ENC, [layer(emb, 0, D, h)], {}, `${ENC}.mlp_head.1.out`);
  const a2 = b.op("relu", ENC, [layer(a1, 2, h, h)], {}, `${ENC}.mlp_head.3.out`);
  return layer(a2, 4, h, D);
}

/** The init of prompt tuning's table, or undefined after reporting why it cannot be built. */
function promptInit(m: MethodOf<"prompt_tuning">, ctx: PassContext, table: string, vocab: number): ParamInit | undefined {
  const P = m.options.tokens;
  const init = m.options.init;
  switch (init.kind) {
    case "random":
      return EMBEDDING_INIT;
    case "vocab": {
      const rng = new Prng(ctx.spec.train.seed);
      return { kind: "rows", from: table, rows: Array.from({ length: P }, () => Math.floor(rng.uniform() * vocab)) };
    }
    case "text": {
      if (!ctx.encode) {
        ctx.diagnostics.push(diag("P316", ctx.file, m.span, ["prompt_tuning init from text without a tokenizer", "prompt_tuning text init needs the model's tokenizer; use init = random or init = vocab"]));
        return undefined;
      }
      const ids = ctx.encode(init.text);
      if (ids.length === 0) {
        ctx.diagnostics.push(diag("P316", ctx.file, m.span, ["prompt_tuning init from a text with no tokens", "give a text the tokenizer turns into at least one token"]));
        return undefined;
      }
      return { kind: "rows", from: table, rows: Array.from({ length: P }, (_, k) => ids[k % ids.length]!) };
    }
  }
}
