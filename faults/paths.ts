/**
 * Family "paths": a run writes only inside the folders its spec names. The output folder is
 * seeded with traps pointing elsewhere (a checkpoint-N that is a symlink to another folder, the
 * metrics and loss-curve files as symlinks to files outside, stale -building and -old sidecars
 * that are symlinks, an export folder that is a symlink) and the data holds absolute and `..`
 * paths in its text fields. After the run every byte outside the named folders must be as it was.
 */
import { createHash } from "node:crypto";
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FaultOptions } from "./lib/options.js";
import { looksLikeTrace, pefc } from "./lib/pefc.js";
import { expectThat, Tally } from "./lib/tally.js";

/** Every file and link under `dir` (links not followed), by path: content hash or link target. */
function snapshot(dir: string, skip: (p: string) => boolean, into = new Map<string, string>()): Map<string, string> {
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (skip(p)) continue;
    const st = lstatSync(p);
    if (st.isSymbolicLink()) into.set(p, `-> ${readlinkSync(p)}`);
    else if (st.isDirectory()) snapshot(p, skip, into.set(p, "dir"));
    else into.set(p, createHash("sha256").update(readFileSync(p)).digest("hex"));
  }
  return into;
}

export async function pathsFamily(o: FaultOptions): Promise<Tally> {
  const t = new Tally("paths");
  t.zero("crashes", "bytes written outside");
  const root = mkdtempSync(join(tmpdir(), "pefc-faults-paths-"));
  try {
    await t.case("a run with symlink traps in its output folder", "npm run faults -- --only paths", async () => {
      const victim = join(root, "victim");
      const work = join(root, "work");
      const out = join(work, "out");
      for (const d of [victim, join(victim, "c1"), join(victim, "b"), join(victim, "o"), join(victim, "exp"), join(victim, "c0"), out]) mkdirSync(d, { recursive: true });
      for (const f of ["metrics.jsonl", "loss.svg", "c1/adapter_model.safetensors", "b/x", "o/y", "exp/adapter_config.json", "c0/trainer_state.json"]) writeFileSync(join(victim, f), `precious ${f}\n`);
      symlinkSync(join(victim, "c1"), join(out, "checkpoint-1"));
      symlinkSync(join(victim, "c0"), join(out, "checkpoint-0"));
      symlinkSync(join(victim, "metrics.jsonl"), join(out, "metrics.jsonl"));
      symlinkSync(join(victim, "loss.svg"), join(out, "loss.svg"));
      symlinkSync(join(victim, "b"), join(out, "checkpoint-2.pefc-building"));
      symlinkSync(join(victim, "o"), join(out, "checkpoint-3.pefc-old"));
      symlinkSync(join(victim, "exp"), join(work, "exp"));
      const records = ["/etc/passwd", "../../victim/metrics.jsonl", join(victim, "loss.svg"), "..", "C:\\Windows\\system32"].map((p, i) => JSON.stringify({ ask: p, answer: `${p} ${i}` }));
      writeFileSync(join(work, "d.jsonl"), records.join("\n") + "\n");
      writeFileSync(join(work, "run.peft"), `model "builtin:tiny-chatglm2";
data train "d.jsonl" { prompt = ask; response = answer; max_source = 16; max_target = 16; }
lora r=2 alpha=4 on query_key_value;
train { steps = 4; batch = 1; lr = 1e-2; }
save every 1 step to "out" keep 2;
export adapter to "exp";
`);
      const named = (p: string) => p === out || p.startsWith(out + "/") || p === join(work, "exp");
      const before = snapshot(root, named);
      // Without --overwrite the folder is the user's (no pefc marker): refused before any step.
      const refused = await pefc(["run", "--device", "reference", join(work, "run.peft")], { cwd: work, timeoutMs: 120_000 });
      expectThat(refused.code === 1 && /P90[45]/.test(refused.err), `exit ${refused.code}: ${refused.err.slice(0, 400)}`);
      expectThat(!looksLikeTrace(refused.err), refused.err);
      // With it, the links are replaced, never written through.
      const res = await pefc(["run", "--device", "reference", "--overwrite", join(work, "run.peft")], { cwd: work, timeoutMs: 120_000 });
      expectThat(res.code === 0, `exit ${res.code}: ${res.err.slice(0, 400)}`);
      expectThat(!looksLikeTrace(res.err), res.err);
      const after = snapshot(root, named);
      const changed = [...new Set([...before.keys(), ...after.keys()])].filter((p) => before.get(p) !== after.get(p));
      t.add("bytes written outside", changed.length);
      expectThat(changed.length === 0, `outside the named folders, changed: ${changed.join(", ")}`);
      for (const n of readdirSync(out).filter((x) => /^checkpoint-\d+$/.test(x))) expectThat(lstatSync(join(out, n)).isDirectory(), `${n} is still a link`);
      t.add("traps");
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  void o;
  return t;
}
