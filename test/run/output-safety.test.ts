/**
 * pefc writes only what it owns: before the first step every output path of a run (and --out of
 * merge and export) is checked, and a regular file, a folder of the user's, a folder holding the
 * spec or its data, an unwritable place or an earlier run's checkpoints stop the command with a
 * coded error naming the path. Each case lists the files before and after.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";

const dir = mkdtempSync(join(tmpdir(), "pefc-outputs-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function pefc(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`) });
  return { code, out, err };
}

/** Every file under `root` with its bytes, so "nothing changed" is a comparison. */
function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(root, p)] = readFileSync(p).toString("base64");
    }
  };
  walk(root);
  return out;
}

const DATA = readFileSync(resolve("examples/data/instructions.jsonl"));

/** A project folder with a spec, its data and an unrelated file of the user's. */
function project(name: string, save: string, train = "steps = 2;"): { root: string; spec: string } {
  const root = join(dir, name);
  mkdirSync(root);
  writeFileSync(join(root, "data.jsonl"), DATA);
  writeFileSync(join(root, "notes.txt"), "my notes\n");
  const spec = join(root, "run.peft");
  writeFileSync(spec, `model "builtin:tiny-llama";
data train "data.jsonl" { prompt = instruction; response = output; max_length = 32; }
lora r=2 on q_proj;
train { ${train} batch = 2; log_every = 1; }
${save}
`);
  return { root, spec };
}

const run = (spec: string, ...flags: string[]) => pefc("run", "--device", "reference", spec, ...flags);

describe("pefc run refuses outputs it does not own, before any step", () => {
  it("a regular file at `save to` stays, with P904 (replaced only with --overwrite)", async () => {
    const { root, spec } = project("file", 'save to "result";');
    writeFileSync(join(root, "result"), "a file of mine\n");
    const before = tree(root);
    const r = await run(spec);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${spec}:5:1: error P904: ${join(root, "result")} is a file, not a folder pefc wrote; pass --overwrite`);
    expect(r.out).not.toContain("step 1");
    expect(tree(root)).toEqual(before);

    const o = await run(spec, "--overwrite");
    expect(o.code).toBe(0);
    expect(readdirSync(join(root, "result")).sort()).toEqual([".pefc-output", "adapter_config.json", "adapter_model.safetensors", "loss.svg", "metrics.jsonl"]);
    expect(readFileSync(join(root, "notes.txt"), "utf8")).toBe("my notes\n");

    // Now the folder is pefc's, from an earlier run: a rerun asks before replacing it.
    const after = tree(root);
    const again = await run(spec);
    expect(again.code).toBe(1);
    expect(again.err).toContain(`error P907: ${join(root, "result")} holds the output of an earlier run; pass --overwrite to replace it`);
    expect(tree(root)).toEqual(after);
  });

  it("a folder that cannot be created mid-write is P902, not an internal error", async () => {
    const { replaceDirAtomic } = await import("../../src/runtime/io/atomic.js");
    await expect(replaceDirAtomic("/sys/pefc-out/adapter", async () => undefined)).rejects.toThrow(/^error P902: \/sys\/pefc-out: cannot write: permission denied$/);
  });

  it("a non-empty folder pefc did not write keeps its files, with P905", async () => {
    const { root, spec } = project("userdir", 'save every 1 step to "out";');
    mkdirSync(join(root, "out"));
    writeFileSync(join(root, "out", "thesis.tex"), "chapter 1\n");
    const before = tree(root);
    const r = await run(spec);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`error P905: ${join(root, "out")} is a folder pefc did not write and holds 1 entries (thesis.tex)`);
    expect(tree(root)).toEqual(before);
  });

  it('`save to ".";` is refused even with --overwrite: the folder holds the spec and its data (P903)', async () => {
    const { root, spec } = project("dot", 'save to ".";');
    const before = tree(root);
    for (const flags of [[], ["--overwrite"]]) {
      const r = await run(spec, ...flags);
      expect(r.code).toBe(1);
      expect(r.err).toContain(`${spec}:5:1: error P903: ${root} holds the spec ${spec}; pefc never writes over its own inputs`);
      expect(tree(root)).toEqual(before);
    }
  });

  it("an unwritable location is P902 before the first step, and leaves nothing behind", async () => {
    // /sys refuses new entries even to root; a path under a regular file cannot be a folder.
    for (const [target, why] of [["/sys/pefc-out", "permission denied"], ["notes.txt/out", "is a file, not a folder"]] as const) {
      const { root, spec } = project(`ro-${why.length}`, `save every 1 step to "${target}";`);
      const before = tree(root);
      const r = await run(spec);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/error P902: cannot write .*pefc-out|error P902: cannot write .*notes\.txt\/out/);
      expect(r.err).toContain(why);
      expect(r.out).not.toContain("step 1");
      expect(tree(root)).toEqual(before);
      expect(readdirSync(root).some((n) => n.includes(".pefc-"))).toBe(false);
    }
  });

  it("a rerun into its own checkpoints says --resume or --overwrite; metrics.jsonl is not overwritten", async () => {
    const { root, spec } = project("rerun", 'save every 1 step to "out" keep 2;', "steps = 4;");
    expect((await run(spec)).code).toBe(0);
    expect(readdirSync(join(root, "out")).sort()).toEqual([".pefc-output", "checkpoint-3", "checkpoint-4", "loss.svg", "metrics.jsonl"]);
    const before = tree(root);
    const r = await run(spec);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`error P906: ${join(root, "out")} holds checkpoints of an earlier run (up to checkpoint-4); continue that run with --resume ${join(root, "out", "checkpoint-4")}, or pass --overwrite`);
    expect(tree(root)).toEqual(before);
  });

  it("--overwrite starts over, and keep N never deletes the checkpoint it just wrote", async () => {
    const { root, spec } = project("keep", 'save every 1 step to "out" keep 2;', "steps = 4;");
    expect((await run(spec)).code).toBe(0);
    // A shorter rerun: its checkpoints 1 and 2 sort older than the earlier run's 3 and 4.
    writeFileSync(spec, readFileSync(spec, "utf8").replace("steps = 4", "steps = 2"));
    const r = await run(spec, "--overwrite");
    expect(r.code).toBe(0);
    expect(r.out).toContain(`saved ${join(root, "out", "checkpoint-2")}`);
    expect(readdirSync(join(root, "out")).sort()).toEqual([".pefc-output", "checkpoint-1", "checkpoint-2", "loss.svg", "metrics.jsonl"]);
    const metrics = readFileSync(join(root, "out", "metrics.jsonl"), "utf8").trim().split("\n");
    expect(metrics.map((l) => (JSON.parse(l) as { step: number }).step)).toEqual([1, 2]);
  });

  it("two outputs at one path are refused (P908)", async () => {
    const { root, spec } = project("twice", 'save every 1 step to "out";\nsave to "out";');
    const before = tree(root);
    const r = await run(spec);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${spec}:6:1: error P908: ${join(root, "out")} is also written by save every step to "out"`);
    expect(tree(root)).toEqual(before);
  });
});

describe("pefc merge --out and export --out", () => {
  it("refuse a regular file and a folder of the user's, replace their own earlier output", async () => {
    const { root, spec } = project("merge", 'save to "adapter";');
    expect((await run(spec)).code).toBe(0);
    const adapter = join(root, "adapter");
    writeFileSync(join(root, "merged"), "keep me\n");
    mkdirSync(join(root, "mine"));
    writeFileSync(join(root, "mine", "a.txt"), "a\n");
    const before = tree(root);
    const merge = (out: string, ...flags: string[]) => pefc("merge", "--model", "builtin:tiny-llama", "--adapter", adapter, "--out", out, ...flags);

    const f = await merge(join(root, "merged"));
    expect(f.code).toBe(1);
    expect(f.err).toContain(`pefc merge: error P904: ${join(root, "merged")} is a file, not a folder pefc wrote`);
    const d = await pefc("export", "adapter", adapter, "--out", join(root, "mine"));
    expect(d.code).toBe(1);
    expect(d.err).toContain(`pefc export: error P905: ${join(root, "mine")} is a folder pefc did not write`);
    const inside = await pefc("export", "adapter", adapter, "--out", root);
    expect(inside.code).toBe(1);
    expect(inside.err).toContain(`error P903: ${root} holds the checkpoint ${adapter}`);
    expect(tree(root)).toEqual(before);

    expect((await merge(join(root, "m2"))).code).toBe(0);
    expect((await merge(join(root, "m2"))).code).toBe(0);
    expect(readdirSync(join(root, "m2")).sort()).toEqual([".pefc-output", "config.json", "model.safetensors"]);
    const o = await merge(join(root, "merged"), "--overwrite");
    expect(o.code).toBe(0);
    expect(statSync(join(root, "merged")).isDirectory()).toBe(true);
  });
});
