/**
 * Family "specs": damaged copies of every example and golden spec, checked in a worker process
 * (fixed seed, then a random one), and a sample through the real `pefc check`. Each case must end
 * in coded diagnostics at file:line:col, or a clean check; never a throw, a hang or growing memory.
 */
import { fork } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { looksLikeTrace, pefc } from "./lib/pefc.js";
import { randomSeed, type FaultOptions } from "./lib/options.js";
import { specSources } from "./lib/spec-sources.js";
import { Tally } from "./lib/tally.js";
import { specCase } from "./specs-cases.js";
import type { WorkerMessage } from "./specs-worker.js";

export const FIXED_SEED = 1;
/** A case that takes longer than this is a hang (typical cases take about a millisecond). */
const CASE_LIMIT_MS = 10_000;
/** Heap growth from the first thousand cases to the last that counts as a leak. */
const HEAP_GROWTH_LIMIT = 64 << 20;

/** Across the worker ranges of one run: the slowest case and the largest heap growth. */
const stats = { slowest: { ms: 0, what: "" }, heapGrowth: 0 };

const replay = (seed: number, i: number) => `npm run faults -- --only specs --seed ${seed} --case ${i}`;

interface Range {
  seed: number;
  from: number;
  to: number;
}

/** Runs cases [from, to) of `seed` in worker processes, restarting past a case that hangs or kills the worker. */
async function runRange(t: Tally, r: Range): Promise<void> {
  let next = r.from;
  const heaps: number[] = [];
  const slowest = { ms: 0, i: -1 };
  while (next < r.to) {
    next = await new Promise<number>((done) => {
      const child = fork(resolve("faults/specs-worker.ts"), [String(r.seed), String(next), String(r.to)], {
        execArgv: ["--import", "tsx", "--expose-gc", "--stack-size=984"],
        stdio: ["ignore", "inherit", "pipe", "ipc"],
      });
      let current = next;
      let ended = false;
      let stderr = "";
      child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
      let timer: NodeJS.Timeout | undefined;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          t.fail(`specs seed ${r.seed} case ${current}`, `no answer within ${CASE_LIMIT_MS / 1000} s`, replay(r.seed, current), "hangs");
          child.kill("SIGKILL");
        }, CASE_LIMIT_MS);
      };
      child.on("message", (m: WorkerMessage) => {
        if (m.type === "start") {
          current = m.i;
          t.tried++;
          arm();
        } else if (m.type === "done") {
          t.add(m.clean ? "clean" : "diagnosed");
          if (m.ms > slowest.ms) Object.assign(slowest, { ms: m.ms, i: m.i });
        } else if (m.type === "fail") {
          t.fail(`specs seed ${r.seed} case ${m.i} (${m.mutation})`, `${m.why}\n  input saved as ${m.saved}`, replay(r.seed, m.i), "crashes");
        } else if (m.type === "heap") {
          heaps.push(m.bytes);
        } else if (m.type === "end") {
          ended = true;
        }
      });
      child.on("exit", (code, signal) => {
        clearTimeout(timer);
        if (ended) return done(r.to);
        if (signal !== "SIGKILL") {
          t.fail(`specs seed ${r.seed} case ${current}`, `the checker's process died (${signal ?? `exit ${code}`}): ${stderr.trim().split("\n").slice(-3).join(" | ")}`, replay(r.seed, current), "crashes");
        }
        done(current + 1);
      });
    });
  }
  if (slowest.ms > stats.slowest.ms) stats.slowest = { ms: slowest.ms, what: `seed ${r.seed} case ${slowest.i}` };
  if (heaps.length >= 3) {
    const growth = heaps[heaps.length - 1]! - heaps[0]!;
    if (growth > HEAP_GROWTH_LIMIT) t.fail(`specs seed ${r.seed}`, `heap grew ${(growth / 2 ** 20).toFixed(0)} MiB over ${r.to - r.from} cases`, replay(r.seed, r.from), "memory growth");
    stats.heapGrowth = Math.max(stats.heapGrowth, growth);
  }
}

/** A sample through `node bin/pefc.js check`: exit 0 or 1, errors at file:line:col, no stack trace. */
async function throughCli(t: Tally, seed: number, count: number): Promise<void> {
  const sources = specSources();
  const dir = mkdtempSync(join(tmpdir(), "pefc-faults-cli-"));
  try {
    const one = async (i: number) => {
      const c = specCase(sources, seed, i);
      const file = join(dir, `${i}-${basename(c.source.file)}`);
      writeFileSync(file, c.bytes);
      await t.case(`specs via CLI seed ${seed} case ${i}`, `${replay(seed, i)} (then: node bin/pefc.js check ${file})`, async () => {
        const res = await pefc(["check", file], { cwd: dir, timeoutMs: 30_000 });
        t.add("cli runs");
        const where = `exit ${res.code ?? res.signal}; stderr: ${res.err.slice(0, 400)}`;
        if (res.timedOut) return t.fail(`specs via CLI case ${i}`, "pefc check did not finish in 30 s", replay(seed, i), "hangs");
        if (res.code !== 0 && res.code !== 1) return t.fail(`specs via CLI case ${i}`, where, replay(seed, i), "crashes");
        if (looksLikeTrace(res.err + res.out)) return t.fail(`specs via CLI case ${i}`, `stack trace printed: ${where}`, replay(seed, i), "crashes");
        const located = new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:\\d+:\\d+: error P\\d{3}: `, "m");
        if (res.code === 1 && !located.test(res.err)) t.fail(`specs via CLI case ${i}`, `exit 1 without file:line:col error: ${where}`, replay(seed, i));
      });
    };
    for (let i = 0; i < count; i += 2) await Promise.all([one(i), ...(i + 1 < count ? [one(i + 1)] : [])]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function specsFamily(o: FaultOptions): Promise<Tally> {
  const t = new Tally("specs");
  t.zero("crashes", "hangs", "memory growth");
  if (o.case !== undefined) {
    const seed = o.seed ?? FIXED_SEED;
    await runRange(t, { seed, from: o.case, to: o.case + 1 });
    await throughCliOne(t, seed, o.case);
    return t;
  }
  const random = o.seed ?? randomSeed();
  const fixedCases = o.quick ? 1000 : (o.cases ?? 8_000);
  const randomCases = o.quick ? 500 : (o.cases ?? 2_000);
  // Two workers at a time: CI machines have two cores, and the cases are independent.
  const halves = (seed: number, n: number): Range[] => [{ seed, from: 0, to: n >> 1 }, { seed, from: n >> 1, to: n }];
  if (o.seed === undefined) await Promise.all(halves(FIXED_SEED, fixedCases).map((r) => runRange(t, r)));
  await Promise.all(halves(random, randomCases).map((r) => runRange(t, r)));
  await throughCli(t, random, o.quick ? 10 : 30);
  t.notes.push(`slowest case ${stats.slowest.ms.toFixed(0)} ms (${stats.slowest.what}), heap growth across a worker ≤ ${(stats.heapGrowth / 2 ** 20).toFixed(1)} MiB`);
  t.notes.push(o.seed === undefined ? `seeds ${FIXED_SEED} ×${fixedCases} and ${random} ×${randomCases}` : `seed ${random} ×${randomCases}`);
  return t;
}

async function throughCliOne(t: Tally, seed: number, i: number): Promise<void> {
  const sources = specSources();
  const c = specCase(sources, seed, i);
  const dir = mkdtempSync(join(tmpdir(), "pefc-faults-replay-"));
  const file = join(dir, basename(c.source.file));
  writeFileSync(file, c.bytes);
  const res = await pefc(["check", file], { cwd: dir, timeoutMs: 30_000 });
  console.log(`replay of seed ${seed} case ${i} (${c.mutation} on ${c.source.file}), kept at ${file}:\n  pefc check: exit ${res.code}\n${(res.err + res.out).split("\n").slice(0, 10).map((l) => `  ${l}`).join("\n")}`);
}
