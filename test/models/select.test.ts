import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { builtinConfig } from "../../src/models/builtin.js";
import { profileFromConfig } from "../../src/models/profile.js";
import { linearLeafNames, resolveSelector, roleNames, type Match } from "../../src/models/select.js";
import type { ModelProfile } from "../../src/models/types.js";
import type { LayerSlice, Selector, SelectorAtom, SelectorTerm, Span } from "../../src/parser/ast.js";
import { MODELS, readConfig } from "./checkpoint-files.js";

function profileOf(config: Record<string, unknown>): ModelProfile {
  const p = profileFromConfig(config, "test");
  if (typeof p === "string") throw new Error(p);
  return p;
}

const glm = profileOf(builtinConfig("chatglm2-6b")!); // 28 layers
const stories = profileOf(readConfig(join(MODELS, "stories260K/hf"))); // llama, 5 layers, tied
const gpt2 = profileOf(builtinConfig("tiny-gpt2")!); // 2 layers, hidden 64

// Every AST node gets its own span, so a test can tell which node a diagnostic points at.
let next = 0;
const sp = (): Span => {
  next += 1;
  return { line: next, column: 1, endLine: next, endColumn: 9, start: next * 100, end: next * 100 + 8 };
};
const name = (text: string): SelectorAtom => ({ kind: "name", text, span: sp() });
const path = (text: string): SelectorAtom => ({ kind: "path", text, span: sp() });
const glob = (text: string): SelectorAtom => ({ kind: "glob", text, span: sp() });
const re = (source: string, flags = ""): SelectorAtom => ({ kind: "regex", source, flags, span: sp() });
const role = (n: string): SelectorAtom => ({ kind: "role", name: n, span: sp() });
const ref = (n: string): SelectorAtom => ({ kind: "ref", name: n, span: sp() });
const idx = (index: number): LayerSlice => ({ kind: "index", index, span: sp() });
const sl = (start?: number, stop?: number, step?: number): LayerSlice => {
  const s: LayerSlice = { kind: "slice", span: sp() };
  if (start !== undefined) s.start = start;
  if (stop !== undefined) s.stop = stop;
  if (step !== undefined) s.step = step;
  return s;
};
const u = undefined;
type TermLike = SelectorAtom | SelectorTerm;
const isTerm = (t: TermLike): t is SelectorTerm => !("kind" in t);
const term = (atom?: SelectorAtom, ...layers: LayerSlice[]): SelectorTerm => {
  const t: SelectorTerm = { span: sp() };
  if (atom) t.atom = atom;
  if (layers.length > 0) t.layers = layers;
  return t;
};
const asTerm = (t: TermLike): SelectorTerm => (isTerm(t) ? t : term(t));
const sel = (terms: TermLike[], except: TermLike[] = []): Selector => ({
  terms: terms.map(asTerm),
  except: except.map(asTerm),
  span: sp(),
});

function resolve(p: ModelProfile, s: Selector, selects = new Map<string, Selector>()) {
  return resolveSelector(p, s, { file: "run.peft", selects, what: "lora" });
}
const show = (ms: Match[]) => ms.map((m) => (m.rows ? `${m.module.path}[${m.rows[0]}:${m.rows[1]}]` : m.module.path));
const L = (i: number, leaf: string) => `model.layers.${i}.${leaf}`;
const G = (i: number, leaf: string) => `transformer.encoder.layers.${i}.${leaf}`;
const range = (a: number, b: number, step = 1) => {
  const out: number[] = [];
  for (let i = a; i < b; i += step) out.push(i);
  return out;
};
const QKV = (i: number) => G(i, "self_attention.query_key_value");

/** Selections that resolve without diagnostics, and exactly what they select, in module-tree order. */
const OK: [string, ModelProfile, () => Selector, string[]][] = [
  ["a name is a suffix", stories, () => sel([name("q_proj")]), range(0, 5).map((i) => L(i, "self_attn.q_proj"))],
  ["a multi-segment name", stories, () => sel([name("self_attn.q_proj")]), range(0, 5).map((i) => L(i, "self_attn.q_proj"))],
  ["a full path", stories, () => sel([path("model.layers.3.mlp.up_proj")]), [L(3, "mlp.up_proj")]],
  ["duplicates collapse", stories, () => sel([name("q_proj"), path("self_attn.q_proj"), re(".*\\.q_proj")]),
    range(0, 5).map((i) => L(i, "self_attn.q_proj"))],
  ["* stays within a segment", stories, () => sel([path("self_attn.*_proj")]),
    range(0, 5).flatMap((i) => ["q_proj", "k_proj", "v_proj", "o_proj"].map((x) => L(i, `self_attn.${x}`)))],
  ["* as a whole segment", stories, () => sel([path("layers.*.mlp.down_proj")]), range(0, 5).map((i) => L(i, "mlp.down_proj"))],
  ["** spans segments", stories, () => sel([glob("model.**.up_proj")]), range(0, 5).map((i) => L(i, "mlp.up_proj"))],
  ["** may span zero segments and the suffix stays segment-aligned", stories, () => sel([glob("**.norm")]), ["model.norm"]],
  ["a glob inside the leaf", stories, () => sel([glob("*norm")]),
    [...range(0, 5).flatMap((i) => [L(i, "input_layernorm"), L(i, "post_attention_layernorm")]), "model.norm"]],
  ["a trailing ** takes a whole layer", stories, () => sel([path("layers.1.**")]),
    ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
      "mlp.down_proj", "input_layernorm", "post_attention_layernorm"].map((x) => L(1, x))],
  ["a regex matches the whole path", stories, () => sel([re("model\\.layers\\.[0-1]\\..*_proj")]),
    range(0, 2).flatMap((i) => ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
      "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"].map((x) => L(i, x)))],
  ["regex flag i", stories, () => sel([re(".*Q_PROJ", "i")]), range(0, 5).map((i) => L(i, "self_attn.q_proj"))],
  ["the tied head is still a module", stories, () => sel([name("lm_head")]), ["lm_head"]],
  ["@linear leaves out the head and the embeddings", gpt2, () => sel([role("linear")]),
    range(0, 2).flatMap((i) => ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"].map((x) => `transformer.h.${i}.${x}`))],
  ["c_proj is both GPT-2 projections; mlp.c_proj only one", gpt2, () => sel([name("mlp.c_proj")]),
    ["transformer.h.0.mlp.c_proj", "transformer.h.1.mlp.c_proj"]],
  ["@ffn_in is gate and up", stories, () => sel([role("ffn_in")], [term(undefined, sl(1))]), [L(0, "mlp.gate_proj"), L(0, "mlp.up_proj")]],
  ["@head, @embed, @pos_embed", gpt2, () => sel([role("head"), role("embed"), role("pos_embed")]),
    ["transformer.wte", "transformer.wpe", "lm_head"]],
  ["@q is a row slice of query_key_value", glm, () => sel([term(role("q"), sl(-2))]), [26, 27].map((i) => `${QKV(i)}[0:4096]`)],
  ["@k and @v are the following slices", glm, () => sel([term(role("k"), idx(0)), term(role("v"), idx(0))]),
    [`${QKV(0)}[4096:4352]`, `${QKV(0)}[4352:4608]`]],
  ["@q, @k stay two slices", glm, () => sel([term(role("q"), idx(3)), term(role("k"), idx(3))]),
    [`${QKV(3)}[0:4096]`, `${QKV(3)}[4096:4352]`]],
  ["the whole module absorbs its slices", glm, () => sel([term(role("q"), idx(3)), term(role("qkv"), idx(3))]), [QKV(3)]],
  ["@qkv except @q keeps the k and v rows", glm, () => sel([term(role("qkv"), idx(5))], [role("q")]), [`${QKV(5)}[4096:4608]`]],
  ["GPT-2 @v is the last third of c_attn", gpt2, () => sel([role("v")]),
    ["transformer.h.0.attn.c_attn[128:192]", "transformer.h.1.attn.c_attn[128:192]"]],
  ["layers alone selects every module of those layers", stories, () => sel([term(undefined, sl(-1))]),
    ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
      "mlp.down_proj", "input_layernorm", "post_attention_layernorm"].map((x) => L(4, x))],
  ["a step", stories, () => sel([term(name("q_proj"), sl(u, u, 2))]), [0, 2, 4].map((i) => L(i, "self_attn.q_proj"))],
  ["start:stop:step", stories, () => sel([term(name("q_proj"), sl(1, 4, 2))]), [1, 3].map((i) => L(i, "self_attn.q_proj"))],
  ["a negative index", stories, () => sel([term(name("q_proj"), idx(-1))]), [L(4, "self_attn.q_proj")]],
  ["a negative step still lists in tree order", stories, () => sel([term(name("q_proj"), sl(u, u, -2))]),
    [0, 2, 4].map((i) => L(i, "self_attn.q_proj"))],
  ["several elements in one layers[...]", stories, () => sel([term(name("v_proj"), idx(0), sl(-2))]),
    [0, 3, 4].map((i) => L(i, "self_attn.v_proj"))],
  ["layers[-4:] on ChatGLM2-6B", glm, () => sel([term(name("query_key_value"), sl(-4))]), range(24, 28).map(QKV)],
  ["except a name", stories, () => sel([term(role("linear"), idx(0))], [name("o_proj"), path("mlp.*")]),
    [L(0, "self_attn.q_proj"), L(0, "self_attn.k_proj"), L(0, "self_attn.v_proj")]],
  ["except layers", stories, () => sel([name("q_proj"), name("v_proj")], [term(undefined, sl(u, 4))]),
    [L(4, "self_attn.q_proj"), L(4, "self_attn.v_proj")]],
  ["except a regex", glm, () => sel([name("dense")], [re("transformer\\.encoder\\.layers\\.([0-9]|1[0-9]|2[0-6])\\..*")]),
    [G(27, "self_attention.dense")]],
];

describe("resolveSelector selects", () => {
  for (const [what, p, mk, want] of OK) {
    it(what, () => {
      const r = resolve(p, mk());
      expect(r.diagnostics).toEqual([]);
      expect(show(r.matches)).toEqual(want);
    });
  }
});

describe("named selectors", () => {
  const attn = sel([name("q_proj"), name("v_proj")]);
  const selects = new Map([["attn", attn], ["late", sel([term(undefined, sl(-1))])]]);
  it("$name with a layer filter", () => {
    const r = resolve(stories, sel([term(ref("attn"), idx(1))]), selects);
    expect(r.diagnostics).toEqual([]);
    expect(show(r.matches)).toEqual([L(1, "self_attn.q_proj"), L(1, "self_attn.v_proj")]);
  });
  it("$name in except", () => {
    const r = resolve(stories, sel([ref("attn")], [ref("late")]), selects);
    expect(show(r.matches)).toEqual(range(0, 4).flatMap((i) => [L(i, "self_attn.q_proj"), L(i, "self_attn.v_proj")]));
  });
  it("nested references", () => {
    const s2 = new Map(selects);
    s2.set("outer", sel([term(ref("attn"), idx(0))]));
    expect(show(resolve(stories, sel([ref("outer")]), s2).matches)).toEqual([L(0, "self_attn.q_proj"), L(0, "self_attn.v_proj")]);
  });
  it("an unknown name is P309 with a guess", () => {
    const a = ref("atn");
    const r = resolve(stories, sel([a]), selects);
    expect(r.diagnostics).toHaveLength(1);
    expect(r.diagnostics[0]).toMatchObject({ code: "P309", span: a.span, message: "$atn is not defined; did you mean $attn?" });
    expect(r.matches).toEqual([]);
  });
  it("a self-reference is P309, not a hang", () => {
    const loop = new Map<string, Selector>();
    const inner = ref("a");
    loop.set("a", sel([inner]));
    const r = resolve(stories, sel([ref("a")]), loop);
    expect(r.diagnostics.map((d) => d.code)).toEqual(["P309"]);
    expect(r.diagnostics[0]!.span).toEqual(inner.span);
  });
});

describe("diagnostics", () => {
  it("P401 lists the real linear modules (the ChatGLM2 example)", () => {
    const a = name("q_proj");
    const r = resolve(glm, sel([a]));
    expect(r.diagnostics).toHaveLength(1);
    expect(r.diagnostics[0]).toMatchObject({
      code: "P401",
      severity: "error",
      file: "run.peft",
      span: a.span,
      message: "'q_proj' matched nothing in chatglm2; linear modules are query_key_value, dense, dense_h_to_4h, dense_4h_to_h",
    });
  });
  it("P401 for a suffix that is not segment-aligned: proj does not match q_proj", () => {
    const r = resolve(stories, sel([name("proj")]));
    expect(r.diagnostics.map((d) => d.code)).toEqual(["P401"]);
    expect(r.diagnostics[0]!.message).toBe(
      "'proj' matched nothing in llama; linear modules are q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj",
    );
    expect(resolve(stories, sel([name("attn.q_proj")])).diagnostics.map((d) => d.code)).toEqual(["P401"]);
  });
  it("P401 guesses a typo", () => {
    expect(resolve(glm, sel([name("query_key_valu")])).diagnostics[0]!.help).toBe("did you mean 'query_key_value'?");
  });
  it("P401 for a regex that matches only part of the path", () => {
    const a = re("q_proj");
    const r = resolve(stories, sel([a]));
    expect(r.diagnostics[0]).toMatchObject({ code: "P401", span: a.span });
    expect(r.diagnostics[0]!.message).toMatch(/^'\/q_proj\/' matched nothing in llama; /);
  });
  it("each term must match on its own, even when others do", () => {
    const bad = name("c_attn");
    const r = resolve(stories, sel([name("q_proj"), bad]));
    expect(r.diagnostics.map((d) => [d.code, d.span])).toEqual([["P401", bad.span]]);
    expect(r.perTerm.map((t) => t.matched.length)).toEqual([5, 0]);
  });
  it("each except term must match on its own", () => {
    const bad = name("dense_4h_to_h");
    const r = resolve(stories, sel([name("q_proj")], [bad]));
    expect(r.diagnostics.map((d) => [d.code, d.span])).toEqual([["P401", bad.span]]);
  });
  it("P401 at the term when the layer filter removes everything", () => {
    const t = term(role("head"), sl(0, 2));
    const r = resolve(stories, sel([t]));
    expect(r.diagnostics).toHaveLength(1);
    expect(r.diagnostics[0]).toMatchObject({
      code: "P401",
      span: t.span,
      message: "'@head in layers[0:2]' matched nothing in llama; it matches only lm_head, outside model.layers",
    });
  });
  it("P402 for an empty slice, at the slice", () => {
    const s = sl(30);
    const r = resolve(glm, sel([term(name("query_key_value"), s)]));
    expect(r.diagnostics).toHaveLength(1);
    expect(r.diagnostics[0]).toMatchObject({ code: "P402", span: s.span, message: "layers[30:] is empty: chatglm2 has 28 layers (0-27)" });
    const i = idx(-29);
    expect(resolve(glm, sel([term(undefined, i)])).diagnostics[0]).toMatchObject({
      code: "P402",
      span: i.span,
      message: "layers[-29] is empty: chatglm2 has 28 layers (0-27)",
    });
  });
  it("P310 for a zero step", () => {
    const s = sl(u, u, 0);
    expect(resolve(stories, sel([term(undefined, s)])).diagnostics[0]).toMatchObject({
      code: "P310",
      span: s.span,
      message: "invalid layer slice [::0]: the step cannot be zero",
    });
  });
  it("P405 for an unknown role, listing the profile's roles", () => {
    const a = role("ffn_gate");
    const r = resolve(glm, sel([a]));
    expect(r.diagnostics[0]).toMatchObject({
      code: "P405",
      span: a.span,
      message: "chatglm2 has no module named by role @ffn_gate; its roles are @q, @k, @v, @qkv, @attn_out, @ffn_in, @ffn_out, @embed, @head, @norm, @linear",
    });
    expect(resolve(glm, sel([role("atn_out")])).diagnostics[0]!.help).toBe("did you mean @attn_out?");
  });
  it("P407 when except removes everything, at the selector", () => {
    const s = sel([name("q_proj")], [term(role("q"))]);
    const r = resolve(stories, s);
    expect(r.matches).toEqual([]);
    expect(r.diagnostics).toHaveLength(1);
    expect(r.diagnostics[0]).toMatchObject({ code: "P407", span: s.span, message: "the selection is empty after except" });
  });
  it("P308 for a bad regex or flag", () => {
    const a = re("(");
    expect(resolve(stories, sel([a])).diagnostics[0]).toMatchObject({ code: "P308", span: a.span });
    const g = re(".*", "g");
    expect(resolve(stories, sel([g])).diagnostics[0]!.message).toBe("invalid regular expression /.*/g: flag g is not allowed; the only flag is i");
  });
  it("all problems of one selector are reported together, no cascades", () => {
    const r = resolve(glm, sel([name("q_proj"), term(name("dense"), sl(40)), role("gate")], [name("nothing")]));
    expect(r.diagnostics.map((d) => d.code)).toEqual(["P401", "P402", "P405", "P401"]);
  });
});

describe("perTerm", () => {
  it("reports each term's own matches, terms first", () => {
    const r = resolve(stories, sel([term(name("q_proj"), idx(0)), term(name("k_proj"), idx(1))], [term(undefined, idx(1))]));
    expect(r.perTerm.map((t) => show(t.matched))).toEqual([
      [L(0, "self_attn.q_proj")],
      [L(1, "self_attn.k_proj")],
      ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
        "mlp.down_proj", "input_layernorm", "post_attention_layernorm"].map((x) => L(1, x)),
    ]);
    expect(show(r.matches)).toEqual([L(0, "self_attn.q_proj")]);
  });
});

describe("candidate lists", () => {
  it("linearLeafNames", () => {
    expect(linearLeafNames(glm)).toEqual(["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"]);
    expect(linearLeafNames(gpt2)).toEqual(["c_attn", "c_proj", "c_fc"]);
    expect(linearLeafNames(stories)).toEqual(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]);
  });
  it("roleNames", () => {
    expect(roleNames(stories)).toEqual(["q", "k", "v", "attn_out", "ffn_in", "ffn_gate", "ffn_up", "ffn_out", "embed", "head", "norm", "linear"]);
    expect(roleNames(gpt2)).toEqual(["q", "k", "v", "qkv", "attn_out", "ffn_in", "ffn_out", "embed", "pos_embed", "head", "norm", "linear"]);
  });
});
