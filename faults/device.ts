/**
 * Family "device": the WebGPU device missing or too small. With no Vulkan driver (VK_ICD_FILENAMES
 * pointing nowhere) `pefc run --device gpu` must exit 1 with P801 and how to install one, and
 * `pefc run` without --device must say so in one line and train on the CPU reference; a micro-batch whose
 * logits exceed the device's largest storage binding must exit 1 naming the tensor and what to
 * lower, before any step runs; a device lost mid-run must end in P803 with the checkpoints before
 * it intact.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fallbackNotice, NoAdapterError, openDevice, type Device } from "../src/runtime/device/index.js";
import { DeviceLostError } from "../src/runtime/device/lost.js";
import { openGpuBackend } from "../src/runtime/gpu/index.js";
import { isUserError } from "../src/runtime/io/errors.js";
import { readTrainerFiles } from "../src/runtime/train/checkpoint.js";
import { runTraining, type Reporter } from "../src/runtime/train/loop.js";
import { prepareSession } from "../src/runtime/train/session.js";
import type { FaultOptions } from "./lib/options.js";
import { looksLikeTrace, pefc } from "./lib/pefc.js";
import { rng } from "./lib/rng.js";
import { expectThat, Tally } from "./lib/tally.js";

const SPEC = (data: string, extra: string) => `model "builtin:tiny-chatglm2";
data train "${data}" { ${extra} }
lora r=2 alpha=4 on query_key_value;
train { steps = 1; batch = ${extra.includes("max_length") ? 64 : 2}; lr = 1e-3; }
save to "out";
`;

export async function deviceFamily(o: FaultOptions): Promise<Tally> {
  const t = new Tally("device");
  t.zero("crashes", "hangs");
  const dir = mkdtempSync(join(tmpdir(), "pefc-faults-device-"));
  try {
    const medical = SPEC(resolve("examples/data/medical.jsonl"), "prompt = ask; response = answer; max_source = 16; max_target = 16;");
    const noDriver = { ...process.env, VK_ICD_FILENAMES: "/nonexistent" };
    await t.case("no WebGPU adapter (no Vulkan driver), --device gpu", "npm run faults -- --only device", async () => {
      mkdirSync(join(dir, "a"));
      writeFileSync(join(dir, "a", "a.peft"), medical);
      const res = await pefc(["run", join(dir, "a", "a.peft"), "--device", "gpu"], { cwd: dir, timeoutMs: 120_000, env: noDriver });
      if (res.timedOut) return t.fail("no adapter", "no answer within 120 s", "", "hangs");
      expectThat(res.code === 1, `exit ${res.code}: ${res.err.slice(-600)}`);
      expectThat(!looksLikeTrace(res.err), `stack trace: ${res.err}`);
      expectThat(/P801: no WebGPU adapter/.test(res.err) && /mesa-vulkan-drivers/.test(res.err), `no P801 with the fix: ${res.err.slice(-600)}`);
      t.add("clear messages");
    });
    await t.case("no WebGPU adapter (no Vulkan driver), no --device: the CPU reference", "npm run faults -- --only device", async () => {
      mkdirSync(join(dir, "r"));
      writeFileSync(join(dir, "r", "r.peft"), medical);
      const res = await pefc(["run", join(dir, "r", "r.peft")], { cwd: dir, timeoutMs: 180_000, env: noDriver });
      if (res.timedOut) return t.fail("fallback", "no answer within 180 s", "", "hangs");
      const all = res.out + res.err;
      expectThat(res.code === 0, `exit ${res.code}: ${all.slice(-600)}`);
      expectThat(!looksLikeTrace(res.err), `stack trace: ${res.err}`);
      expectThat(all.includes(fallbackNotice()) && /on CPU reference/.test(all), `no fallback notice: ${all.slice(-600)}`);
      t.add("clear messages");
    });
    if (!o.quick) {
      await t.case("a micro-batch whose logits exceed the largest storage binding", "npm run faults -- --only device", async () => {
        const r = rng(5);
        const lines = Array.from({ length: 64 }, () => JSON.stringify({ input_ids: Array.from({ length: 2100 }, () => 3 + Math.floor(r() * 250)) }));
        mkdirSync(join(dir, "b"));
        writeFileSync(join(dir, "b", "long.jsonl"), lines.join("\n") + "\n");
        writeFileSync(join(dir, "b", "b.peft"), SPEC("long.jsonl", "max_length = 2100 tokens;"));
        const res = await pefc(["run", join(dir, "b", "b.peft")], { cwd: dir, timeoutMs: 300_000 });
        if (res.timedOut) return t.fail("binding limit", "no answer within 300 s", "", "hangs");
        expectThat(!looksLikeTrace(res.err), `stack trace: ${res.err.slice(-600)}`);
        // A device with bindings past 172 MB (a real GPU) trains this; llvmpipe's 128 MiB must refuse it by name.
        if (res.code === 0) return void t.notes.push("this device binds the 172 MB logits: the limit case trained");
        expectThat(res.code === 1 && /logits/.test(res.err) && /largest storage binding/.test(res.err) && /batch or max_length/.test(res.err), `exit ${res.code}: ${res.err.slice(-600)}`);
        t.add("clear messages");
      });
    }
    await deviceLostCases(t, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return t;
}

/**
 * The device lost mid-run: a reporter that destroys the GPUDevice (as a driver reset would take
 * it) after step 2 of a run saving every step. The run must stop with P803 at the next step, as a
 * user-facing error (exit 1 through the CLI's handler), and checkpoints 1 and 2 must stay whole.
 */
async function deviceLostCases(t: Tally, dir: string): Promise<void> {
  await t.case("the WebGPU device lost mid-run", "npm run faults -- --only device", async () => {
    const file = join(dir, "lost.peft");
    const text = `model "builtin:tiny-chatglm2";
data train "${resolve("examples/data/medical.jsonl")}" { prompt = ask; response = answer; max_source = 16; max_target = 16; }
lora r=2 alpha=4 on query_key_value;
train { steps = 5; batch = 2; lr = 1e-3; }
save every 1 step to "lost-out";
`;
    writeFileSync(file, text);
    const s = await prepareSession(new TextEncoder().encode(text), file);
    let dev: Device;
    try {
      dev = await openDevice();
    } catch (e) {
      if (e instanceof NoAdapterError) return void t.notes.push("lost-device case: no WebGPU adapter here");
      throw e;
    }
    const backend = await openGpuBackend(s, dev);
    const report: Reporter = {
      step: () => undefined, eval: () => undefined, info: () => undefined,
      saved: (_d, step) => {
        if (step === 2) dev.gpu.destroy();
      },
    };
    let stopped: unknown;
    try {
      await runTraining(s, backend, report);
    } catch (e) {
      stopped = e;
    }
    expectThat(stopped instanceof DeviceLostError, `the run ended with ${stopped instanceof Error ? stopped.message : String(stopped)}`);
    expectThat(isUserError(stopped) && /P803: the WebGPU device was lost/.test((stopped as Error).message) && /--resume/.test((stopped as Error).message), `no P803 with how to go on: ${(stopped as Error).message}`);
    const root = join(dir, "lost-out");
    const kept = readdirSync(root).filter((n) => /^checkpoint-\d+$/.test(n)).sort();
    expectThat(kept.join(",") === "checkpoint-1,checkpoint-2", `checkpoints left: ${kept.join(",")}`);
    for (const k of kept) await readTrainerFiles(join(root, k));
    t.add("clear messages");
  });
}
