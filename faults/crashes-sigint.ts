/**
 * Ctrl-C, part of family "crashes": `node bin/pefc.js run` sent SIGINT at random moments, some
 * anywhere in a step, others while a checkpoint is being written (a save's sidecar is on disk when
 * the signal goes). Each interrupted run must exit 130 printing the checkpoint it saved and the
 * --resume command; every checkpoint folder then loads whole and no partial file is left. The run
 * is resumed with the printed command, interrupted again, and so on; its last checkpoint must be
 * the same bytes as an uninterrupted run's. On the CPU reference, and once on llvmpipe, where
 * `pefc run` trains in a child process behind the stderr filter, which passes the signal on.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { int, rng, type Rng } from "./lib/rng.js";
import { randomSeed, type FaultOptions } from "./lib/options.js";
import { looksLikeTrace, pefc, type CliResult } from "./lib/pefc.js";
import { loadWhole } from "./lib/load-whole.js";
import { CaseFailure, expectThat, type Tally } from "./lib/tally.js";

const DATA = resolve("examples/data/medical.jsonl");
const spec = (steps: number) => `model "builtin:tiny-chatglm2";
data train "${DATA}" { prompt = ask; response = answer; max_source = 16; max_target = 16; }
adalora r=2 alpha=8 dropout=0.1 on query_key_value { init_r = 4; tinit = 2; tfinal = 2; delta_t = 2; }
train { steps = ${steps}; batch = 2; grad_accum = 2; lr = 0.01; optimizer = adamw; weight_decay = 0.01; }
save every 3 step to "out" keep 2;
`;
const FILES = ["adapter_model.safetensors", "adapter_config.json", "trainer_tensors.safetensors", "trainer_state.json"];
const SIDECAR = /\.pefc-(building|ready|old|deleting)$|\.tmp$/;
const STOPPED = /interrupted after step (\d+) of (\d+): saved (.+)\nto continue: pefc run (.+) --resume (.+)\n/;
/** Training has begun (so the stop handler is installed): a progress line, or a resume's first line. */
const TRAINING = /^(step \d+\/|resuming at step )/m;

const checkpoints = (out: string): number[] =>
  existsSync(out) ? readdirSync(out).map((n) => /^checkpoint-(\d+)$/.exec(n)?.[1]).filter((x) => x !== undefined).map(Number).sort((a, b) => a - b) : [];

function sidecars(out: string): string[] {
  try {
    const top = readdirSync(out);
    return [...top.filter((n) => SIDECAR.test(n)), ...top.filter((n) => /^checkpoint-\d+$/.test(n)).flatMap((c) => readdirSync(join(out, c)).filter((n) => SIDECAR.test(n)))];
  } catch {
    return [];
  }
}

type Moment = "step" | "save";

/**
 * Runs `args` and sends one SIGINT: "step", a random delay after training begins; "save", as soon
 * as a save's sidecar appears. Says whether a save was in progress when the signal went.
 */
async function interrupted(args: string[], cwd: string, out: string, r: Rng, moment: Moment, maxDelayMs: number): Promise<{ res: CliResult; midSave: boolean; sent: boolean }> {
  let midSave = false;
  let sent = false;
  let armed = false;
  let poll: NodeJS.Timeout | undefined;
  const send = (child: import("node:child_process").ChildProcess) => {
    if (sent || child.exitCode !== null) return;
    sent = true;
    midSave = sidecars(out).length > 0;
    child.kill("SIGINT");
  };
  const res = await pefc(args, {
    cwd,
    timeoutMs: 180_000,
    onOut: (chunk, child) => {
      if (armed || !TRAINING.test(chunk)) return;
      armed = true;
      if (moment === "step") {
        setTimeout(() => send(child), int(r, 0, maxDelayMs));
        return;
      }
      const started = Date.now();
      poll = setInterval(() => {
        if (sent || child.exitCode !== null) return clearInterval(poll);
        if (sidecars(out).length > 0 || Date.now() - started > 4_000) send(child);
      }, 1);
    },
  });
  clearInterval(poll);
  return { res, midSave, sent };
}

/** What an interrupted run must have done; returns the checkpoint it names, to resume from. */
async function checkStopped(res: CliResult, specFile: string, out: string, total: number, after: number): Promise<string> {
  const text = res.out + res.err;
  const said = `exit ${res.code}${res.signal ? ` (${res.signal})` : ""}; ${text.trim().split("\n").slice(-4).join(" | ").slice(0, 600)}`;
  expectThat(!looksLikeTrace(text), `stack trace: ${said}`);
  expectThat(res.code === 130, `an interrupted run should exit 130: ${said}`);
  const m = STOPPED.exec(text);
  expectThat(m, `no "interrupted after step k of N: saved DIR" and "to continue: pefc run FILE --resume DIR": ${said}`);
  const [, k, n, dir, file, resumeDir] = m;
  expectThat(Number(n) === total, `says ${n} steps, the run makes ${total}`);
  expectThat(Number(k) > after, `stopped after step ${k}, but it resumed at step ${after}`);
  expectThat(dir === join(out, `checkpoint-${k}`), `saved ${dir}, expected ${join(out, `checkpoint-${k}`)}`);
  expectThat(resumeDir === dir && file === specFile, `the command to continue is not this run's: pefc run ${file} --resume ${resumeDir}`);
  await loadWhole(dir!, Number(k));
  return dir!;
}

async function checkOut(out: string): Promise<void> {
  for (const c of checkpoints(out)) await loadWhole(join(out, `checkpoint-${c}`), c);
  const stray = sidecars(out);
  expectThat(stray.length === 0, `a stopped run left partial files: ${stray.join(", ")}`);
}

function sameEnd(fullOut: string, out: string, steps: number, what: string): void {
  const end = join(out, `checkpoint-${steps}`);
  expectThat(existsSync(end), `${what}: never reached step ${steps}`);
  for (const f of FILES) {
    expectThat(readFileSync(join(fullOut, `checkpoint-${steps}`, f)).equals(readFileSync(join(end, f))), `${what}: ${f} differs from the uninterrupted run's`);
  }
}

/** The reference chain: at least `signals` stops, each resumed by the command it printed. */
async function referenceChain(t: Tally, root: string, seed: number, signals: number, verbose: boolean): Promise<void> {
  const steps = 30;
  const full = join(root, "full");
  const chain = join(root, "stopped");
  for (const d of [full, chain]) {
    mkdirSync(d);
    writeFileSync(join(d, "run.peft"), spec(steps));
  }
  const device = ["--device", "reference"];
  const whole = await pefc(["run", ...device, join(full, "run.peft")], { cwd: full, timeoutMs: 180_000 });
  if (whole.code !== 0) throw new CaseFailure(`the uninterrupted run failed: ${whole.err}`);
  const r = rng(seed);
  const out = join(chain, "out");
  const specFile = join(chain, "run.peft");
  let from: string | undefined;
  let at = 0;
  let landed = 0;
  for (let attempt = 0; attempt < signals * 3; attempt++) {
    const args = ["run", ...device, specFile, ...(from ? ["--resume", from] : [])];
    if (landed >= signals) {
      const res = await pefc(args, { cwd: chain, timeoutMs: 180_000 });
      expectThat(res.code === 0, `the last resumed run failed: exit ${res.code}: ${res.err.slice(0, 400)}`);
      break;
    }
    const moment: Moment = r() < 0.5 ? "save" : "step";
    const { res, midSave, sent } = await interrupted(args, chain, out, r, moment, 400);
    if (res.code === 0) {
      // The signal came during the last step (which finishes the run) or never went.
      t.add("signals at the end");
      break;
    }
    expectThat(sent, `the run ended before a signal was sent: exit ${res.code}: ${res.err.slice(0, 400)}`);
    from = await checkStopped(res, specFile, out, steps, at);
    at = Number(/checkpoint-(\d+)$/.exec(from)![1]);
    landed++;
    if (verbose) console.log(`  SIGINT (${moment}${midSave ? ", a save in progress" : ""}): stopped after step ${at}`);
    t.add("SIGINT stops");
    if (moment === "save" && midSave) t.add("stops mid-save");
    await checkOut(out);
  }
  await checkOut(out);
  sameEnd(join(full, "out"), out, steps, `after ${landed} stops`);
  expectThat(landed >= signals, `only ${landed} signals stopped the run (wanted ${signals})`);
}

/** One stop on llvmpipe: the signal goes to the parent process, which filters the child's stderr. */
async function llvmpipeStop(t: Tally, root: string, seed: number): Promise<void> {
  const steps = 12;
  const full = join(root, "gpu-full");
  const chain = join(root, "gpu-stopped");
  for (const d of [full, chain]) {
    mkdirSync(d);
    writeFileSync(join(d, "run.peft"), spec(steps).replace("tinit = 2; tfinal = 2;", "tinit = 1; tfinal = 1;"));
  }
  const whole = await pefc(["run", join(full, "run.peft")], { cwd: full, timeoutMs: 180_000 });
  if (whole.code !== 0) throw new CaseFailure(`the uninterrupted llvmpipe run failed: exit ${whole.code}: ${whole.err.slice(-400)}`);
  const r = rng(seed ^ 0x5157);
  const specFile = join(chain, "run.peft");
  const out = join(chain, "out");
  let res: CliResult | undefined;
  for (let tries = 0; tries < 3; tries++) {
    rmSync(out, { recursive: true, force: true });
    res = // llvmpipe's steps of this model take some 20 ms: a signal much later would find the run over.
    res = (await interrupted(["run", specFile], chain, out, r, r() < 0.5 ? "save" : "step", 60)).res;
    if (res.code !== 0) break;
    t.add("signals at the end");
  }
  const dir = await checkStopped(res!, specFile, out, steps, 0);
  await checkOut(out);
  const resumed = await pefc(["run", specFile, "--resume", dir], { cwd: chain, timeoutMs: 180_000 });
  expectThat(resumed.code === 0, `the resumed llvmpipe run failed: exit ${resumed.code}: ${resumed.err.slice(-400)}`);
  sameEnd(join(full, "out"), out, steps, "llvmpipe, after a stop");
  t.add("SIGINT stops");
}

export async function sigintCases(t: Tally, o: FaultOptions): Promise<void> {
  t.zero("SIGINT stops", "stops mid-save");
  const root = mkdtempSync(join(tmpdir(), "pefc-faults-sigint-"));
  const seed = o.seed ?? randomSeed();
  const signals = o.quick ? 3 : 6;
  try {
    await t.case(`SIGINT chain on the reference, seed ${seed}`, `npm run faults -- --only crashes --seed ${seed}`, () => referenceChain(t, root, seed, signals, o.verbose));
    await t.case(`SIGINT on llvmpipe through the stderr filter, seed ${seed}`, `npm run faults -- --only crashes --seed ${seed}`, () => llvmpipeStop(t, root, seed));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  t.notes.push(`SIGINT seed ${seed}`);
}
