/**
 * data_pipeline.py's stdlib BPE against pefc's tokenizer (the maintained @huggingface/tokenizers)
 * on stories260K's tokenizer.json: texts chosen to hit byte fallback (characters outside the 512
 * pieces), merges across spaces, runs of spaces and newlines, a special token written in the text,
 * and the BOS the post-processor adds. A byte-level tokenizer (GPT-2) is refused by name.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TEMPLATE_DIR } from "../../src/export-run/templates.js";
import { loadTokenizer } from "../../src/runtime/tokenizer/index.js";

const MODELS = new URL("../../../shared/models/", import.meta.url).pathname;
const STORIES = join(MODELS, "stories260K/hf");

const TEXTS = [
  "Once upon a time, there was a little cat named Tom.",
  "  two  spaces\nand a newline\n\nthen two",
  "中文的病人问：头疼怎么办？",
  "emoji 🐱 and accents: café naïve",
  "a literal <s> and </s> in text",
  "",
  "x",
  "The end.   ",
];

function py(code: string): string {
  return execFileSync("/usr/bin/python3", ["-c", code], { cwd: TEMPLATE_DIR, encoding: "utf8" });
}

describe("data_pipeline.py tokenizer", () => {
  it("encodes as pefc's tokenizer does (stories260K)", async () => {
    const tok = await loadTokenizer(STORIES);
    const got = JSON.parse(py(`import json, data_pipeline as d\nt = d.BpeTokenizer(${JSON.stringify(STORIES)})\ntexts = json.loads(${JSON.stringify(JSON.stringify(TEXTS))})\nprint(json.dumps([[t.encode(x, add_special=False), t.encode(x)] for x in texts] + [[t.bos_id, t.eos_id, t.pad_id]]))`)) as unknown[];
    const want = [...TEXTS.map((x) => [tok.encode(x, { addSpecial: false }), tok.encode(x)]), [tok.bosId, tok.eosId, tok.padId ?? null]];
    expect(got).toEqual(want);
  });

  it("refuses a byte-level BPE it cannot reproduce, naming the file", () => {
    const out = py(`import data_pipeline as d\ntry:\n    d.BpeTokenizer(${JSON.stringify(join(MODELS, "tiny-gpt2"))})\n    print("accepted")\nexcept d.UnsupportedTokenizer as e:\n    print(e)`);
    expect(out).toContain("tiny-gpt2/tokenizer.json");
    expect(out).toContain("ByteLevel");
  });
});
