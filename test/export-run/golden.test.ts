/**
 * Golden bundles: `pefc export-run` on every example (DeepSpeed, the defaults) and on stories-lora
 * for each engine and topology, compared with the reference files under golden/<case>/:
 *   the generated text files themselves (train.py, data_config.json, accelerate.yaml,
 *   ds_config.json, launch.sh, README.md, start/adapter_config.json, base_model/config.json,
 *   .pefc-export-run), and MANIFEST: every file of the bundle with its size and sha256 (the
 *   binary start adapter and base weights, and verbatim copies such as data files).
 * A refused example's case holds refused.diag, the diagnostic, and nothing is written.
 * `npm run golden:accept:export-run` rewrites them. Each train.py and data_pipeline.py must also
 * pass `python3 -m py_compile`.
 *
 * chatglm2-6b-medical.peft finds its model through ${CHATGLM2_6B}; here that is the ChatGLM2
 * folder in the published layout the torch fixtures build (bf16 .bin shards, tokenizer.model).
 * The bundle must name the model by the variable, never by this machine's path, and carries the
 * folder's tokenizer files unchanged: MANIFEST records those as copies of the model's files, so
 * the golden does not pin the bytes of a tokenizer trained by the fixture script.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { chatglm2Fixtures } from "../models/chatglm2-fixtures.js";

const ROOT = resolve(new URL("../..", import.meta.url).pathname);
const GOLDEN = join(ROOT, "test/export-run/golden");
const ACCEPT = process.env["PEFC_ACCEPT"] === "1";
const TEXT = new Set(["train.py", "data_config.json", "accelerate.yaml", "ds_config.json", "launch.sh", "README.md", "start/adapter_config.json", "base_model/config.json", ".pefc-export-run"]);
const work = mkdtempSync(join(tmpdir(), "pefc-export-golden-"));
const CHATGLM2_6B = join(chatglm2Fixtures(), "chatglm2");
process.env.CHATGLM2_6B = CHATGLM2_6B;
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Machine paths out: the checkout's parent folder becomes <parent>, the work folder <out>. */
function normalize(text: string, out: string): string {
  return text.split(out).join("<out>").split(ROOT).join("<repo>").split(dirname(ROOT)).join("<parent>");
}

function walk(dir: string, base = dir): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p, base) : [relative(base, p)];
  });
}

async function exportCase(args: string[]): Promise<{ code: number; err: string; out: string }> {
  let err = "";
  let out = "";
  const code = await main(["export-run", ...args], { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`) });
  return { code, err, out };
}

interface Case {
  name: string;
  spec: string;
  flags: string[];
}

const examples = readdirSync(join(ROOT, "examples")).filter((f) => f.endsWith(".peft")).sort();
const cases: Case[] = [
  ...examples.map((f) => ({ name: f.replace(".peft", ""), spec: `examples/${f}`, flags: [] })),
  { name: "stories-lora-fsdp-8x2-bf16", spec: "examples/stories-lora.peft", flags: ["--engine", "fsdp", "--gpus", "8", "--nodes", "2", "--precision", "bf16"] },
  { name: "stories-lora-ddp-4", spec: "examples/stories-lora.peft", flags: ["--engine", "ddp", "--gpus", "4"] },
  // The PEFT conformance runs (each starts from a PEFT-made adapter; peft-trained/ is PEFT's result).
  ...["adalora", "ia3", "lora", "prefix", "prompt"].map((m) => ({ name: `conformance-${m}`, spec: `../shared/data/peft-conformance/${m}/run.peft`, flags: ["--engine", "ddp"] })),
  { name: "medical-deepspeed-8x4-fp16", spec: "examples/medical.peft", flags: ["--gpus", "8", "--nodes", "4", "--precision", "fp16"] },
];

function compare(file: string, got: string): void {
  const path = join(GOLDEN, file);
  if (ACCEPT) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, got);
    return;
  }
  expect(existsSync(path), `${file} is missing; run npm run golden:accept:export-run and review it`).toBe(true);
  expect(got, file).toBe(readFileSync(path, "utf8"));
}

describe("export-run golden bundles", () => {
  for (const c of cases) {
    it(c.name, async () => {
      const out = join(work, c.name);
      const r = await exportCase([join(ROOT, c.spec), "--to", out, ...c.flags]);
      if (ACCEPT) rmSync(join(GOLDEN, c.name), { recursive: true, force: true });
      if (r.code !== 0) {
        expect(r.code).toBe(1);
        expect(existsSync(out), "a refused run writes nothing").toBe(false);
        compare(`${c.name}/refused.diag`, normalize(r.err, out));
        return;
      }
      const files = walk(out).sort();
      const fromEnv = readFileSync(join(ROOT, c.spec), "utf8").includes('model "${CHATGLM2_6B}"');
      const manifest = files.map((f) => {
        const bytes = readFileSync(join(out, f));
        if (fromEnv && f.startsWith("tokenizer/")) {
          const name = f.slice("tokenizer/".length);
          expect(bytes.equals(readFileSync(join(CHATGLM2_6B, name))), `${f} is the model's own file`).toBe(true);
          return `${f}  copy of \${CHATGLM2_6B}/${name}`;
        }
        // Text files are compared with this checkout's paths replaced, so their size is the replaced text's too.
        const content = TEXT.has(f) ? Buffer.from(normalize(bytes.toString("utf8"), out), "utf8") : bytes;
        return `${f}  ${content.length}  ${createHash("sha256").update(content).digest("hex")}`;
      });
      for (const f of files) expect(readFileSync(join(out, f)).includes(CHATGLM2_6B), `${f} names this machine's ${CHATGLM2_6B}`).toBe(false);
      compare(`${c.name}/MANIFEST`, `${manifest.join("\n")}\n`);
      for (const f of files.filter((x) => TEXT.has(x))) compare(`${c.name}/${f}`, normalize(readFileSync(join(out, f), "utf8"), out));
      for (const py of ["train.py", "data_pipeline.py"]) execFileSync("/usr/bin/python3", ["-m", "py_compile", join(out, py)]);
    });
  }

  it("every golden case is still produced", () => {
    if (ACCEPT) return;
    const names = new Set(cases.map((c) => c.name));
    expect(readdirSync(GOLDEN).filter((n) => !names.has(n))).toEqual([]);
  });
});
