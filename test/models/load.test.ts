import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { builtinConfig, builtinNames } from "../../src/models/builtin.js";
import { loadProfile } from "../../src/models/load.js";
import type { Span } from "../../src/parser/ast.js";
import { MODELS } from "./checkpoint-files.js";

const span: Span = { line: 3, column: 7, endLine: 3, endColumn: 30, start: 40, end: 63 };
const ctx = (baseDir: string) => ({ baseDir, file: "run.peft", span });

const made: string[] = [];
function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), "pefc-models-"));
  made.push(dir);
  return dir;
}
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

describe("loadProfile", () => {
  it("loads built-ins", () => {
    const r = loadProfile("builtin:tiny-chatglm2", ctx("/nowhere"));
    expect(r.diagnostics).toEqual([]);
    expect(r.profile?.source).toBe("builtin:tiny-chatglm2");
    expect(r.profile?.arch).toBe("chatglm2");
  });

  it("loads a folder relative to baseDir", () => {
    const r = loadProfile("tiny-chatglm2", ctx(MODELS));
    expect(r.diagnostics).toEqual([]);
    expect(r.profile?.source).toBe(resolve(MODELS, "tiny-chatglm2"));
    expect(r.profile?.dims.vocabSize).toBe(256);
  });

  it("unknown built-in: P408 listing the names, with a guess", () => {
    const r = loadProfile("builtin:tiny-lama", ctx("."));
    expect(r.profile).toBeUndefined();
    expect(r.diagnostics).toHaveLength(1);
    const d = r.diagnostics[0]!;
    expect(d).toMatchObject({ code: "P408", file: "run.peft", span, help: "did you mean builtin:tiny-llama?" });
    expect(d.message).toBe(
      "cannot read the model 'builtin:tiny-lama': there is no built-in model 'tiny-lama'; the built-ins are " +
        "tiny-chatglm2, tiny-llama, tiny-gpt2, chatglm2-6b, llama-2-7b, gpt2",
    );
    expect(loadProfile("builtin:zzzzzz", ctx(".")).diagnostics[0]!.help).toBeUndefined();
  });

  it("missing folder: P408 naming it", () => {
    const base = scratch();
    const d = loadProfile("no/such", ctx(base)).diagnostics;
    expect(d).toHaveLength(1);
    expect(d[0]).toMatchObject({ code: "P408", span });
    expect(d[0]!.message).toContain(join(base, "no/such"));
  });

  it("folder without config.json: P408 naming the file", () => {
    const base = scratch();
    mkdirSync(join(base, "m"));
    const d = loadProfile("m", ctx(base)).diagnostics;
    expect(d[0]?.code).toBe("P408");
    expect(d[0]!.message).toContain(`${join(base, "m", "config.json")} does not exist`);
  });

  it("a file instead of a folder: P408", () => {
    const base = scratch();
    writeFileSync(join(base, "f"), "x");
    expect(loadProfile("f", ctx(base)).diagnostics[0]!.message).toContain("is a file");
  });

  it("bad JSON and non-object JSON: P408 naming the file", () => {
    const base = scratch();
    mkdirSync(join(base, "bad"));
    writeFileSync(join(base, "bad", "config.json"), "{ \"model_type\": ");
    const d = loadProfile("bad", ctx(base)).diagnostics;
    expect(d[0]?.code).toBe("P408");
    expect(d[0]!.message).toContain(`${join(base, "bad", "config.json")} is not valid JSON`);
    mkdirSync(join(base, "arr"));
    writeFileSync(join(base, "arr", "config.json"), "[1, 2]");
    expect(loadProfile("arr", ctx(base)).diagnostics[0]!.message).toContain("does not hold a JSON object");
  });

  it("unknown model_type: P409 with the known ones", () => {
    const base = scratch();
    mkdirSync(join(base, "bert"));
    writeFileSync(join(base, "bert", "config.json"), JSON.stringify({ model_type: "bert", hidden_size: 768 }));
    const d = loadProfile("bert", ctx(base)).diagnostics;
    expect(d).toHaveLength(1);
    expect(d[0]).toMatchObject({ code: "P409", span });
    expect(d[0]!.message).toBe(
      `unsupported architecture 'bert' in ${join(base, "bert", "config.json")}; pefc knows llama, mistral, qwen2, chatglm, gpt2`,
    );
  });

  it("a known model_type with a broken config: P408 with the reason", () => {
    const base = scratch();
    mkdirSync(join(base, "l"));
    writeFileSync(join(base, "l", "config.json"), JSON.stringify({ model_type: "llama", hidden_size: "big" }));
    const d = loadProfile("l", ctx(base)).diagnostics;
    expect(d[0]?.code).toBe("P408");
    expect(d[0]!.message).toContain("hidden_size must be a positive integer");
  });
});

describe("loadProfile never throws on a damaged config", () => {
  const BAD: unknown[] = [null, "7", -1, 0, 1.5, [], {}, true, 1e12];
  it("every key of every built-in replaced by every bad value gives a profile or diagnostics", () => {
    const base = scratch();
    let n = 0;
    for (const name of builtinNames()) {
      const good = builtinConfig(name)!;
      for (const key of Object.keys(good)) {
        for (const bad of BAD) {
          const dir = join(base, String(n++));
          mkdirSync(dir);
          writeFileSync(join(dir, "config.json"), JSON.stringify({ ...good, [key]: bad }));
          const r = loadProfile(dir, ctx(base));
          expect(r.profile !== undefined || r.diagnostics.length > 0).toBe(true);
          if (r.profile) expect(r.diagnostics).toEqual([]);
          else expect(["P408", "P409"]).toContain(r.diagnostics[0]!.code);
        }
      }
    }
  });
  it("a huge layer count is refused, not built", () => {
    const base = scratch();
    mkdirSync(join(base, "big"));
    writeFileSync(join(base, "big", "config.json"), JSON.stringify({ ...builtinConfig("tiny-gpt2"), n_layer: 10_000_000 }));
    expect(loadProfile("big", ctx(base)).diagnostics[0]!.message).toContain("n_layer 10000000 is larger than pefc supports");
  });
});
