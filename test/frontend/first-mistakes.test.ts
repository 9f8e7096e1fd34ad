/**
 * A newcomer's first mistakes each give one clear, coded error at the right place: a syntax
 * error no knock-on errors and no "nothing to train"; a misspelt statement a suggestion; a data
 * or model file the run cannot use a P6xx/P4xx code at the statement naming it; a bad --model the
 * flag's name, not a made-up file location. Sizes past the model warn (P320, P321).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";

const dir = mkdtempSync(join(tmpdir(), "pefc-mistakes-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, "data.jsonl"), readFileSync(resolve("examples/data/instructions.jsonl")));

async function pefc(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`) });
  return { code, out, err };
}

function file(name: string, text: string): string {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
}

const lines = (s: string) => s.trim().split("\n").filter(Boolean);

describe("syntax errors", () => {
  it("a missing comma is one error, and no P503 'nothing to train'", async () => {
    const f = file("comma.peft", 'model "builtin:tiny-llama";\nlora r=4 alpha=16 on q_proj v_proj;\ntrain { steps = 2; }\n');
    const r = await pefc("check", f);
    expect(r.code).toBe(1);
    expect(lines(r.err)).toEqual([`${f}:2:29: error P201: expected one of '{', ';', found 'v_proj'`]);
  });

  it("an unclosed parenthesis is not also a type error of the repaired value", async () => {
    const f = file("paren.peft", 'model "builtin:tiny-llama";\nlora r=4 alpha=(16 on q_proj;\ntrain { steps = 2; }\n');
    const r = await pefc("check", f);
    expect(lines(r.err)).toEqual([`${f}:2:20: error P201: expected ')', found 'on'`]);
  });

  it("a missing ';' in a block says ';', without the parser's arrows", async () => {
    const f = file("semi.peft", 'model "builtin:tiny-llama";\nlora r=4 on q_proj;\ntrain { steps = 2 }\n');
    const r = await pefc("check", f);
    expect(lines(r.err)).toEqual([`${f}:3:19: error P201: expected ';', found '}'`]);
  });

  it("a misspelt statement gets 'did you mean', and no P503", async () => {
    const f = file("loar.peft", 'model "builtin:tiny-llama";\nloar r=4 on q_proj;\ntrain { steps = 2; }\n');
    const r = await pefc("check", f);
    expect(lines(r.err)).toEqual([`${f}:2:1: error P203: unknown statement 'loar'; did you mean 'lora'?`]);
  });

  it("a file that parses but trains nothing still gets P503", async () => {
    const f = file("none.peft", 'model "builtin:tiny-llama";\ntrain { steps = 2; }\n');
    const r = await pefc("check", f);
    expect(r.err).toContain("error P503: nothing to train");
  });
});

describe("run-time errors of data and model carry a code and the statement", () => {
  const spec = (model: string, data: string, fields = "prompt = instruction; response = output;") =>
    `model "${model}";\ndata train "${data}" { ${fields} }\nlora;\ntrain { steps = 1; }\n`;

  it("a missing data file is P601 at the data statement's path", async () => {
    const f = file("r1.peft", spec("builtin:tiny-llama", "missing.jsonl"));
    const r = await pefc("run", "--device", "reference", f);
    expect(r.code).toBe(1);
    expect(lines(r.err)).toEqual([`${f}:2:12: error P601: data file missing.jsonl not found; looked for ${join(dir, "missing.jsonl")}`]);
  });

  it("a bad record is P603 with the record's line; a missing field P602", async () => {
    writeFileSync(join(dir, "bad.jsonl"), '{"instruction": "a", "output": "b"}\n{"instruction": "c"\n');
    const f = file("r2.peft", spec("builtin:tiny-llama", "bad.jsonl"));
    const r = await pefc("run", "--device", "reference", f);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}:2:12: error P603: bad\\.jsonl:2:20: bad JSON`));
    const g = file("r3.peft", spec("builtin:tiny-llama", "data.jsonl", "prompt = instruction; response = nofield;"));
    const m = await pefc("run", "--device", "reference", g);
    expect(m.err).toContain(`${g}:2:12: error P602: data.jsonl:1: record has no field 'nofield'; fields seen: instruction, output`);
  });

  it("a model folder without weights is P410 at the model statement", async () => {
    mkdirSync(join(dir, "m"));
    writeFileSync(join(dir, "m", "config.json"), JSON.stringify({ model_type: "llama", hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 128, vocab_size: 100 }));
    const f = file("r4.peft", spec("m", "data.jsonl"));
    const r = await pefc("run", "--device", "reference", f);
    expect(r.code).toBe(1);
    expect(lines(r.err)).toEqual([`${f}:1:7: error P410: cannot load the model: ${join(dir, "m")}: no weights found: expected model.safetensors.index.json, model.safetensors, pytorch_model.bin.index.json, pytorch_model.bin (or the shards an index names)`]);
  });

  it("generate names the --model flag, not a made-up location", async () => {
    const r = await pefc("generate", "--device", "reference", "--model", "builtin:tiny-llam", "--prompt", "x");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^pefc generate --model: error P408: cannot read the model 'builtin:tiny-llam'/);
    expect(r.err).not.toContain("<generate>");
  });
});

describe("sizes past the model warn", () => {
  it("max_length above the model's positions (P320) and r above a layer's width (P321)", async () => {
    // tiny-llama: 1024 positions, hidden size 64.
    const f = file("big.peft", `model "builtin:tiny-llama";\ndata train "data.jsonl" { prompt = instruction; response = output; max_length = 4096; }\nlora r=100 on q_proj, v_proj;\ntrain { steps = 1; }\n`);
    const r = await pefc("plan", f);
    expect(r.code).toBe(0);
    expect(r.err).toContain(`${f}:2:1: warning P320: max_length = 4096 tokens is more than the 1024 positions of llama (max_position_embeddings = 1024 in config.json)`);
    // A run measures the examples instead: these instructions are far shorter than 256 tokens.
    const run = await pefc("run", "--device", "reference", f);
    expect(run.out).not.toContain("P320");
    expect(run.out).toMatch(/warning P321: r = 100/);
    expect(r.err).toMatch(/:3:1: warning P321: r = 100 is more than min\(in, out\) = \d+ of model\.layers\.0\.self_attn\.q_proj \(and \d+ more modules\)/);
    const ok = await pefc("plan", file("fine.peft", `model "builtin:tiny-llama";\nlora r=8 on q_proj;\ntrain { steps = 1; }\n`));
    expect(ok.err).not.toMatch(/P32[01]/);
  });
});
