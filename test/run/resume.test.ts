/**
 * (On the CPU reference, so runs start in milliseconds, but for one run on the WebGPU device;
 * test/gpu checks the GPU backend computes the same steps.) Checkpoints resume bit-identically: a
 * run resumed from a mid-run checkpoint ends with the same adapter bytes (and optimizer state, and
 * AdaLoRA rank pattern) as the uninterrupted run. And a run killed at random moments, saves
 * included, always leaves loadable checkpoints behind.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { readTrainerFiles } from "../../src/runtime/train/checkpoint.js";
import { openSafetensorsFile } from "../../src/runtime/io/index.js";

const dir = mkdtempSync(join(tmpdir(), "pefc-resume-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function pefc(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`) });
  return { code, out, err };
}

const data = resolve("examples/data/medical.jsonl");
const SPEC = `model "builtin:tiny-chatglm2";
data train "${data}" { prompt = ask; response = answer; max_source = 24; max_target = 24; }
adalora r=2 alpha=8 dropout=0.1 on query_key_value { init_r = 4; tinit = 1; tfinal = 1; delta_t = 1; }
train { steps = 6; batch = 2; grad_accum = 2; lr = 0.01; optimizer = adamw; weight_decay = 0.01; }
save every 2 steps to "out";
`;

function setup(name: string, spec = SPEC): string {
  mkdirSync(join(dir, name));
  writeFileSync(join(dir, name, "run.peft"), spec);
  return join(dir, name, "run.peft");
}

/** Runs the spec whole in `full`, then from checkpoint-`from` in `resumed`; the last checkpoints must be the same bytes. */
async function resumedMatchesFull(device: string, full: string, resumed: string, from: number): Promise<{ out: string }> {
  expect((await pefc("run", "--device", device, setup(full))).code).toBe(0);
  const r = await pefc("run", "--device", device, setup(resumed), "--resume", join(dir, full, "out", `checkpoint-${from}`));
  expect(r.err).toBe("");
  expect(r.code).toBe(0);
  for (const f of ["adapter_model.safetensors", "adapter_config.json", "trainer_tensors.safetensors"]) {
    const a = readFileSync(join(dir, full, "out", "checkpoint-6", f));
    const b = readFileSync(join(dir, resumed, "out", "checkpoint-6", f));
    expect(a.equals(b), f).toBe(true);
  }
  return r;
}

describe("resume", () => {
  it("a run resumed from checkpoint-2 ends bit-identical to the uninterrupted run", async () => {
    const r = await resumedMatchesFull("reference", "full", "resumed", 2);
    expect(r.out).toContain("resuming at step 2 of 6");
    expect(r.out).not.toMatch(/step 1\/6/);
    const cfg = JSON.parse(readFileSync(join(dir, "full", "out", "checkpoint-6", "adapter_config.json"), "utf8")) as { rank_pattern: Record<string, boolean[]> };
    expect(Object.keys(cfg.rank_pattern).length).toBe(2);
    expect(existsSync(join(dir, "full", "out", "metrics.jsonl"))).toBe(true);
    expect(readFileSync(join(dir, "full", "out", "loss.svg"), "utf8")).toContain("<polyline");
  });

  it("on the WebGPU device too: resumed past AdaLoRA's final masking, the same bytes", async () => {
    // tinit = tfinal = 1 of 6 steps: PEFT's global_step runs 0..5, masking from 2 on, and the
    // final masking (EMAs reset) is global_step 5, the last step; the run resumed from
    // checkpoint-4 restores the device EMAs and keep-mask, masks at 4 and crosses the final one.
    await resumedMatchesFull("gpu", "gpu-full", "gpu-resumed", 4);
  });

  it("refuses a checkpoint of another spec with a clear message", async () => {
    const other = setup("other", SPEC.replace("steps = 6", "steps = 8"));
    const r = await pefc("run", "--device", "reference", other, "--resume", join(dir, "full", "out", "checkpoint-2"));
    expect(r.code).toBe(1);
    expect(r.err).toContain("the checkpoint is of a run of 6 steps; this spec now makes 8");
    const none = await pefc("run", "--device", "reference", other, "--resume", join(dir, "nowhere"));
    expect(none.code).toBe(1);
    expect(none.err).toContain("trainer_state.json: not found");
  });

  it("killing the run at random moments, saves included, leaves only loadable checkpoints", async () => {
    const spec = setup("killed", SPEC.replace("steps = 6", "steps = 40").replace("save every 2 steps", "save every 1 step"));
    for (let attempt = 0; attempt < 4; attempt++) {
      // One process (node with tsx's loader), so SIGKILL stops the very process that writes.
      const child = spawn(process.execPath, ["--import", "tsx", resolve("src/cli/main-bin.ts"), "run", "--device", "reference", "--overwrite", spec], { stdio: ["ignore", "pipe", "pipe"] });
      let saves = 0;
      await new Promise<void>((done) => {
        child.stdout.on("data", (d: Buffer) => {
          saves += (d.toString().match(/saved /g) ?? []).length;
          // Kill somewhere inside the next save or step, at a varying delay.
          if (saves >= 2 + attempt && !child.killed) setTimeout(() => child.kill("SIGKILL"), 3 + 7 * attempt);
        });
        child.on("exit", () => done());
      });
      const root = join(dir, "killed", "out");
      const ckpts = readdirSync(root).filter((n) => /^checkpoint-\d+$/.test(n));
      expect(ckpts.length).toBeGreaterThan(0);
      for (const c of ckpts) {
        const { state } = await readTrainerFiles(join(root, c));
        expect(`checkpoint-${state.step}`).toBe(c);
        const st = await openSafetensorsFile(join(root, c, "adapter_model.safetensors"));
        expect(st.tensors.size).toBe(6);
        JSON.parse(readFileSync(join(root, c, "adapter_config.json"), "utf8"));
      }
    }
  });
});
