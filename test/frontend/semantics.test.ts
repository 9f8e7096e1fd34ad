/** Meanings the checker gives that span several statements or keys. */
import { describe, expect, it } from "vitest";
import { checkSource } from "../../src/frontend.js";

const spec = (src: string) => checkSource(src, "s.peft", { fragment: true });

describe("checker semantics", () => {
  it("data eval inherits the train block's reading of records", () => {
    const r = spec('data train "t.csv" { prompt = q; response = a; max_length = 64; loss = all; }\ndata eval { split = 10%; }');
    expect(r.diagnostics).toEqual([]);
    expect(r.spec.data.eval).toMatchObject({ mode: "text", fields: { prompt: "q", response: "a" }, lengths: { maxLength: 64 }, loss: "all", format: "csv", shuffle: false, holdout: { share: 0.1 } });
  });

  it("an eval file keeps its own format and overrides what it sets", () => {
    const r = spec('data train "t.csv" { prompt = q; response = a; }\ndata eval "e.jsonl" { response = b; }');
    expect(r.spec.data.eval).toMatchObject({ format: "jsonl", fields: { prompt: "q", response: "b" } });
  });

  it("keywords other than the selector's own may name modules", () => {
    const r = spec("lora on prefix, data in layers[0] except train;");
    expect(r.diagnostics).toEqual([]);
    const t = r.spec.methods[0]!.target!;
    expect(t.terms.map((x) => x.atom?.kind === "name" && x.atom.text)).toEqual(["prefix", "data"]);
  });

  it("a hybrid's selector bounds its members; a restated member replaces the preset's paired key", () => {
    const r = spec("unipelt on layers[1:] { adapter pfeiffer bottleneck=8; }");
    expect(r.diagnostics).toEqual([]);
    const adapter = r.spec.methods.find((m) => m.method === "adapter")!;
    expect(adapter.options).toMatchObject({ bottleneck: 8 });
    expect((adapter.options as { reduction?: number }).reduction).toBeUndefined();
    for (const m of r.spec.methods) expect(m.within?.terms[0]?.layers).toBeDefined();
    expect(r.spec.methods.find((m) => m.method === "lora")!.target).toBeUndefined();
  });

  it("a run measured in epochs needs train data", () => {
    const r = checkSource('model "builtin:tiny-llama";\nlora;\n', "s.peft");
    expect(r.diagnostics.map((d) => d.code)).toEqual(["P702"]);
  });
});
