// Oracles: GPT-2's published ids ("Hello world" = 15496 995, " the" = 262); for stories260K, a
// plain SentencePiece-BPE encoder written here over llama2.c's export of the same vocabulary
// (tok512.bin: per token a float score, a length and the bytes, with ▁ stored as a space),
// which merges the best-scoring adjacent pair until none is in the vocabulary.

import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadTokenizer } from "../../src/runtime/tokenizer/index.js";
import { UserError } from "../../src/runtime/io/errors.js";

const MODELS = fileURLToPath(new URL("../../../shared/models/", import.meta.url));
const STORIES = `${MODELS}stories260K/hf`;
const GPT2 = `${MODELS}tiny-gpt2`;

const SAMPLES = [
  "Once upon a time",
  "Hello world",
  "Lily and Ben went to the park. They saw a big dog!",
  "  leading spaces and trailing  ",
  "line one\nline two\ttab",
  "你好，世界",
  "emoji 🙂 and café",
  "a",
];

function tok512(): { pieces: Buffer[]; scores: number[]; ids: Map<string, number> } {
  const buf = readFileSync(`${MODELS}stories260K/tok512.bin`);
  const pieces: Buffer[] = [];
  const scores: number[] = [];
  let at = 4; // max_token_length
  while (at < buf.length) {
    scores.push(buf.readFloatLE(at));
    const len = buf.readInt32LE(at + 4);
    pieces.push(buf.subarray(at + 8, at + 8 + len));
    at += 8 + len;
  }
  const ids = new Map<string, number>();
  pieces.forEach((p, i) => {
    if (!ids.has(p.toString("latin1"))) ids.set(p.toString("latin1"), i);
  });
  return { pieces, scores, ids };
}

function referenceEncode(text: string): number[] {
  const { pieces, scores, ids } = tok512();
  if (text === "") return [];
  const seq: number[] = [];
  for (const ch of " " + text) {
    const bytes = Buffer.from(ch, "utf8");
    const id = ids.get(bytes.toString("latin1"));
    if (id !== undefined) seq.push(id);
    else for (const b of bytes) seq.push(b + 3); // <0xXX> tokens start at id 3
  }
  for (;;) {
    let best = -Infinity;
    let at = -1;
    let merged = -1;
    for (let i = 0; i + 1 < seq.length; i++) {
      const id = ids.get(Buffer.concat([pieces[seq[i]!]!, pieces[seq[i + 1]!]!]).toString("latin1"));
      if (id !== undefined && scores[id]! > best) {
        best = scores[id]!;
        at = i;
        merged = id;
      }
    }
    if (at < 0) return seq;
    seq.splice(at, 2, merged);
  }
}

describe("GPT-2 byte-level BPE (tiny-gpt2, full vocabulary)", () => {
  it("gives GPT-2's published ids", async () => {
    const t = await loadTokenizer(GPT2);
    expect(t.encode("Hello world")).toEqual([15496, 995]);
    expect(t.encode(" the")).toEqual([262]);
    expect(t.vocabSize).toBe(50257);
    expect(t.bosId).toBe(50256);
    expect(t.eosId).toBe(50256);
    expect(t.padId).toBeUndefined();
  });

  it("adds no BOS (GPT-2 has none) and round-trips any text", async () => {
    const t = await loadTokenizer(GPT2);
    expect(t.encode("Hello world", { addSpecial: true })).toEqual(t.encode("Hello world", { addSpecial: false }));
    for (const s of SAMPLES) expect(t.decode(t.encode(s))).toBe(s);
  });

  it("drops special tokens when decoding", async () => {
    const t = await loadTokenizer(GPT2);
    expect(t.decode([50256, 15496, 995, 50256])).toBe("Hello world");
    expect(t.decode([])).toBe("");
  });
});

describe("Llama SentencePiece BPE (stories260K)", () => {
  it("matches the reference encoder over tok512.bin", async () => {
    const t = await loadTokenizer(STORIES);
    for (const s of SAMPLES) expect(t.encode(s, { addSpecial: false }), s).toEqual(referenceEncode(s));
  });

  it("encodes 'Once upon a time' into vocabulary pieces that spell ▁Once▁upon▁a▁time", async () => {
    const t = await loadTokenizer(STORIES);
    const vocab = (JSON.parse(await readFile(`${STORIES}/tokenizer.json`, "utf8")) as { model: { vocab: Record<string, number> } }).model.vocab;
    const byId = new Map(Object.entries(vocab).map(([piece, id]) => [id, piece]));
    const ids = t.encode("Once upon a time");
    expect(ids[0]).toBe(1); // <s>
    const pieces = ids.slice(1).map((id) => byId.get(id));
    expect(pieces.every((p) => p !== undefined)).toBe(true);
    expect(pieces.join("")).toBe("▁Once▁upon▁a▁time");
    expect(pieces).toEqual(["▁Once", "▁upon", "▁a", "▁time"]);
  });

  it("has the model's special ids and vocabulary size", async () => {
    const t = await loadTokenizer(STORIES);
    expect(t.vocabSize).toBe(512);
    expect(t.bosId).toBe(1);
    expect(t.eosId).toBe(2);
    expect(t.padId).toBeUndefined();
    expect(t.encode("")).toEqual([1]);
    expect(t.encode("", { addSpecial: false })).toEqual([]);
  });

  it("round-trips text, using byte fallback for characters outside the vocabulary", async () => {
    const t = await loadTokenizer(STORIES);
    for (const s of SAMPLES) expect(t.decode(t.encode(s))).toBe(s);
    // 你 is not in the 512-piece vocabulary: its three UTF-8 bytes become <0xE4><0xBD><0xA0>.
    expect(t.encode("你", { addSpecial: false })).toEqual([410, 0xe4 + 3, 0xbd + 3, 0xa0 + 3]);
    expect(t.decode([1, 403, 2])).toBe("Once");
  });
});

describe("loadTokenizer errors", () => {
  it("names the missing or broken file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pefc-tok-"));
    try {
      await expect(loadTokenizer(dir)).rejects.toThrow(new RegExp(`${dir}/tokenizer.json: cannot read: no such file`));
      await expect(loadTokenizer(dir)).rejects.toBeInstanceOf(UserError);
      await writeFile(join(dir, "tokenizer.json"), "{ nope");
      await expect(loadTokenizer(dir)).rejects.toThrow(/tokenizer.json: not valid JSON/);
      await writeFile(join(dir, "tokenizer.json"), JSON.stringify({ model: { type: "NoSuchModel" } }));
      await expect(loadTokenizer(dir)).rejects.toThrow(/tokenizer.json: unsupported tokenizer/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
