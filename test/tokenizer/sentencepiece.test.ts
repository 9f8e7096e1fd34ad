// SentencePiece tokenizer.model folders against Python sentencepiece (python3-sentencepiece, run by
// test/models/chatglm2_fixtures.py over every text in examples/data plus a few edge cases): ids and
// decoded text must agree exactly, for stories260K's tok512.model under the Llama convention and
// for the ChatGLM2 fixture's model under ChatGLM2's (specials after the pieces, [gMASK] sop first).

import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadTokenizer } from "../../src/runtime/tokenizer/index.js";
import { chatglm2Fixtures } from "../models/chatglm2-fixtures.js";

interface Case {
  text: string;
  ids: number[];
  decoded: string;
  chatglm_ids?: number[];
}
interface Oracle {
  stories: { bos: number; eos: number; n: number; cases: Case[] };
  chatglm2: { bos: number; eos: number; unk: number; n: number; cases: Case[] };
}

const TOK512 = resolve(fileURLToPath(new URL("../../../shared/models/stories260K/tok512.model", import.meta.url)));
let fx: string;
let oracle: Oracle;
let scratch: string;
beforeAll(() => {
  fx = chatglm2Fixtures();
  oracle = JSON.parse(readFileSync(join(fx, "tokenizer.json"), "utf8")) as Oracle;
  scratch = mkdtempSync(join(tmpdir(), "pefc-sp-"));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function llamaFolder(tokenizerConfig: object | undefined, config?: object): Promise<string> {
  const dir = mkdtempSync(join(scratch, "llama-"));
  copyFileSync(TOK512, join(dir, "tokenizer.model"));
  if (tokenizerConfig) writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(tokenizerConfig));
  if (config) writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  return dir;
}

describe("SentencePiece tokenizer.model", () => {
  it("stories260K (LlamaTokenizer): ids and decodes equal Python sentencepiece's, bos first", async () => {
    const tok = await loadTokenizer(await llamaFolder({ tokenizer_class: "LlamaTokenizer", bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>" }));
    const o = oracle.stories;
    expect(tok.vocabSize).toBe(o.n);
    expect(tok.bosId).toBe(o.bos);
    expect(tok.eosId).toBe(o.eos);
    expect(o.cases.some((c) => /[\u4e00-\u9fff]/.test(c.text))).toBe(true);
    for (const c of o.cases) {
      expect(tok.encode(c.text, { addSpecial: false }), c.text).toEqual(c.ids);
      expect(tok.encode(c.text), c.text).toEqual([o.bos, ...c.ids]);
      expect(tok.decode([o.bos, ...c.ids, o.eos]), c.text).toBe(c.decoded);
    }
  });

  it("takes the Llama convention from config.json's model_type when tokenizer_config.json is absent, and honours add_eos_token", async () => {
    const plain = await loadTokenizer(await llamaFolder(undefined, { model_type: "llama" }));
    const c = oracle.stories.cases[0]!;
    expect(plain.encode(c.text)).toEqual([oracle.stories.bos, ...c.ids]);
    const eos = await loadTokenizer(await llamaFolder({ tokenizer_class: "LlamaTokenizer", add_bos_token: false, add_eos_token: true }));
    expect(eos.encode(c.text)).toEqual([...c.ids, oracle.stories.eos]);
  });

  it("ChatGLM2 (ChatGLMTokenizer): specials after the pieces, [gMASK] sop first, as ChatGLM2's tokenizer maps pieces", async () => {
    const tok = await loadTokenizer(join(fx, "chatglm2"));
    const o = oracle.chatglm2;
    expect(tok.vocabSize).toBe(o.n + 5);
    expect(tok.eosId).toBe(o.eos);
    expect(tok.padId).toBe(o.unk);
    const gmask = o.n + 1;
    const sop = o.n + 3;
    for (const c of o.cases) {
      expect(tok.encode(c.text), c.text).toEqual(c.chatglm_ids);
      expect(tok.encode(c.text, { addSpecial: false }), c.text).toEqual(c.chatglm_ids!.slice(2));
      expect(tok.decode([gmask, sop, ...c.ids, o.eos]), c.text).toBe(c.decoded);
    }
    // The fixture's texts exercise byte fallback (characters outside the trained coverage).
    expect(o.cases.some((c) => c.ids.some((id) => id >= 3 && id < 3 + 256))).toBe(true);
  });

  it("names what is missing or unknown", async () => {
    const dir = await llamaFolder({ tokenizer_class: "T5Tokenizer" });
    await expect(loadTokenizer(dir)).rejects.toThrow(/tokenizer_class "T5Tokenizer".*ChatGLMTokenizer and LlamaTokenizer/);
    const bad = mkdtempSync(join(scratch, "bad-"));
    writeFileSync(join(bad, "tokenizer.model"), "not a model");
    writeFileSync(join(bad, "tokenizer_config.json"), JSON.stringify({ tokenizer_class: "LlamaTokenizer" }));
    await expect(loadTokenizer(bad)).rejects.toThrow(new RegExp(`${bad}/tokenizer.model: not a SentencePiece model`));
  });
});
