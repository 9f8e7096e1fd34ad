/**
 * Adapter folders holding adapter_model.bin, as PEFT's save_pretrained(safe_serialization=False)
 * writes them: every PEFT conformance adapter, rewritten by Debian's torch.save under the same keys
 * (contiguous, and as strided views), loads to the values of its safetensors file bit for bit;
 * safetensors wins when a folder holds both; a run whose `init from` holds the .bin trains to the
 * same adapter as from the safetensors, and `pefc generate` and `pefc merge` give the same text and
 * the same merged weights from either file; a bad .bin is refused naming the file and the tensor.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, rmSync, truncateSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { checkSource } from "../../src/frontend.js";
import { compileSpec } from "../../src/passes/compile.js";
import { loadAdapter, type LoadAdapterOptions } from "../../src/runtime/adapter/index.js";
import { CheckpointError, UserError } from "../../src/runtime/io/index.js";
import { readSafetensorsHeader, readTensorF32 } from "../../src/runtime/io/safetensors.js";
import { runTraining, type Reporter } from "../../src/runtime/train/loop.js";
import { ReferenceBackend } from "../../src/runtime/train/reference-backend.js";
import { allParams, prepareSession } from "../../src/runtime/train/session.js";
import { discoverCases, mirrorCase, type ConformanceCase } from "../conformance/cases.js";
import { REPO, scratch } from "./helpers.js";

const CASES = discoverCases();
const lora = CASES.find((c) => c.name === "lora")!;
const root = scratch();

interface Job {
  src: string;
  dst: string;
  strided?: boolean;
  scale?: number;
  legacy?: boolean;
  foreign?: boolean;
}

/** A folder beside nothing else: the case's adapter_config.json and a .bin written by torch. */
function binFolder(name: string, c: ConformanceCase, jobs: Job[], o: Omit<Job, "src" | "dst"> = {}, from = "init"): string {
  const dir = join(root, name);
  mkdirSync(dir);
  copyFileSync(join(c.dir, from, "adapter_config.json"), join(dir, "adapter_config.json"));
  jobs.push({ src: join(c.dir, from, "adapter_model.safetensors"), dst: join(dir, "adapter_model.bin"), ...o });
  return dir;
}

const jobs: Job[] = [];
const contiguous = new Map(CASES.map((c) => [c.name, binFolder(`${c.name}-bin`, c, jobs)]));
const strided = new Map(CASES.map((c) => [c.name, binFolder(`${c.name}-strided`, c, jobs, { strided: true })]));
const both = binFolder("both", lora, jobs, { scale: 2 });
const legacy = binFolder("legacy", lora, jobs, { legacy: true });
const foreign = binFolder("foreign", lora, jobs, { foreign: true });
const truncated = binFolder("truncated", lora, jobs);
// Trained, so that its greedy text differs from the base model's within a few tokens.
const trainedBin = binFolder("trained", lora, jobs, {}, "peft-trained");

beforeAll(() => {
  // Importing torch takes seconds: every file is written by one process.
  execFileSync("/usr/bin/python3", [join(REPO, "test/adapter/to-torch-bin.py"), JSON.stringify(jobs)], { stdio: ["ignore", "inherit", "inherit"] });
  copyFileSync(join(lora.dir, "init/adapter_model.safetensors"), join(both, "adapter_model.safetensors"));
  const bin = join(truncated, "adapter_model.bin");
  truncateSync(bin, readFileSync(bin).length - 600);
}, 30_000);

/** The case's run.peft compiled as `init from` sees it; `edit` rewrites its method line. */
function caseSpec(c: ConformanceCase, edit: (text: string) => string = (t) => t): LoadAdapterOptions {
  const file = join(c.dir, "run.peft");
  const fe = checkSource(edit(readFileSync(file, "utf8")), file);
  const errs = fe.diagnostics.filter((d) => d.severity === "error");
  if (errs.length) throw new Error(errs.map((d) => `${d.code} ${d.message}`).join("\n"));
  const r = compileSpec(fe.spec, { until: "inject-prompt", baseDir: c.dir });
  if (!r.graph || !r.profile) throw new Error(r.diagnostics.map((d) => d.message).join("\n"));
  return { spec: fe.spec, graph: r.graph, profile: r.profile };
}

function expectSameBits(got: Map<string, Float32Array>, want: Map<string, Float32Array>): void {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [k, v] of want) expect(new Uint32Array(got.get(k)!.buffer), k).toEqual(new Uint32Array(v.buffer));
}

async function refusal(p: Promise<unknown>): Promise<UserError> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(UserError);
  return e as UserError;
}

describe("adapter_model.bin written by torch.save", () => {
  for (const c of CASES) {
    it(`${c.name}: the same values as its safetensors, bit for bit, contiguous or strided`, async () => {
      const o = caseSpec(c);
      const want = await loadAdapter(join(c.dir, "init"), o);
      expect(want.size).toBeGreaterThan(0);
      expectSameBits(await loadAdapter(contiguous.get(c.name)!, o), want);
      expectSameBits(await loadAdapter(strided.get(c.name)!, o), want);
    });
  }

  it("a folder with both files is read from its safetensors", async () => {
    const o = caseSpec(lora);
    const got = await loadAdapter(both, o);
    expectSameBits(got, await loadAdapter(join(lora.dir, "init"), o));
    // The .bin beside it holds twice the values: it was not the one read.
    rmSync(join(both, "adapter_model.safetensors"));
    const doubled = await loadAdapter(both, o);
    for (const [k, v] of got) expect(Array.from(doubled.get(k)!), k).toEqual(Array.from(v, (x) => x * 2));
  });
});

describe("a run from a .bin `init from`", () => {
  const quiet: Reporter = { step: () => undefined, eval: () => undefined, saved: () => undefined, info: () => undefined };
  const mirrors: string[] = [];
  afterAll(() => mirrors.forEach((d) => rmSync(join(d, "../../.."), { recursive: true, force: true })));

  async function trained(initFiles: string | undefined): Promise<Map<string, Uint32Array>> {
    const dir = mirrorCase(lora);
    mirrors.push(dir);
    if (initFiles) {
      unlinkSync(join(dir, "init"));
      mkdirSync(join(dir, "init"));
      for (const f of ["adapter_config.json", "adapter_model.bin"]) copyFileSync(join(initFiles, f), join(dir, "init", f));
    }
    const file = join(dir, "run.peft");
    const s = await prepareSession(readFileSync(file), file);
    const backend = new ReferenceBackend(s.trainGraph, s.evalGraph, await allParams(s), s.spec.train.seed, undefined);
    try {
      await runTraining(s, backend, quiet);
    } finally {
      backend.dispose();
    }
    const header = await readSafetensorsHeader(join(dir, "output/adapter_model.safetensors"));
    const out = new Map<string, Uint32Array>();
    for (const t of header.tensors) out.set(t.name, new Uint32Array((await readTensorF32(t)).slice().buffer));
    return out;
  }

  it("trains to the same adapter as from the safetensors one, bit for bit", async () => {
    const fromSafetensors = await trained(undefined);
    const fromBin = await trained(contiguous.get("lora")!);
    expect(fromBin.size).toBe(20); // A and B of q_proj and v_proj in 5 layers
    expect([...fromBin.keys()]).toEqual([...fromSafetensors.keys()]);
    for (const [k, v] of fromSafetensors) expect(fromBin.get(k), k).toEqual(v);
  }, 30_000);
});

describe("pefc generate and pefc merge --adapter", () => {
  async function pefc(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = "";
    let err = "";
    const code = await main(argv, { out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`) });
    return { code, out, err };
  }
  const model = join(lora.dir, "../../../models/stories260K/hf");

  it("generate prints the same text from the .bin as from the safetensors (and not the base model's)", async () => {
    const args = ["generate", "--model", model, "--prompt", "Once upon a time", "--max-new-tokens", "24", "--device", "reference"];
    const fromSafetensors = await pefc(...args, "--adapter", join(lora.dir, "peft-trained"));
    const fromBin = await pefc(...args, "--adapter", trainedBin);
    const base = await pefc(...args);
    expect(fromBin.err).toBe("");
    expect(fromBin.code).toBe(0);
    expect(fromBin.out).toBe(fromSafetensors.out);
    expect(base.out).not.toBe(fromBin.out);
  }, 30_000);

  it("merge writes the same weights from the .bin as from the safetensors", async () => {
    const outs = [join(root, "merged-st"), join(root, "merged-bin")];
    for (const [adapter, out] of [[join(lora.dir, "init"), outs[0]!], [contiguous.get("lora")!, outs[1]!]] as const) {
      const r = await pefc("merge", "--model", model, "--adapter", adapter, "--out", out);
      expect(r.code, r.err).toBe(0);
    }
    expect(readFileSync(join(outs[1]!, "model.safetensors")).equals(readFileSync(join(outs[0]!, "model.safetensors")))).toBe(true);
  }, 30_000);
});

describe("refusals name the .bin and the tensor", () => {
  const bin = (dir: string) => join(dir, "adapter_model.bin");
  const q = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";

  it("a tensor the spec needs is missing, one it has no place for, one of another shape", async () => {
    const dir = contiguous.get("lora")!;
    const more = await refusal(loadAdapter(dir, caseSpec(lora, (t) => t.replace("on q_proj, v_proj", "on q_proj, k_proj, v_proj"))));
    expect(more.file).toBe(bin(dir));
    expect(more.tensor).toBe("base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight");
    expect(more.message).toBe(`${bin(dir)}: no tensor 'base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight', which the spec's model.layers.0.self_attn.k_proj.lora_A.weight [4, 64] loads from; the adapter was saved for other target modules or another method (init from needs the spec that trained it)`);
    const fewer = await refusal(loadAdapter(dir, caseSpec(lora, (t) => t.replace("on q_proj, v_proj", "on q_proj"))));
    expect(fewer.file).toBe(bin(dir));
    expect(fewer.message).toMatch(/^.*adapter_model\.bin: tensor 'base_model\.model\.model\.layers\.0\.self_attn\.v_proj\.lora_A\.weight' \[4, 64\] has no place in the spec's graph \(and \d+ more\)/);
    const rank = await refusal(loadAdapter(dir, caseSpec(lora, (t) => t.replace("r=4", "r=2"))));
    expect(rank.tensor).toBe(q);
    expect(rank.message).toContain(`${bin(dir)}: tensor '${q}' has shape [4, 64] but the spec's model.layers.0.self_attn.q_proj.lora_A.weight needs [2, 64]`);
  });

  it("torch.save's legacy format, a pickle naming another global, a cut-short archive", async () => {
    const o = caseSpec(lora);
    const old = await refusal(loadAdapter(legacy, o));
    expect((old as CheckpointError).kind).toBe("legacy-format");
    expect(old.file).toBe(bin(legacy));
    expect(old.message).toContain("legacy format");
    const global = await refusal(loadAdapter(foreign, o));
    expect((global as CheckpointError).kind).toBe("refused-global");
    expect(global.message).toContain(`${bin(foreign)}: the pickle names the global datetime.date`);
    const cut = await refusal(loadAdapter(truncated, o));
    expect(cut).toBeInstanceOf(CheckpointError);
    expect(cut.file).toBe(bin(truncated));
  });

  it("a folder with neither file names both", async () => {
    const dir = join(root, "none");
    mkdirSync(dir);
    copyFileSync(join(lora.dir, "init/adapter_config.json"), join(dir, "adapter_config.json"));
    const e = await refusal(loadAdapter(dir, caseSpec(lora)));
    expect(e.message).toBe(`${join(dir, "adapter_model.safetensors")}: missing; an adapter folder holds adapter_config.json and adapter_model.safetensors (or PEFT's adapter_model.bin)`);
  });
});
