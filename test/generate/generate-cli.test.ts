/**
 * pefc generate and pefc chat on the WebGPU device (their default): on the real stories260K,
 * greedy decoding prints llama2.c's published continuation of "Once upon a time", the same text
 * the CPU reference prints; chat answers the same on both devices, the second turn reusing the
 * first's cache; a device that does not exist is refused.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { REPO, STORIES } from "./helpers.js";

async function pefc(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`) });
  return { code, out, err };
}

const LLAMA2C = "Once upon a time, there was a little girl named Lily. She loved to play outside in the p";
const args = ["generate", "--model", STORIES, "--prompt", "Once upon a time", "--max-new-tokens", "24", "--temperature", "0"];

describe("pefc generate", () => {
  it("on the GPU (the default device) prints llama2.c's continuation for stories260K", async () => {
    const r = await pefc(...args);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out.startsWith(LLAMA2C)).toBe(true);
    const explicit = await pefc(...args, "--device", "gpu");
    expect(explicit.out).toBe(r.out);
    const reference = await pefc(...args, "--device", "reference");
    expect(reference.out).toBe(r.out);
  });

  it("names gpu as the default and refuses an unknown device", async () => {
    const help = await pefc("generate", "--help");
    expect(help.out + help.err).toMatch(/--device gpu\s+\(the default\)|gpu \(default\)/);
    const r = await pefc(...args, "--device", "tpu");
    expect(r.code).toBe(1);
    expect(r.err).toContain("--device takes gpu or reference, not 'tpu'");
  });
});

describe("pefc chat", () => {
  const chat = (device: string) =>
    spawnSync(join(REPO, "node_modules/.bin/tsx"), [join(REPO, "src/cli/main-bin.ts"), "chat", "--model", STORIES, "--template", "plain", "--max-new-tokens", "8", "--device", device], {
      input: "Once upon a time\nThe cat\nexit\n",
      encoding: "utf8",
    });

  it("answers the same on the GPU as on the reference, turn after turn", () => {
    const gpu = chat("gpu");
    expect(gpu.status, gpu.stderr).toBe(0);
    const ref = chat("reference");
    expect(ref.status, ref.stderr).toBe(0);
    const lines = gpu.stdout.trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines.every((l) => l.length > 0)).toBe(true);
    expect(gpu.stdout).toBe(ref.stdout);
  });
});
