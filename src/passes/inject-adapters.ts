/**
 * Pass inject-adapters: AdapterHub's bottleneck adapters (peft-methods.md §9), in the selected layers.
 *
 *   f(u) = dropout(scaling · up(act(down(u))))  [× gate(u) when gated]     down: Linear(d, m), up: Linear(m, d)
 *
 * m = bottleneck, or floor(hidden / reduction) (at least 1). act: relu, swish = silu, gelu (exact,
 * erf), tanh. Inits: bert = N(0, 0.02) weights, zero biases; mam = down U(±1/√d), up zero;
 * houlsby = AdapterHub's truncated normal (std 0.01, cut at ±0.02), written here as N(0, 0.01)
 * because ParamInit has no truncated kind (4.6% of N(0, 0.01) draws fall outside ±0.02).
 *
 * Where it sits. Our models are pre-norm: a block is h₁ = h + Attn(N₁(h)), h₂ = h₁ + FFN(N₂(h₁)),
 * i.e. a sub-layer output o added to the residual stream r by the `<layer>.attn_residual` /
 * `<layer>.mlp_residual` add. BERT's post-LN placement (§9.3) becomes, with no LayerNorm around
 * the residual add to re-apply:
 *   sequential (houlsby at both adds, pfeiffer at the FFN add):  r + (o + f(o))
 *     the adapter reads the sub-layer output, after its projection (and its dropout), before the add;
 *   parallel (the FFN add):                                       r + (o + f(r))
 *     the adapter reads the sub-layer's input, the residual stream entering the block before N₂
 *     (AdapterHub's residual_input), and its output joins the sub-layer output.
 * Read literally, §9.3's flags would feed Pfeiffer's adapter o + r here (original_ln_before adds
 * the residual before a LayerNorm that a pre-norm block does not have); we place Pfeiffer like
 * Houlsby's FFN adapter, reading o, so both sequential variants have one placement.
 *
 * Parameters, per layer L (`model.layers.3`) and place P (attn, ffn; ffn_parallel for parallel):
 *   L.adapter.P.down.weight [m,d]  L.adapter.P.down.bias [m]  L.adapter.P.up.weight [d,m]  L.adapter.P.up.bias [d]
 *   gated: L.adapter.P.gate.weight [1,d]  L.adapter.P.gate.bias [1]   (bert/mam: N(0,0.02) and 0;
 *   houlsby: torch's default U(±1/√d) for both)
 */
import type { AdapterOptions } from "../check/spec.js";
import type { Graph, ParamInit } from "../ir/index.js";
import type { PassContext } from "./context.js";
import { BERT_INIT, Injector, layerPath, methodsOf, producerOf, torchLinearInit } from "./inject/common.js";
import { addGate } from "./inject/gate.js";

const ACT: Record<AdapterOptions["act"], string> = { relu: "relu", swish: "silu", gelu: "gelu", tanh: "tanh" };

type Place = "attn" | "ffn" | "ffn_parallel";

function inits(o: AdapterOptions, d: number): { down: ParamInit; up: ParamInit; gateW: ParamInit; gateB: ParamInit } {
  const zero: ParamInit = { kind: "zeros" };
  switch (o.init) {
    case "bert":
      return { down: BERT_INIT, up: BERT_INIT, gateW: BERT_INIT, gateB: zero };
    case "mam":
      return { down: torchLinearInit(d), up: zero, gateW: BERT_INIT, gateB: zero };
    case "houlsby": {
      const tn: ParamInit = { kind: "normal", mean: 0, std: 0.01 };
      return { down: tn, up: tn, gateW: torchLinearInit(d), gateB: torchLinearInit(d) };
    }
  }
}

export function injectAdapters(graph: Graph, ctx: PassContext): Graph {
  const found = methodsOf(ctx, "adapter");
  if (found.length === 0) return graph;
  const inj = new Injector(graph);
  const { b } = inj;
  const d = ctx.profile.dims.hiddenSize;
  for (const { m, i } of found) {
    const o = m.options;
    const owner = { origin: "adapter", method: i };
    const width = o.bottleneck ?? Math.max(1, Math.floor(d / (o.reduction ?? 16)));
    const init = inits(o, d);
    const places: Place[] = m.variant === "houlsby" ? ["attn", "ffn"] : m.variant === "pfeiffer" ? ["ffn"] : ["ffn_parallel"];
    for (const layer of ctx.targets[i]?.layers ?? []) {
      const lp = layerPath(ctx, layer);
      for (const place of places) {
        const add = producerOf(b, `${lp}.${place === "attn" ? "attn" : "mlp"}_residual`);
        const [residual, out] = add.inputs as [string, string];
        const u = place === "ffn_parallel" ? residual : out;
        const name = `${lp}.adapter.${place}`;
        b.before(add);
        const down = b.op("linear", name, [u, inj.param(`${name}.down.weight`, [width, d], init.down, owner), inj.param(`${name}.down.bias`, [width], { kind: "zeros" }, owner)], {}, b.fresh(`${name}.down.out`));
        const act = b.op(ACT[o.act], name, [down], {}, b.fresh(`${name}.act`));
        let f = b.op("linear", name, [act, inj.param(`${name}.up.weight`, [d, width], init.up, owner), inj.param(`${name}.up.bias`, [d], { kind: "zeros" }, owner)], {}, b.fresh(`${name}.up.out`));
        if (o.scaling !== 1) f = b.op("scale", name, [f], { factor: o.scaling }, b.fresh(`${name}.scaled`));
        if (o.dropout > 0) f = b.op("dropout", name, [f], { p: o.dropout, stream: `${name}.dropout` }, b.fresh(`${name}.dropout.out`));
        if (m.gated) {
          const g = addGate(inj, { module: name, name: `${name}.gate`, input: u, targetRank: b.typeOf(f).shape.length, weightInit: init.gateW, biasInit: init.gateB, owner });
          f = b.op("mul", name, [f, g], {}, b.fresh(`${name}.gated`));
        }
        const joined = b.op("add", name, [out, f], {}, b.fresh(`${name}.out`));
        b.setInputs(add, [residual, joined]);
      }
    }
  }
  return inj.finish();
}
