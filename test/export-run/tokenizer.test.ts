/**
 * data_pipeline.py's stdlib BPE against pefc's tokenizer (the maintained @huggingface/tokenizers)
 * on stories260K's tokenizer.json: texts chosen to hit byte fallback (characters outside the 512
 * pieces), merges across spaces, runs of spaces and newlines, a special token written in the text,
 * and the BOS the post-processor adds. A byte-level tokenizer (GPT-2) is refused by name.
 * Its SentencePiece tokenizer (the sentencepiece package) against pefc's (SentencePiece compiled to
 * WASM, with the conventions on top): stories260K's tok512.model under LlamaTokenizer's settings,
 * and the ChatGLM2 fixture's tokenizer.model under ChatGLMTokenizer's.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { TEMPLATE_DIR } from "../../src/export-run/templates.js";
import { loadTokenizer } from "../../src/runtime/tokenizer/index.js";
import { chatglm2Fixtures } from "../models/chatglm2-fixtures.js";

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
  "[gMASK]sop eop [MASK] <unk> 问：",
];
const scratch = mkdtempSync(join(tmpdir(), "pefc-export-sp-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

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

  it("encodes tokenizer.model files as pefc does, under Llama's and ChatGLM2's conventions", async () => {
    const llama = (name: string, config: object) => {
      const dir = join(scratch, name);
      mkdirSync(dir, { recursive: true });
      copyFileSync(join(MODELS, "stories260K/tok512.model"), join(dir, "tokenizer.model"));
      writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(config));
      return { dir, convention: "llama" };
    };
    const folders = [
      llama("llama-default", { tokenizer_class: "LlamaTokenizer" }),
      llama("llama-eos-pad", { tokenizer_class: "LlamaTokenizer", add_bos_token: false, add_eos_token: true, pad_token: { content: "<unk>" }, eos_token: "</s>" }),
      llama("llama-no-such-pieces", { tokenizer_class: "LlamaTokenizer", bos_token: "<bos>", eos_token: "<eos>", pad_token: "<pad>" }),
      { dir: join(chatglm2Fixtures(), "chatglm2"), convention: "chatglm2" },
    ];
    for (const { dir, convention } of folders) {
      const tok = await loadTokenizer(dir);
      const got = JSON.parse(py(`import json, data_pipeline as d\nt = d.SentencePieceTokenizer(${JSON.stringify(dir)}, ${JSON.stringify(convention)})\ntexts = json.loads(${JSON.stringify(JSON.stringify(TEXTS))})\nprint(json.dumps([[t.encode(x, add_special=False), t.encode(x)] for x in texts] + [[t.bos_id, t.eos_id, t.pad_id]]))`)) as unknown[];
      const want = [...TEXTS.map((x) => [tok.encode(x, { addSpecial: false }), tok.encode(x)]), [tok.bosId ?? null, tok.eosId ?? null, tok.padId ?? null]];
      expect(got, dir).toEqual(want);
    }
  });

  it("without the sentencepiece package, says what to install", () => {
    const dir = join(chatglm2Fixtures(), "chatglm2");
    const out = py(`import sys\nsys.modules["sentencepiece"] = None\nimport data_pipeline as d\ntry:\n    d.load_tokenizer({"kind": "sentencepiece", "folder": ${JSON.stringify(dir)}, "convention": "chatglm2"})\n    print("accepted")\nexcept d.UnsupportedTokenizer as e:\n    print(e)`);
    expect(out).toContain("pip install sentencepiece");
  });

  it("refuses a byte-level BPE it cannot reproduce, naming the file", () => {
    const out = py(`import data_pipeline as d\ntry:\n    d.BpeTokenizer(${JSON.stringify(join(MODELS, "tiny-gpt2"))})\n    print("accepted")\nexcept d.UnsupportedTokenizer as e:\n    print(e)`);
    expect(out).toContain("tiny-gpt2/tokenizer.json");
    expect(out).toContain("ByteLevel");
  });
});
