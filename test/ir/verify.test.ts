import { describe, expect, it } from "vitest";
import { cloneGraph, type Graph, type Op } from "../../src/ir/graph.js";
import { verify } from "../../src/ir/verify.js";
import { buildBaseGraph } from "../../src/models/graph/index.js";
import { builtinProfile } from "./helpers.js";

const base = buildBaseGraph(builtinProfile("tiny-llama"));
const Q = "model.layers.0.self_attn.q_proj.out";

/** A copy of the tiny Llama graph, the index of the op defining `out`, and that op. */
function broken(out: string): { g: Graph; i: number; op: Op } {
  const g = cloneGraph(base);
  const i = g.ops.findIndex((o) => o.outputs.some((v) => v.name === out));
  return { g, i, op: g.ops[i]! };
}

describe("verify", () => {
  it("accepts the base graph", () => {
    expect(verify(base)).toEqual([]);
  });

  it("catches a recorded shape that the rule does not infer", () => {
    const { g, i, op } = broken(Q);
    op.outputs[0]!.shape = ["B", "T", 63];
    const errs = verify(g);
    expect(errs[0]).toBe(`op ${i} (linear ${Q}): output '${Q}' is recorded as f32[B,T,63] but infers to f32[B,T,64]`);
  });

  it("catches a recorded dtype that the rule does not infer", () => {
    const { g, i, op } = broken(Q);
    op.outputs[0]!.dtype = "f16";
    expect(verify(g)[0]).toBe(`op ${i} (linear ${Q}): output '${Q}' is recorded as f16[B,T,64] but infers to f32[B,T,64]`);
  });

  it("catches an undefined value and a parameter that does not exist", () => {
    const { g, i, op } = broken(Q);
    op.inputs[1] = "model.layers.0.self_attn.q_proj.weight_";
    expect(verify(g)).toEqual([
      `op ${i} (linear ${Q}): undefined value 'model.layers.0.self_attn.q_proj.weight_'`,
      "param 'model.layers.0.self_attn.q_proj.weight' is never read",
    ]);
  });

  it("catches a value defined twice", () => {
    const { g, op } = broken("model.layers.0.self_attn.k_proj.out");
    op.outputs[0]!.name = Q;
    const errs = verify(g);
    expect(errs.some((e) => e.startsWith(`value '${Q}' is defined twice`))).toBe(true);
  });

  it("catches a read before the definition", () => {
    const { g, i } = broken(Q);
    const [a, b] = [g.ops[i]!, g.ops[i + 1]!];
    g.ops[i] = b;
    g.ops[i + 1] = a;
    expect(verify(g)).toEqual([`op ${i} (split_heads model.layers.0.self_attn.q_heads): reads '${Q}' before its definition at op ${i + 1} (linear ${Q})`]);
  });

  it("catches an input of the wrong dtype", () => {
    const g = cloneGraph(base);
    g.inputs[1]!.dtype = "f32";
    expect(verify(g)).toEqual([`op ${g.ops.length - 1} (cross_entropy loss): labels must be i32, got f32[B,T]`]);
  });

  it("catches unknown ops, bad attributes and wrong arity", () => {
    const a = broken("model.layers.0.mlp.act_fn.out");
    a.op.op = "swish";
    expect(verify(a.g)).toEqual([`op ${a.i} (swish model.layers.0.mlp.act_fn.out): unknown op 'swish'`]);
    const b = broken("model.norm.out");
    delete b.op.attrs["eps"];
    expect(verify(b.g)).toEqual([`op ${b.i} (rmsnorm model.norm.out): missing attribute 'eps'`]);
    const c = broken(Q);
    c.op.inputs.pop();
    expect(verify(c.g)).toEqual([
      `op ${c.i} (linear ${Q}): takes 2 to 3 inputs (x, weight, bias?), got 1`,
      "param 'model.layers.0.self_attn.q_proj.weight' is never read",
    ]);
  });

  it("catches undefined and repeated graph outputs, dead ops and unread params", () => {
    const g = cloneGraph(base);
    g.outputs.push("ghost", "loss");
    g.params.push({ name: "spare.weight", shape: [4], dtype: "f32", trainable: true, origin: "lora" });
    g.ops.push({
      op: "silu",
      module: "spare",
      inputs: ["model.norm.out"],
      outputs: [{ name: "spare.out", dtype: "f32", shape: ["B", "T", 64] }],
      attrs: {},
    });
    expect(verify(g)).toEqual([
      "graph output 'ghost' is not defined",
      "graph output 'loss' is listed twice",
      `op ${g.ops.length - 1} (silu spare.out): dead op, no output is read`,
      "param 'spare.weight' is never read",
    ]);
    expect(verify({ ...cloneGraph(base), outputs: [] })).toContain("the graph has no outputs");
  });

  it("catches malformed parameters and dimensions", () => {
    const g = cloneGraph(base);
    g.params[0]!.shape = [320, 0];
    g.params[1]!.dtype = "i32";
    g.inputs[2]!.shape = ["B", "T*T"];
    const errs = verify(g);
    expect(errs).toContain(`param '${g.params[0]!.name}' has a bad shape [320,0]`);
    expect(errs).toContain(`param '${g.params[1]!.name}' must be f32 or f16, got 'i32'`);
    expect(errs).toContain(`input 'positions' has a bad shape ["B","T*T"]`);
  });
});
