// `npm run bench -- --load`: how fast a ChatGLM2 checkpoint in its published format loads, and
// how much host memory the load takes. A synthetic chatglm2-6b-width checkpoint (hidden 4096,
// vocab 65024, 2 layers, bf16, 3 torch.save shards; ~1.9 GB) is written by Debian's torch
// (chatglm2_synthetic.py) into a temp folder, or taken from `--load-dir DIR`; then each precision
// is loaded in a fresh process (load-child.ts), interleaved and repeated, and its load time, read
// rate and peak RSS reported against the bound: peak RSS under 1.5x the largest shard.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const MB = 1e6;

export async function benchLoad(argv: readonly string[]): Promise<void> {
  const given = argv.includes("--load-dir") ? argv[argv.indexOf("--load-dir") + 1] : undefined;
  const repeats = argv.includes("--quick") ? 1 : 3;
  let dir = given;
  if (!dir) {
    dir = mkdtempSync(join(tmpdir(), "pefc-bench-chatglm2-"));
    const config = join(here, "..", "..", "shared", "models", "chatglm2-6b-config", "config.json");
    const t = performance.now();
    const r = spawnSync("/usr/bin/python3", [join(here, "chatglm2_synthetic.py"), dir, config], { stdio: "inherit" });
    if (r.status !== 0) throw new Error("chatglm2_synthetic.py failed");
    console.log(`wrote a synthetic ChatGLM2 checkpoint (hidden 4096, vocab 65024, 2 layers, bf16) in ${((performance.now() - t) / 1000).toFixed(1)} s: ${dir}`);
  }
  try {
    const shards = readdirSync(dir).filter((f) => f.endsWith(".bin")).map((f) => ({ f, size: statSync(join(dir!, f)).size }));
    const largest = Math.max(...shards.map((s) => s.size));
    const total = shards.reduce((a, s) => a + s.size, 0);
    console.log(`shards: ${shards.map((s) => `${s.f} ${(s.size / MB).toFixed(0)} MB`).join(", ")}; largest ${(largest / MB).toFixed(0)} MB, bound 1.5x = ${((1.5 * largest) / MB).toFixed(0)} MB`);
    const runs: Record<string, { ms: number; maxRss: number; rssBefore: number; values: number }[]> = { f16: [], f32: [] };
    for (let i = 0; i < repeats; i++) {
      for (const precision of ["f16", "f32"] as const) {
        const r = spawnSync(process.execPath, ["--import", "tsx", join(here, "load-child.ts"), dir, precision], { encoding: "utf8" });
        if (r.status !== 0) throw new Error(`load-child.ts failed: ${r.stderr}`);
        runs[precision]!.push(JSON.parse(r.stdout.trim().split("\n").pop()!));
      }
    }
    for (const [precision, rs] of Object.entries(runs)) {
      const ms = rs.map((r) => r.ms).sort((a, b) => a - b);
      const peak = Math.max(...rs.map((r) => r.maxRss));
      const base = Math.min(...rs.map((r) => r.rssBefore));
      const med = ms[ms.length >> 1]!;
      console.log(
        `load as ${precision}: median ${(med / 1000).toFixed(2)} s of ${rs.length} (${ms.map((m) => (m / 1000).toFixed(2)).join(", ")}), ` +
          `${(total / MB / (med / 1000)).toFixed(0)} MB/s of checkpoint; peak RSS ${(peak / MB).toFixed(0)} MB (${(peak / largest).toFixed(2)}x the largest shard; ` +
          `${(base / MB).toFixed(0)} MB before the load) — ${peak < 1.5 * largest ? "within" : "OVER"} the 1.5x bound`,
      );
    }
  } finally {
    if (!given) rmSync(dir, { recursive: true, force: true });
  }
}
