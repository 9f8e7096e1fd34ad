/**
 * Every diagnostic code the front end can raise, with the exact position it points at. The cases
 * are fragments (no model needed) unless they test whole-file requirements.
 */
import { describe, expect, it } from "vitest";
import { DIAGNOSTICS } from "../../src/diagnostics/index.js";
import { codesAt, messages } from "./helpers.js";

const M = 'model "builtin:tiny-llama";\n';

const cases: { code: string; src: string; at: string; whole?: boolean; text?: string }[] = [
  { code: "P101", src: "lora r=8 ^ on q_proj;", at: "1:10" },
  { code: "P103", src: 'model "unterminated;\n', at: "1:7" },
  { code: "P103", src: 'model "bad \\q escape";', at: "1:7" },
  { code: "P201", src: "lora r=8 on q_proj\nsave;", at: "1:19", text: "expected one of '{', ';'" },
  { code: "P201", src: "train { lr = ; }", at: "1:14" },
  { code: "P203", src: "loraa r=8 on q_proj;", at: "1:1", text: "did you mean 'lora'?" },
  { code: "P204", src: 'model "a";\nmodel "b";', at: "2:1", text: "first is at line 1" },
  { code: "P205", src: "lora r=8 on q_proj;", at: "1:1", whole: true },
  { code: "P206", src: "peft 9.9;", at: "1:6" },
  { code: "P301", src: "lora rr=8 on q_proj;", at: "1:6", text: "'rr' is not a key of lora; did you mean 'r'?" },
  { code: "P302", src: "train { optimizer = adamax; }", at: "1:21", text: "one of adamw, adam, sgd" },
  { code: "P302", src: 'train { lr = "fast"; }', at: "1:14" },
  { code: "P302", src: "lora r=2.5 on q_proj;", at: "1:8", text: "a whole number" },
  { code: "P303", src: "lora r=0 on q_proj;", at: "1:8", text: "'r' must be >= 1 (got 0)" },
  { code: "P303", src: "lora dropout=1 on q_proj;", at: "1:14", text: "< 1" },
  { code: "P303", src: "train { lr = 1e999; }", at: "1:14" },
  { code: "P304", src: 'data train "a.jsonl" { prompt = q; max_source = 8 steps; }', at: "1:49", text: "measured in tokens" },
  { code: "P305", src: "train { epochs = 1; steps = 10; }", at: "1:21", text: "give 'epochs' or 'steps', not both" },
  { code: "P305", src: "adapter pfeiffer reduction=8 bottleneck=4;", at: "1:30" },
  { code: "P306", src: "lora r=8 { r = 4; }", at: "1:12", text: "first is at line 1" },
  { code: "P307", src: "train { momentum = 0.9; }", at: "1:9", text: "needs optimizer = sgd" },
  { code: "P307", src: 'data train "a.jsonl" { response = a; }', at: "1:24" },
  { code: "P308", src: "lora on /a(b/;", at: "1:9" },
  { code: "P309", src: "lora on $attn;", at: "1:9", text: "$attn is not defined" },
  { code: "P310", src: "lora on q_proj in layers[::0];", at: "1:26" },
  { code: "P311", src: "prompt_tuning tokens=4 on q_proj;", at: "1:27" },
  { code: "P311", src: "ia3 on k_proj { override layers[0] { r = 2; } }", at: "1:17" },
  { code: "P312", src: "mam { lora r=4; }", at: "1:7", text: "members are prefix, adapter parallel" },
  { code: "P313", src: "select a = q_proj;\nselect a = v_proj;", at: "2:8" },
  { code: "P314", src: "adapter reduction=4;", at: "1:1" },
  { code: "P503", src: M + "train { steps = 2; }", at: "1:1", whole: true },
  { code: "P505", src: "adalora on q_proj;\nadalora on v_proj;", at: "2:1" },
  { code: "P604", src: 'data train "a.jsonl" { prompt = q; template = "Q: {prompt} {answer}"; }', at: "1:47" },
  { code: "P605", src: 'data train "a.txt" { prompt = q; }', at: "1:12" },
  { code: "P701", src: "adalora on q_proj { tinit = 5; tfinal = 5; }\ntrain { steps = 10; }", at: "1:1", text: "tinit 5 + tfinal 5" },
  { code: "P702", src: M + "lora on q_proj;\ntrain { epochs = 2; }", at: "3:9", whole: true },
];

describe("diagnostic codes", () => {
  for (const c of cases) {
    it(`${c.code} at ${c.at}: ${c.src.split("\n").pop()}`, () => {
      const got = codesAt(c.src, !c.whole);
      expect(got).toContain(`${c.at} ${c.code}`);
      if (c.text) expect(messages(c.src, !c.whole).join("\n")).toContain(c.text);
    });
  }

  it("P102 points at the first invalid UTF-8 byte", async () => {
    const { checkSource } = await import("../../src/frontend.js");
    const bytes = new Uint8Array([...new TextEncoder().encode('lora r=8;\nmodel "a'), 0xff, ...new TextEncoder().encode('";')]);
    const d = checkSource(bytes, "u.peft", { fragment: true }).diagnostics.find((x) => x.code === "P102");
    expect(d?.span?.line).toBe(2);
    expect(d?.span?.column).toBe(9);
    expect(d?.message).toContain("byte 18");
  });

  it("every code of the table has an explanation", () => {
    for (const [code, info] of Object.entries(DIAGNOSTICS)) {
      expect(code).toMatch(/^P\d{3}$/);
      expect(info.explain.length).toBeGreaterThan(20);
    }
  });
});

describe("recovery", () => {
  it("reports several errors of one file in one run", () => {
    const src = [
      'model "builtin:tiny-chatglm2";',
      "lora rr=8 on query_key_value;",
      "train { lr = ; batch = 0; }",
      "loraa r=4;",
      "save every 0 steps;",
      "ia3 on dense_4h_to_h",
      "bitfit;",
    ].join("\n");
    const got = codesAt(src);
    expect(got).toEqual(expect.arrayContaining(["2:6 P301", "3:14 P201", "4:1 P203", "5:12 P303", "6:21 P201"]));
    expect(got.length).toBeGreaterThanOrEqual(5);
  });

  it("keeps the statements after a broken one", async () => {
    const { checkSource } = await import("../../src/frontend.js");
    const r = checkSource('lora r = = 8 on q_proj;\nsave to "out";\nexport adapter to "x";', "t.peft", { fragment: true });
    expect(r.ok).toBe(false);
    expect(r.spec.save.map((s) => s.dir)).toEqual(["out"]);
    expect(r.spec.export.map((s) => s.dir)).toEqual(["x"]);
  });
});
