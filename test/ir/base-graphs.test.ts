import { describe, expect, it } from "vitest";
import type { Graph, Op } from "../../src/ir/graph.js";
import { numel } from "../../src/ir/shape.js";
import { verify } from "../../src/ir/verify.js";
import { baseGraphUnsupported, buildBaseGraph } from "../../src/models/graph/index.js";
import { builtinNames } from "../../src/models/builtin.js";
import type { ModelProfile } from "../../src/models/types.js";
import { builtinProfile, folderProfile, safetensorsShapes } from "./helpers.js";

function opOf(g: Graph, output: string): Op {
  const op = g.ops.find((o) => o.outputs.some((v) => v.name === output));
  if (!op) throw new Error(`no op defines ${output}`);
  return op;
}

function typeOf(g: Graph, name: string): string {
  for (const op of g.ops) for (const o of op.outputs) if (o.name === name) return `${o.dtype}[${o.shape.join(",")}]`;
  throw new Error(`no value ${name}`);
}

function profileParams(p: ModelProfile): Map<string, number[]> {
  return new Map(p.modules.flatMap((m) => m.params.map((x) => [x.name, x.shape] as [string, number[]])));
}

/** Op kinds owned by a layer module or its submodules, in order. */
function layerOps(g: Graph, layer: string): string[] {
  return g.ops.filter((o) => o.module === layer || o.module.startsWith(`${layer}.`)).map((o) => o.op);
}

describe("base graphs of every built-in", () => {
  for (const name of builtinNames()) {
    it(`${name}: verifies, and its parameters are exactly the profile's, frozen`, () => {
      const p = builtinProfile(name);
      const g = buildBaseGraph(p);
      expect(verify(g)).toEqual([]);
      expect(new Map(g.params.map((x) => [x.name, x.shape]))).toEqual(profileParams(p));
      expect(g.params.every((x) => !x.trainable && x.origin === "base" && x.init === undefined)).toBe(true);
      expect(g.params.reduce((s, x) => s + numel(x.shape), 0)).toBe(p.totalParams);
      expect(g.outputs).toEqual(["loss", "logits"]);
      expect(g.inputs.map((v) => `${v.name}:${v.dtype}[${v.shape.join(",")}]`)).toEqual([
        "input_ids:i32[B,T]",
        "labels:i32[B,T]",
        "positions:i32[B,T]",
      ]);
      expect(typeOf(g, "loss")).toBe("f32[]");
      expect(typeOf(g, "logits")).toBe(`f32[B,T,${p.dims.vocabSize}]`);
    });
  }
});

describe("parameters match real checkpoints tensor for tensor", () => {
  const cases: [string, string][] = [
    ["tiny-chatglm2", "tiny-chatglm2/model.safetensors"],
    ["tiny-gpt2-d32", "tiny-gpt2-d32/model.safetensors"],
    ["tiny-gpt2", "tiny-gpt2/model.safetensors"],
    ["stories260K/hf", "stories260K/hf/model.safetensors"],
  ];
  for (const [dir, file] of cases) {
    it(dir, () => {
      const p = folderProfile(dir);
      const g = buildBaseGraph(p);
      expect(verify(g)).toEqual([]);
      const ckpt = safetensorsShapes(file);
      for (const b of p.buffers ?? []) ckpt.delete(b.name);
      expect(new Map(g.params.map((x) => [x.name, x.shape]))).toEqual(ckpt);
    });
  }
});

describe("ChatGLM2-6B from its config alone", () => {
  const p = folderProfile("chatglm2-6b-config");
  const t0 = performance.now();
  const g = buildBaseGraph(p);
  const ms = performance.now() - t0;
  const L = "transformer.encoder.layers.27.self_attention";

  it("builds fast and verifies", () => {
    expect(ms).toBeLessThan(2000);
    expect(verify(g)).toEqual([]);
    expect(g.params).toHaveLength(1 + 28 * 7 + 2);
  });

  it("counts 6,243,584,000 parameters (peft-methods.md §13)", () => {
    expect(g.params.reduce((s, x) => s + numel(x.shape), 0)).toBe(6_243_584_000);
  });

  it("has the §13.3 block math and shapes", () => {
    expect(typeOf(g, `${L}.query_key_value.out`)).toBe("f32[B,T,4608]");
    expect(opOf(g, `${L}.query_key_value.out`).inputs.slice(1)).toEqual([
      `${L}.query_key_value.weight`,
      `${L}.query_key_value.bias`,
    ]);
    expect(opOf(g, `${L}.q`).attrs).toEqual({ axis: -1, sizes: [4096, 256, 256] });
    expect(typeOf(g, `${L}.q_heads`)).toBe("f32[B,T,32,128]");
    expect(typeOf(g, `${L}.k_heads`)).toBe("f32[B,T,2,128]");
    expect(opOf(g, `${L}.q_rot`).attrs).toEqual({ mode: "interleaved", rotary_dim: 64, theta: 10000 });
    expect(opOf(g, `${L}.k_rot`).attrs).toEqual({ mode: "interleaved", rotary_dim: 64, theta: 10000 });
    const attn = opOf(g, `${L}.attn`);
    expect(attn.inputs).toEqual([`${L}.q_rot`, `${L}.k_rot`, `${L}.v_heads`]);
    expect(attn.attrs).toEqual({ causal: true, scale: 1 / Math.sqrt(128) });
    expect(typeOf(g, "transformer.encoder.layers.27.mlp.dense_h_to_4h.out")).toBe("f32[B,T,27392]");
    expect(typeOf(g, "transformer.encoder.layers.27.mlp.swiglu")).toBe("f32[B,T,13696]");
    expect(opOf(g, "logits").inputs).toEqual(["transformer.encoder.final_layernorm.out", "transformer.output_layer.weight"]);
    expect(typeOf(g, "logits")).toBe("f32[B,T,65024]");
  });

  it("wires every block pre-norm with residuals on the un-normalised stream", () => {
    const l = "transformer.encoder.layers.5";
    expect(layerOps(g, l)).toEqual([
      "rmsnorm", "linear", "split", "split_heads", "rope", "split_heads", "rope", "split_heads", "attention",
      "merge_heads", "linear", "add", "rmsnorm", "linear", "swiglu", "linear", "add",
    ]);
    expect(opOf(g, `${l}.attn_residual`).inputs).toEqual([
      "transformer.encoder.layers.4.mlp_residual",
      `${l}.self_attention.dense.out`,
    ]);
    expect(opOf(g, `${l}.mlp_residual`).inputs).toEqual([`${l}.attn_residual`, `${l}.mlp.dense_4h_to_h.out`]);
  });
});

describe("Llama (stories260K)", () => {
  const p = folderProfile("stories260K/hf");
  const g = buildBaseGraph(p);

  it("has 260,032 parameters: the 260K of its name, head tied to embed_tokens", () => {
    // 512·64 embed + 5 · (64·64·2 + 32·64·2 + 172·64·3 + 2·64) + 64 final norm
    expect(g.params.reduce((s, x) => s + numel(x.shape), 0)).toBe(260_032);
    expect(opOf(g, "logits").inputs).toEqual(["model.norm.out", "model.embed_tokens.weight"]);
    expect(g.params.some((x) => x.name.startsWith("lm_head"))).toBe(false);
  });

  it("uses GQA 8 query heads over 4 kv heads, rotate-half RoPE over the full head", () => {
    const a = "model.layers.4.self_attn";
    expect(typeOf(g, `${a}.q_heads`)).toBe("f32[B,T,8,8]");
    expect(typeOf(g, `${a}.k_heads`)).toBe("f32[B,T,4,8]");
    expect(opOf(g, `${a}.q_rot`).attrs).toEqual({ mode: "half", rotary_dim: 8, theta: 10000 });
    expect(opOf(g, `${a}.attn`).attrs).toEqual({ causal: true, scale: 1 / Math.sqrt(8) });
  });

  it("runs SwiGLU as silu(gate) ⊙ up", () => {
    const l = "model.layers.1";
    expect(layerOps(g, l)).toEqual([
      "rmsnorm", "linear", "split_heads", "linear", "split_heads", "linear", "split_heads", "rope", "rope",
      "attention", "merge_heads", "linear", "add", "rmsnorm", "linear", "linear", "silu", "mul", "linear", "add",
    ]);
    expect(opOf(g, `${l}.mlp.act_fn.out`).inputs).toEqual([`${l}.mlp.gate_proj.out`]);
    expect(opOf(g, `${l}.mlp.gated`).inputs).toEqual([`${l}.mlp.act_fn.out`, `${l}.mlp.up_proj.out`]);
    expect(opOf(g, `${l}.mlp.down_proj.out`).inputs[0]).toBe(`${l}.mlp.gated`);
  });

  it("reports config features it does not model instead of building a wrong graph", () => {
    const bad = { ...p, config: { ...p.config, hidden_act: "gelu" } };
    expect(baseGraphUnsupported(bad)).toBe("hidden_act 'gelu' is not supported (only silu)");
    expect(() => buildBaseGraph(bad)).toThrow(/hidden_act 'gelu'/);
  });
});

describe("GPT-2 (tiny-gpt2-d32)", () => {
  const p = folderProfile("tiny-gpt2-d32");
  const g = buildBaseGraph(p);

  it("adds learned positions, uses Conv1D weights and a tied head", () => {
    expect(opOf(g, "transformer.wpe.out").inputs).toEqual(["positions", "transformer.wpe.weight"]);
    expect(opOf(g, "transformer.embed_sum").inputs).toEqual(["transformer.wte.out", "transformer.wpe.out"]);
    const c = opOf(g, "transformer.h.0.attn.c_attn.out");
    expect(c.attrs).toEqual({ transposed: true });
    expect(typeOf(g, "transformer.h.0.attn.c_attn.out")).toBe("f32[B,T,96]");
    expect(opOf(g, "transformer.h.0.attn.q").attrs).toEqual({ axis: -1, sizes: [32, 32, 32] });
    expect(opOf(g, "transformer.h.0.attn.attn").attrs).toEqual({ causal: true, scale: 0.25 });
    expect(opOf(g, "logits").inputs).toEqual(["transformer.ln_f.out", "transformer.wte.weight"]);
  });

  it("runs the block as LayerNorm pre-norm with a gelu_tanh MLP", () => {
    expect(layerOps(g, "transformer.h.1")).toEqual([
      "layernorm", "linear", "split", "split_heads", "split_heads", "split_heads", "attention", "merge_heads",
      "linear", "add", "layernorm", "linear", "gelu_tanh", "linear", "add",
    ]);
  });

  it("inserts the config's dropout only when asked", () => {
    const q = folderProfile("tiny-gpt2"); // embd_pdrop = resid_pdrop = 0.1
    expect(buildBaseGraph(q).ops.filter((o) => o.op === "dropout")).toHaveLength(0);
    const d = buildBaseGraph(q, { dropout: true });
    expect(verify(d)).toEqual([]);
    const drops = d.ops.filter((o) => o.op === "dropout");
    expect(drops.map((o) => o.outputs[0]!.name)).toEqual([
      "transformer.drop.out",
      "transformer.h.0.attn.resid_dropout.out",
      "transformer.h.0.mlp.dropout.out",
      "transformer.h.1.attn.resid_dropout.out",
      "transformer.h.1.mlp.dropout.out",
    ]);
    expect(drops.every((o) => o.attrs["p"] === 0.1)).toBe(true);
    // d32 has all dropout at 0: nothing to insert.
    expect(buildBaseGraph(p, { dropout: true }).ops.some((o) => o.op === "dropout")).toBe(false);
  });

  it("stores frozen weights in f16 on request while activations stay f32", () => {
    const h = buildBaseGraph(p, { paramDtype: "f16" });
    expect(verify(h)).toEqual([]);
    expect(h.params.every((x) => x.dtype === "f16")).toBe(true);
    expect(typeOf(h, "transformer.h.0.attn.c_attn.out")).toBe("f32[B,T,96]");
    expect(typeOf(h, "logits")).toBe("f32[B,T,50257]");
  });
});
