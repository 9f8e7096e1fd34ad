/**
 * `pefc export-run` as a user meets it: flags checked before any work, output folders that are
 * not ours left alone (P920/P921) unless --overwrite, a bundle of ours replaced in place, and
 * start/ written in PEFT's layout so that pefc's own adapter reader takes it back unchanged.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { loadAdapter } from "../../src/runtime/adapter/index.js";
import { prepareSession } from "../../src/runtime/train/session.js";

const EXAMPLES = new URL("../../examples/", import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), "pefc-export-cli-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function pefc(...args: string[]): Promise<{ code: number; err: string }> {
  let err = "";
  const code = await main(["export-run", ...args], { out: () => undefined, err: (s) => (err += `${s}\n`) });
  return { code, err };
}

describe("pefc export-run", () => {
  it("checks its flags", async () => {
    const spec = join(EXAMPLES, "ia3.peft");
    expect(await pefc(spec)).toEqual({ code: 1, err: "pefc export-run: give the output folder with --to DIR\n" });
    expect((await pefc(spec, "--to", join(work, "x"), "--engine", "torchrun")).err).toContain("--engine takes deepspeed, fsdp, ddp, not 'torchrun'");
    expect((await pefc(spec, "--to", join(work, "x"), "--gpus", "0")).err).toContain("--gpus takes a positive whole number, not '0'");
    expect((await pefc(spec, "--to", join(work, "x"), "--nodes", "1.5")).err).toContain("--nodes takes a positive whole number");
    expect((await pefc(spec, "--to", join(work, "x"), "--precision", "fp8")).err).toContain("--precision takes bf16, fp16, no");
    expect(existsSync(join(work, "x"))).toBe(false);
  });

  it("leaves a folder it did not write alone, unless --overwrite", async () => {
    const spec = join(EXAMPLES, "ia3.peft");
    const dir = join(work, "mine");
    mkdirSync(dir);
    writeFileSync(join(dir, "notes.txt"), "keep me");
    const r = await pefc(spec, "--to", dir);
    expect(r.code).toBe(1);
    expect(r.err).toContain("error P920");
    expect(r.err).toContain(dir);
    expect(readFileSync(join(dir, "notes.txt"), "utf8")).toBe("keep me");
    expect((await pefc(spec, "--to", dir, "--overwrite")).code).toBe(0);
    expect(existsSync(join(dir, "notes.txt"))).toBe(false);
    expect(existsSync(join(dir, "train.py"))).toBe(true);
    // A bundle of ours is replaced without --overwrite, e.g. for another engine.
    expect((await pefc(spec, "--to", dir, "--engine", "ddp")).code).toBe(0);
    expect(existsSync(join(dir, "ds_config.json"))).toBe(false);
    expect(readFileSync(join(dir, "accelerate.yaml"), "utf8")).toContain("distributed_type: 'NO'");
  });

  it("refuses a file as the output folder", async () => {
    const file = join(work, "a-file");
    writeFileSync(file, "x");
    const r = await pefc(join(EXAMPLES, "ia3.peft"), "--to", file);
    expect(r.code).toBe(1);
    expect(r.err).toContain("error P921");
  });

  it("starts from the spec's init from, or from --from", async () => {
    const run = new URL("../../../shared/data/peft-conformance/lora/", import.meta.url).pathname;
    const spec = join(run, "run.peft");
    const s = await prepareSession(readFileSync(spec), spec);
    const read = (dir: string) => loadAdapter(dir, { spec: s.spec, graph: s.trainGraph, profile: s.profile });
    const [init, trained] = [await read(join(run, "init")), await read(join(run, "peft-trained"))];
    const a = join(work, "from-init");
    const b = join(work, "from-trained");
    expect((await pefc(spec, "--to", a)).code).toBe(0);
    expect((await pefc(spec, "--to", b, "--from", join(run, "peft-trained"))).code).toBe(0);
    const [startA, startB] = [await read(join(a, "start")), await read(join(b, "start"))];
    for (const [k, v] of init) expect(Array.from(startA.get(k)!), k).toEqual(Array.from(v));
    for (const [k, v] of trained) expect(Array.from(startB.get(k)!), k).toEqual(Array.from(v));
    expect(readFileSync(join(b, "README.md"), "utf8")).toContain("given with --from");
    const bad = await pefc(spec, "--to", join(work, "from-bad"), "--from", join(work, "nowhere"));
    expect(bad.code).toBe(1);
    expect(existsSync(join(work, "from-bad"))).toBe(false);
  });

  for (const name of ["ia3", "medical", "prompt-tuning", "stories-lora", "p-tuning-v2"]) {
    it(`writes start/ that pefc reads back: ${name}`, async () => {
      const spec = join(EXAMPLES, `${name}.peft`);
      const dir = join(work, `start-${name}`);
      expect((await pefc(spec, "--to", dir)).code).toBe(0);
      const s = await prepareSession(readFileSync(spec), spec);
      const back = await loadAdapter(join(dir, "start"), { spec: s.spec, graph: s.trainGraph, profile: s.profile });
      const trained = s.trainGraph.params.filter((p) => p.trainable && !p.name.endsWith(".ranknum"));
      expect(trained.length).toBeGreaterThan(0);
      for (const p of trained) expect(Array.from(back.get(p.name) ?? []), p.name).toEqual(Array.from(s.params.get(p.name)!));
    });
  }
});
