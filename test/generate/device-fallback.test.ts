/**
 * `pefc generate` and `pefc chat` on a machine without a WebGPU adapter (Mesa hidden:
 * VK_ICD_FILENAMES at nothing), started as users start them (the script, which runs them behind
 * Dawn's stderr filter): without --device they say so in run's one line and decode on the CPU
 * reference, printing what --device reference prints (for stories260K, llama2.c's published
 * continuation); --device gpu still fails with P801.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { REPO, STORIES } from "./helpers.js";

const NO_MESA = { ...process.env, VK_ICD_FILENAMES: "/nonexistent" };
const NOTICE = /^no WebGPU adapter \(no GPU, no Vulkan driver\): running on the CPU reference device.*mesa-vulkan-drivers >= 25.*\n$/;
const LLAMA2C = "Once upon a time, there was a little girl named Lily. She loved to play outside in the p";

function script(args: string[], input?: string): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", join(REPO, "src/cli/main-bin.ts"), ...args], { env: NO_MESA, stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  child.stdin.end(input ?? "");
  return new Promise((done) => child.on("close", (code) => done({ code, out, err })));
}

async function inProcess(...argv: string[]): Promise<string> {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`) });
  expect(code, err).toBe(0);
  return out;
}

const generate = ["generate", "--model", STORIES, "--prompt", "Once upon a time", "--max-new-tokens", "24"];

// Each case waits on its own processes: they run side by side.
describe.concurrent("no WebGPU adapter", () => {
  it("generate without --device: the notice on stderr, then the reference's greedy text", async () => {
    const [r, reference] = await Promise.all([script(generate), inProcess(...generate, "--device", "reference")]);
    expect(r.code, r.err).toBe(0);
    // The notice is the only stderr line: Dawn's vkCreateInstance warnings are filtered out.
    expect(r.err).toMatch(NOTICE);
    expect(r.out).toBe(reference);
    expect(r.out.startsWith(LLAMA2C)).toBe(true);
  }, 60_000);

  it("generate --device gpu: P801 with the fix, exit 1, no text, no Dawn lines", async () => {
    const r = await script([...generate, "--device", "gpu"]);
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    expect(r.err).toContain("P801: no WebGPU adapter");
    expect(r.err).toContain("apt-get install -y -t bookworm-backports mesa-vulkan-drivers");
    expect(r.err).not.toMatch(/CheckVkSuccessImpl|Warning:|running on the CPU reference/);
  }, 60_000);

  it("chat without --device: the notice once, then the reference's answers", async () => {
    // Each question in a conversation of its own, so each answer is what generate prints for it.
    const questions = ["Once upon a time", "The cat"];
    const [r, ...want] = await Promise.all([
      script(["chat", "--model", STORIES, "--template", "plain", "--max-new-tokens", "8"], `${questions.join("\n\n")}\nexit\n`),
      ...questions.map((q) => inProcess("generate", "--model", STORIES, "--prompt", q, "--template", "plain", "--max-new-tokens", "8", "--device", "reference")),
    ]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(NOTICE);
    expect(r.out).toBe(want.join(""));
    expect(r.out.trim().split("\n")).toHaveLength(2);
  }, 60_000);
});
