/**
 * Family "crashes": `pefc run` killed with SIGKILL at random moments (some right after a save
 * starts, others anywhere in a step), then resumed from the newest checkpoint, again and again:
 * after every kill each checkpoint folder present must load whole, and the run's final
 * checkpoint must be the same bytes as an uninterrupted run's. Then a full disk (a small tmpfs
 * mounted by the suite) during a save: the run exits 1 saying so, and the previous checkpoints
 * are untouched (same folder, same bytes), with no partial files left behind.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { sigintCases } from "./crashes-sigint.js";
import { int, rng, type Rng } from "./lib/rng.js";
import { randomSeed, type FaultOptions } from "./lib/options.js";
import { looksLikeTrace, pefc } from "./lib/pefc.js";
import { loadWhole } from "./lib/load-whole.js";
import { CaseFailure, expectThat, Tally } from "./lib/tally.js";

const DATA = resolve("examples/data/medical.jsonl");
const spec = (steps: number, every: number, keep = "") => `model "builtin:tiny-chatglm2";
data train "${DATA}" { prompt = ask; response = answer; max_source = 16; max_target = 16; }
adalora r=2 alpha=8 dropout=0.1 on query_key_value { init_r = 4; tinit = 2; tfinal = 2; delta_t = 2; }
train { steps = ${steps}; batch = 2; grad_accum = 2; lr = 0.01; optimizer = adamw; weight_decay = 0.01; }
save every ${every} step to "out"${keep};
`;
const FILES = ["adapter_model.safetensors", "adapter_config.json", "trainer_tensors.safetensors", "trainer_state.json"];
const SIDECAR = /\.pefc-(building|ready|old|deleting)$|\.tmp$/;

const checkpoints = (out: string): number[] =>
  existsSync(out) ? readdirSync(out).map((n) => /^checkpoint-(\d+)$/.exec(n)?.[1]).filter((x) => x !== undefined).map(Number).sort((a, b) => a - b) : [];

function treeBytes(p: string): number {
  const st = statSync(p);
  return st.isDirectory() ? readdirSync(p).reduce((a, n) => a + treeBytes(join(p, n)), 0) : st.size;
}

async function killChain(t: Tally, root: string, seed: number, kills: number): Promise<void> {
  const steps = 48;
  const full = join(root, "full");
  const chain = join(root, "killed");
  for (const d of [full, chain]) {
    mkdirSync(d);
    writeFileSync(join(d, "run.peft"), spec(steps, 1, " keep 3"));
  }
  const whole = await pefc(["run", "--device", "reference", join(full, "run.peft")], { cwd: full, timeoutMs: 300_000 });
  if (whole.code !== 0) throw new CaseFailure(`the uninterrupted run failed: ${whole.err}`);
  const r: Rng = rng(seed);
  const out = join(chain, "out");
  let killed = 0;
  let midSave = 0;
  let attempt = 0;
  for (; attempt < kills * 4; attempt++) {
    const have = checkpoints(out);
    const last = have[have.length - 1];
    if (last === steps) break;
    const args = ["run", "--device", "reference", join(chain, "run.peft"), ...(last !== undefined ? ["--resume", join(out, `checkpoint-${last}`)] : [])];
    const stopAfter = killed < kills ? { saves: int(r, 1, 2), delay: r() < 0.6 ? int(r, 0, 12) : int(r, 0, 150) } : undefined;
    let saves = 0;
    const res = await pefc(args, {
      cwd: chain,
      timeoutMs: 300_000,
      onOut: (chunk, child) => {
        saves += (chunk.match(/^saved /gm) ?? []).length;
        if (stopAfter && saves >= stopAfter.saves && child.exitCode === null && !child.killed) setTimeout(() => child.kill("SIGKILL"), stopAfter.delay);
      },
    });
    if (res.signal === "SIGKILL") {
      killed++;
      t.add("kills survived");
      if (readdirSync(out).some((n) => SIDECAR.test(n)) || checkpoints(out).some((c) => readdirSync(join(out, `checkpoint-${c}`)).some((n) => SIDECAR.test(n)))) midSave++;
    } else if (res.code !== 0) {
      throw new CaseFailure(`attempt ${attempt} (${args.slice(3).join(" ")}) ended with exit ${res.code}: ${res.err.slice(0, 400)}`);
    }
    for (const c of checkpoints(out)) {
      try {
        await loadWhole(join(out, `checkpoint-${c}`), c);
      } catch (e) {
        t.add("bytes lost", treeBytes(join(out, `checkpoint-${c}`)));
        throw e;
      }
    }
  }
  t.add("kills mid-save", midSave);
  const end = join(out, `checkpoint-${steps}`);
  expectThat(existsSync(end), `the killed run never reached step ${steps} in ${attempt} attempts`);
  for (const f of FILES) {
    const a = readFileSync(join(full, "out", `checkpoint-${steps}`, f));
    const b = readFileSync(join(end, f));
    expectThat(a.equals(b), `after ${killed} kills, ${f} differs from the uninterrupted run's`);
  }
  expectThat(killed >= kills, `only ${killed} kills landed (wanted ${kills})`);
}

const hashTree = (dir: string): string => {
  const h = createHash("sha256");
  for (const n of readdirSync(dir).sort()) h.update(n).update(readFileSync(join(dir, n)));
  return h.digest("hex");
};

/** A tmpfs too small for the next save: the save fails by name and the checkpoints already there stay as they were. */
async function fullDisk(t: Tally, root: string, verbose: boolean): Promise<void> {
  const mnt = join(root, "small-disk");
  mkdirSync(mnt);
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt], { stdio: "pipe" });
  } catch (e) {
    t.fail("full disk", `cannot mount a small tmpfs (the full-disk cases need root): ${(e as Error).message.split("\n")[0]}`, "sudo npm run faults -- --only crashes");
    return;
  }
  try {
    for (const replacing of [true, false]) {
      await t.case(`full disk during a save (${replacing ? "replacing a checkpoint" : "a new checkpoint"})`, "npm run faults -- --only crashes", async () => {
        const dir = join(mnt, replacing ? "a" : "b");
        mkdirSync(dir);
        writeFileSync(join(dir, "run.peft"), spec(4, 2).replace("tinit = 2; tfinal = 2;", "tinit = 1; tfinal = 1;"));
        const first = await pefc(["run", "--device", "reference", join(dir, "run.peft")], { cwd: dir, timeoutMs: 120_000 });
        expectThat(first.code === 0, `the run before the disk filled failed: ${first.err}`);
        const out = join(dir, "out");
        if (!replacing) rmSync(join(out, "checkpoint-4"), { recursive: true });
        const before = new Map(checkpoints(out).map((c) => [c, { ino: statSync(join(out, `checkpoint-${c}`)).ino, hash: hashTree(join(out, `checkpoint-${c}`)) }]));
        // Fill the disk to the last byte.
        const filler = join(mnt, "filler");
        try {
          writeFileSync(filler, Buffer.alloc(4 << 20));
        } catch {
          /* ENOSPC: the disk is full, which is the point */
        }
        const res = await pefc(["run", "--device", "reference", join(dir, "run.peft"), "--resume", join(out, "checkpoint-2")], { cwd: dir, timeoutMs: 120_000 });
        rmSync(filler, { force: true });
        if (verbose) console.log(`  full disk: exit ${res.code}: ${res.err.trim()}`);
        expectThat(res.code === 1, `exit ${res.code} on a full disk: ${res.err}`);
        expectThat(!looksLikeTrace(res.err), `stack trace: ${res.err}`);
        expectThat(/no space left/.test(res.err) && /intact/.test(res.err), `does not say the disk is full and the old checkpoint intact: ${res.err}`);
        for (const [c, was] of before) {
          const p = join(out, `checkpoint-${c}`);
          expectThat(existsSync(p), `checkpoint-${c} is gone`);
          const now = { ino: statSync(p).ino, hash: hashTree(p) };
          if (now.hash !== was.hash) t.add("bytes lost", treeBytes(p));
          expectThat(now.ino === was.ino && now.hash === was.hash, `checkpoint-${c} changed`);
          await loadWhole(p, c);
        }
        expectThat(!replacing ? !existsSync(join(out, "checkpoint-4")) : true, "a partial checkpoint-4 was left");
        const stray = readdirSync(out).filter((n) => SIDECAR.test(n));
        expectThat(stray.length === 0, `partial files left behind: ${stray.join(", ")}`);
        t.add("full-disk saves refused");
      });
    }
  } finally {
    execFileSync("umount", [mnt], { stdio: "pipe" });
  }
}

export async function crashesFamily(o: FaultOptions): Promise<Tally> {
  const t = new Tally("crashes");
  t.zero("kills survived", "kills mid-save", "crashes", "hangs", "bytes lost");
  const root = mkdtempSync(join(tmpdir(), "pefc-faults-crash-"));
  const seed = o.seed ?? randomSeed();
  const kills = o.quick ? 5 : 20;
  try {
    await t.case(`SIGKILL chain, seed ${seed}`, `npm run faults -- --only crashes --seed ${seed}`, () => killChain(t, root, seed, kills));
    await fullDisk(t, root, o.verbose);
    await sigintCases(t, o);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  t.notes.push(`kill seed ${seed}`);
  return t;
}
