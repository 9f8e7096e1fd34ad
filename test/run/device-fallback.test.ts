/**
 * On a machine without a WebGPU adapter (Mesa hidden: VK_ICD_FILENAMES at nothing) `pefc run`
 * says so in one line and trains on the CPU reference; --device gpu still fails with P801. Dawn's
 * own stderr lines never reach the user. And Ctrl-C stops a run at a step boundary with a
 * checkpoint it names, the command to resume, and exit code 130.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DawnFilter, isDawnLine } from "../../src/cli/native-filter.js";

const dir = mkdtempSync(join(tmpdir(), "pefc-fallback-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NO_MESA = { ...process.env, VK_ICD_FILENAMES: "/nonexistent" };

function project(name: string, train: string, save: string): string {
  mkdirSync(join(dir, name));
  writeFileSync(join(dir, name, "data.jsonl"), readFileSync(resolve("examples/data/instructions.jsonl")));
  writeFileSync(join(dir, name, "run.peft"), `model "builtin:tiny-llama";
data train "data.jsonl" { prompt = instruction; response = output; max_length = 32; }
lora r=2 on q_proj;
train { ${train} batch = 2; }
${save}
`);
  return join(dir, name, "run.peft");
}

/** The command as users start it: the script, which runs device commands behind Dawn's filter. */
function pefc(args: string[], env: NodeJS.ProcessEnv, onOut?: (text: string, pid: number) => void): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", resolve("src/cli/main-bin.ts"), ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
    onOut?.(out, child.pid!);
  });
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  return new Promise((done) => child.on("close", (code) => done({ code, out, err })));
}

describe("no WebGPU adapter", () => {
  it("without --device: one line saying so, then the CPU reference trains and saves", async () => {
    const spec = project("fallback", "steps = 2;", 'save to "out";');
    const r = await pefc(["run", spec], NO_MESA);
    expect(r.code).toBe(0);
    expect(r.out.split("\n")[0]).toMatch(/^no WebGPU adapter \(no GPU, no Vulkan driver\): running on the CPU reference device.*mesa-vulkan-drivers/);
    expect(r.out).toContain("steps (16 per epoch) on CPU reference");
    expect(r.out).toContain(`saved ${join(dir, "fallback", "out")}`);
    expect(readdirSync(join(dir, "fallback", "out"))).toContain("adapter_model.safetensors");
    // Dawn printed its limit warnings and vkCreateInstance failures here; none passes the filter.
    expect(r.err).toBe("");
  }, 60_000);

  it("--device gpu: P801 with the fix, exit 1, nothing written, no Dawn lines", async () => {
    const spec = project("gpu", "steps = 2;", 'save to "out";');
    const r = await pefc(["run", "--device", "gpu", spec], NO_MESA);
    expect(r.code).toBe(1);
    expect(r.err).toContain("P801: no WebGPU adapter");
    expect(r.err).toContain("apt-get install -y -t bookworm-backports mesa-vulkan-drivers");
    expect(r.err).not.toMatch(/CheckVkSuccessImpl|Warning:/);
    expect(existsSync(join(dir, "gpu", "out"))).toBe(false);
  }, 60_000);
});

describe("Dawn's stderr filter", () => {
  // Lines as dawn.node (webgpu 0.6.2) prints them, recorded on llvmpipe and without any driver.
  const DAWN = [
    "Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.",
    "Warning: maxDynamicStorageBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.",
    "Warning: vkCreateInstance: Found no drivers!",
    "Warning: vkCreateInstance failed with VK_ERROR_INCOMPATIBLE_DRIVER",
    "    at CheckVkSuccessImpl (/home/runner/work/node-webgpu/node-webgpu/third_party/dawn/src/dawn/native/vulkan/VulkanError.cpp:106)",
  ];
  const OURS = ["\r\x1b[2K[####....] step 3/9  loss 5.1", "\r\x1b[2Kstep 4/9", "saved out/checkpoint-4", "(node:12) Warning: something of Node's", "x.peft:1:1: error P201: expected ';'", "    at the end"];

  it("drops Dawn's lines and passes the rest byte for byte, however the text is chunked", () => {
    const text = [OURS[0], DAWN[0], OURS[1], DAWN[1], DAWN[2], OURS[2], DAWN[3], DAWN[4], OURS[3], OURS[4], OURS[5]].join("\n") + "\n" + "partial progress";
    const want = [OURS[0], OURS[1], OURS[2], OURS[3], OURS[4], OURS[5]].join("\n") + "\n" + "partial progress";
    for (const size of [1, 2, 3, 7, 64, text.length]) {
      const f = new DawnFilter();
      let got = "";
      for (let i = 0; i < text.length; i += size) got += f.write(text.slice(i, i + size));
      got += f.end();
      expect(got, `chunks of ${size}`).toBe(want);
    }
    for (const l of DAWN) expect(isDawnLine(l)).toBe(true);
    for (const l of OURS) expect(isDawnLine(l)).toBe(false);
  });

  it("passes a progress redraw on at once, and drops Dawn's line written after it", () => {
    const f = new DawnFilter();
    expect(f.write("\r\x1b[2K[##..] step 1/4")).toBe("\r\x1b[2K[##..] step 1/4");
    expect(f.write("Warn")).toBe("");
    expect(f.write("ing: maxDynamicStorageBuffersPerPipelineLayout artificially reduced\n")).toBe("");
    expect(f.write("\r\x1b[2K[###.] step 2/4")).toBe("\r\x1b[2K[###.] step 2/4");
  });

  it("drops the blank line Dawn prints after a failure's source line, and only that one", () => {
    const f = new DawnFilter();
    expect(f.write(`${DAWN[3]}\n${DAWN[4]}\n\npefc run: P801: no WebGPU adapter\n\nnext\n`)).toBe("pefc run: P801: no WebGPU adapter\n\nnext\n");
  });
});

describe("Ctrl-C", () => {
  it("stops after a step, saves a checkpoint, says how to resume, exits 130; --resume finishes the run", async () => {
    const spec = project("sigint", "steps = 60; log_every = 1;", 'save every 50 steps to "out";');
    let sent = false;
    // Sent to the command's own process, as `kill -INT` would; the filter passes it on.
    const r = await pefc(["run", spec], NO_MESA, (out, pid) => {
      if (!sent && /step 3\/60/.test(out)) {
        sent = true;
        process.kill(pid, "SIGINT");
      }
    });
    expect(r.code).toBe(130);
    const m = /interrupted after step (\d+) of 60: saved (\S+)\nto continue: pefc run (\S+) --resume (\S+)/.exec(r.out);
    expect(m, r.out).not.toBeNull();
    const step = Number(m![1]);
    expect(step).toBeGreaterThanOrEqual(3);
    expect(step).toBeLessThan(50);
    expect(m![2]).toBe(join(dir, "sigint", "out", `checkpoint-${step}`));
    expect(m![4]).toBe(m![2]);
    expect(readdirSync(join(dir, "sigint", "out")).sort()).toEqual([".pefc-output", `checkpoint-${step}`, "loss.svg", "metrics.jsonl"]);
    const state = JSON.parse(readFileSync(join(m![2]!, "trainer_state.json"), "utf8")) as { step: number; losses: number[] };
    expect(state.step).toBe(step);
    expect(state.losses).toHaveLength(step);
    expect(r.err).toBe("");

    const resumed = await pefc(["run", "--device", "reference", spec, "--resume", m![2]!], process.env);
    expect(resumed.code).toBe(0);
    expect(resumed.out).toContain(`resuming at step ${step} of 60`);
    expect(readdirSync(join(dir, "sigint", "out"))).toContain("checkpoint-60");
  }, 240_000);
});

describe("the banner's adapter name", () => {
  it("names llvmpipe as Mesa's CPU Vulkan driver, from the adapter info Dawn gives on this machine", async () => {
    const { adapterName } = await import("../../src/runtime/device/index.js");
    // As Dawn (webgpu 0.6.2) reports Mesa 25's llvmpipe.
    expect(adapterName({ vendor: "mesa", device: "llvmpipe-llvm-15-0-6-256-bits-", description: "llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1" })).toBe("llvmpipe (Mesa CPU Vulkan)");
  });
});
