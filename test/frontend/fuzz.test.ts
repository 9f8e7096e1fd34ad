/**
 * Mutation fuzzing of the front end: thousands of damaged variants of real specs (characters and
 * tokens deleted, inserted, duplicated; invalid UTF-8; huge numbers). The checker must never throw
 * and the CLI must answer with exit 0 or 1 and no stack trace.
 */
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkSource } from "../../src/frontend.js";
import { main } from "../../src/cli/main.js";

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEEDS: string[] = [
  `model "builtin:tiny-chatglm2";
data train "data/medical.jsonl" { prompt = ask; response = answer; max_source = 128; max_target = 256; }
freeze base;
adalora r=8 alpha=32 dropout=0.01 on query_key_value { init_r = 12; tinit = 200; tfinal = 1000; delta_t = 10; }
train { epochs = 5; batch = 1; grad_accum = 16; lr = 1e-4; optimizer = adamw; clip = 1.0; precision = f16; }
save every epoch to "output" keep 3;`,
  `peft 0.1;
model "builtin:tiny-llama" { seed = 3; }
select attn = @q, @k, @v, @attn_out;
data train "a.csv" { prompt = "question"; response = answer; template = "{system}\\n### Q: {prompt}\\n### A: {response}"; max_length = 512 tokens; truncation = left; }
data eval { split = 5%; }
lora r=8 alpha=16 dropout=0.05 on $attn in layers[4:] except /.*layers\\.1\\.self_attn\\.q_proj$/i { init = gaussian; override layers[-4:] { r = 16; alpha = 32; } }
unipelt on layers[2:] { prefix tokens=16; lora r=8 alpha=16 on @q, @v; }
mam { adapter parallel reduction=4; }
combine gate=true { ia3 on mlp.*_proj; bitfit on "model.layers.**.o_proj"; }
train { steps = 100; optimizer = sgd; momentum = 0.9; schedule = cosine; warmup = 3%; log_every = 5 steps; eval_every = 1 epoch; }
export merged to "merged"; init from "x";`,
];

const TOKENS = ["lora", "{", "}", ";", "=", "on", "layers[", "]", ":", "-1", "1e999", "99999999999999999999999", '"', "/", "@q", "$x", "except", ",", "(", ")", "%", "steps", "#", "\n", "adapter", "mam {", "train {", "\u00e9", "\ud83d"];

function mutate(src: string, r: () => number): string | Uint8Array {
  let s = src;
  const n = 1 + Math.floor(r() * 4);
  for (let k = 0; k < n; k++) {
    const i = Math.floor(r() * (s.length + 1));
    const op = Math.floor(r() * 6);
    if (op === 0) s = s.slice(0, i) + s.slice(i + 1 + Math.floor(r() * 8));
    else if (op === 1) s = s.slice(0, i) + String.fromCharCode(32 + Math.floor(r() * 95)) + s.slice(i);
    else if (op === 2) s = s.slice(0, i) + s.slice(i, i + 1 + Math.floor(r() * 20)) + s.slice(i);
    else if (op === 3) s = s.slice(0, i) + TOKENS[Math.floor(r() * TOKENS.length)] + s.slice(i);
    else if (op === 4) {
      const words = s.split(/(\s+)/);
      const j = Math.floor(r() * words.length);
      words.splice(j, 0, words[Math.floor(r() * words.length)] ?? "");
      s = words.join("");
    } else {
      const bytes = new TextEncoder().encode(s);
      const out = new Uint8Array(bytes.length + 1);
      const at = Math.min(bytes.length, Math.floor(r() * bytes.length));
      out.set(bytes.subarray(0, at));
      out[at] = [0xff, 0xc3, 0xe2, 0x80, 0xf4][Math.floor(r() * 5)]!;
      out.set(bytes.subarray(at), at + 1);
      return out;
    }
  }
  return s;
}

function exampleSources(): string[] {
  try {
    return readdirSync("examples").filter((f) => f.endsWith(".peft")).map((f) => readFileSync(`examples/${f}`, "utf8"));
  } catch {
    return [];
  }
}

describe("fuzzing the front end", () => {
  it("never throws on thousands of mutated specs", () => {
    const r = rng(1234);
    const seeds = [...SEEDS, ...exampleSources()];
    let withErrors = 0;
    for (let i = 0; i < 4000; i++) {
      const src = mutate(seeds[i % seeds.length]!, r);
      const res = checkSource(src, "fuzz.peft");
      for (const d of res.diagnostics) {
        expect(d.code).toMatch(/^P\d{3}$/);
        expect(d.message).not.toMatch(/\n\s+at /);
        if (d.span) expect(d.span.line).toBeGreaterThanOrEqual(1);
      }
      if (!res.ok) withErrors++;
    }
    expect(withErrors).toBeGreaterThan(2000);
  });

  it("the CLI answers 0 or 1 and prints no stack trace", async () => {
    const r = rng(99);
    const { writeFileSync, mkdtempSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const dir = mkdtempSync(join(tmpdir(), "pefc-fuzz-"));
    for (let i = 0; i < 300; i++) {
      const file = join(dir, `f${i}.peft`);
      writeFileSync(file, mutate(SEEDS[i % SEEDS.length]!, r));
      let printed = "";
      const code = await main(["check", file], { out: (s) => (printed += s), err: (s) => (printed += s) });
      expect([0, 1]).toContain(code);
      expect(printed).not.toMatch(/\n\s+at .*:\d+:\d+/);
    }
  });

  it("the unmutated seeds check clean", () => {
    for (const s of SEEDS) expect(checkSource(s, "seed.peft", { fragment: false }).diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  });
});
