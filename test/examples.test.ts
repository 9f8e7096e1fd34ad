/**
 * The shipped examples are specs users copy: each must check clean and compile against its model,
 * and the generated tables of docs/language.md must match the schemas they come from.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { checkSource } from "../src/frontend.js";
import { compileSpec } from "../src/passes/compile.js";
import { formatDiagnostic } from "../src/diagnostics/index.js";
import { encoderFor } from "../src/cli/compile-spec.js";

const files = readdirSync("examples").filter((f) => f.endsWith(".peft"));
// chatglm2-6b-medical.peft finds its model through $CHATGLM2_6B; its config.json is enough to compile.
process.env.CHATGLM2_6B ??= resolve("../shared/models/chatglm2-6b-config");

describe("examples", () => {
  it("cover every method family and hybrid", () => {
    const all = files.map((f) => readFileSync(`examples/${f}`, "utf8")).join("\n");
    for (const word of ["lora", "adalora", "ia3", "bitfit", "adapter houlsby", "adapter pfeiffer", "adapter parallel", "prefix", "p_tuning ", "p_tuning_v2", "prompt_tuning", "mam", "unipelt", "combine"]) {
      expect(all).toMatch(new RegExp(`^\\s*${word}`, "m"));
    }
  });

  for (const f of files) {
    it(`${f} checks clean and compiles against its model`, async () => {
      const checked = checkSource(readFileSync(`examples/${f}`), `examples/${f}`);
      expect(checked.diagnostics.map(formatDiagnostic)).toEqual([]);
      const encode = await encoderFor(checked.spec);
      const compiled = compileSpec(checked.spec, encode ? { encode } : {});
      expect(compiled.diagnostics.map(formatDiagnostic)).toEqual([]);
      expect(compiled.graph!.params.some((p) => p.trainable)).toBe(true);
    });
  }
});

describe("docs/language.md", () => {
  it("its generated tables match the schemas and the diagnostics table", () => {
    execFileSync("npx", ["tsx", "scripts/doc-tables.ts", "--check"], { stdio: "pipe" });
  });
});
