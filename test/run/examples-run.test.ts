/**
 * Every example runs from a user's checkout: whatever it reads (model, data, adapter to start
 * from) is a builtin or a file inside examples/, never ../shared or another folder beside the
 * checkout; and each example that reads a model folder or data trains for real, copied with its
 * data into a fresh folder, for two steps on the CPU reference.
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { checkSource } from "../../src/frontend.js";

const examples = resolve("examples");
const files = readdirSync(examples).filter((f) => f.endsWith(".peft"));
const dir = mkdtempSync(join(tmpdir(), "pefc-examples-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("examples read only what a checkout has", () => {
  for (const f of files) {
    it(`${f}: model, data and init are builtins or files under examples/`, () => {
      const text = readFileSync(join(examples, f));
      const saved = process.env.CHATGLM2_6B;
      delete process.env.CHATGLM2_6B;
      const { spec, diagnostics } = checkSource(text, join(examples, f));
      if (saved !== undefined) process.env.CHATGLM2_6B = saved;
      // A model named through an environment variable is the user's own folder (the real
      // ChatGLM2-6B, say); with the variable unset the example must say which one to set.
      const fromEnv = /\$\{[A-Za-z_][A-Za-z0-9_]*\}/.test(spec.model?.asWritten ?? spec.model?.source ?? "");
      if (fromEnv) expect(diagnostics.map((d) => d.code)).toEqual(["P420"]);
      const reads = [
        ...(spec.model && spec.model.builtin === undefined && !fromEnv ? [spec.model.source] : []),
        ...[spec.data.train?.file, spec.data.eval?.file].filter((x): x is string => x !== undefined),
        ...(spec.init ? [spec.init.from] : []),
      ];
      for (const p of reads) {
        const at = resolve(examples, p);
        expect(relative(examples, at).startsWith(".."), `${f} reads ${p}`).toBe(false);
        expect(existsSync(at), `${f} reads ${p}`).toBe(true);
      }
    });
  }
});

describe("the stories example", () => {
  it("trains and saves from a copy of examples/ alone", async () => {
    cpSync(examples, join(dir, "examples"), { recursive: true, filter: (p) => !p.includes(`${join(examples, "output")}`) });
    const spec = join(dir, "examples", "stories-lora.peft");
    writeFileSync(spec, readFileSync(spec, "utf8").replace("epochs = 4;", "steps = 2;"));
    let out = "";
    let err = "";
    const code = await main(["run", "--device", "reference", spec], { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`) });
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(out).toContain(`saved ${join(dir, "examples", "output", "stories-lora", "adapter")}`);
    expect(readdirSync(join(dir, "examples", "output", "stories-lora", "adapter")).sort()).toEqual([".pefc-output", "adapter_config.json", "adapter_model.safetensors"]);
  }, 120_000);
});
