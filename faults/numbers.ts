/**
 * Family "numbers": NaN and infinite values mid-run. In-process, a run on the CPU reference whose
 * parameters are poisoned before step k (as an overflow or a bad input would), or whose backend
 * reports a non-finite gradient norm, must stop at step k with P703 naming that step and the last
 * good checkpoint, write nothing of step k, and leave every earlier checkpoint loadable and finite.
 * Through `pefc run`, an adapter to start from that holds NaN stops the run at step 1.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DiagnosticsError, formatDiagnostic } from "../src/diagnostics/index.js";
import { openSafetensorsFile } from "../src/runtime/io/index.js";
import { adaloraAllocation } from "../src/runtime/train/adalora.js";
import type { MicroBatch, StepOutcome, TrainBackend, TrainSnapshot } from "../src/runtime/train/backend.js";
import { readTrainerFiles } from "../src/runtime/train/checkpoint.js";
import { runTraining, type Reporter } from "../src/runtime/train/loop.js";
import { ReferenceBackend } from "../src/runtime/train/reference-backend.js";
import { allParams, prepareSession } from "../src/runtime/train/session.js";
import type { FaultOptions } from "./lib/options.js";
import { looksLikeTrace, pefc } from "./lib/pefc.js";
import { joinSafetensors, splitSafetensors, tensorNames, type RawEntry } from "./lib/safetensors-bytes.js";
import { expectThat, Tally } from "./lib/tally.js";

const DATA = resolve("examples/data/medical.jsonl");
const spec = (method: string, steps: number, extra = "") => `model "builtin:tiny-chatglm2";
data train "${DATA}" { prompt = ask; response = answer; max_source = 16; max_target = 16; }
${method}
train { steps = ${steps}; batch = 2; lr = 1e-2; optimizer = adamw; ${extra} }
save every 1 step to "out";
`;

type Poison = "NaN" | "+Inf" | "-Inf" | "grad NaN";
const VALUE: Record<Exclude<Poison, "grad NaN">, number> = { NaN: Number.NaN, "+Inf": Number.POSITIVE_INFINITY, "-Inf": Number.NEGATIVE_INFINITY };

/** The reference backend, with parameters poisoned just before step `at` (1-based), or its gradient norm reported as NaN there. */
class Poisoned implements TrainBackend {
  private steps = 0;
  constructor(private readonly inner: TrainBackend, private readonly at: number, private readonly how: Poison) {}
  get device(): string {
    return this.inner.device;
  }
  async step(micro: readonly MicroBatch[], lr: number): Promise<StepOutcome> {
    this.steps++;
    if (this.steps === this.at && this.how !== "grad NaN") {
      const snap = await this.inner.snapshot();
      // Every trained value: a lone poisoned entry can be masked out (AdaLoRA's pruned ranks, dropout).
      for (const v of snap.params.values()) v.fill(VALUE[this.how]);
      await this.inner.restore(snap);
    }
    const out = await this.inner.step(micro, lr);
    return this.steps === this.at && this.how === "grad NaN" ? { ...out, gradNorm: Number.NaN } : out;
  }
  evalLoss = (b: MicroBatch) => this.inner.evalLoss(b);
  values = () => this.inner.values();
  rankPattern = () => this.inner.rankPattern();
  snapshot = (): Promise<TrainSnapshot> => this.inner.snapshot();
  restore = (s: TrainSnapshot) => this.inner.restore(s);
  dispose = () => this.inner.dispose();
}

const quiet: Reporter = { step: () => undefined, eval: () => undefined, saved: () => undefined, info: () => undefined };

async function poisonedRun(t: Tally, root: string, method: string, at: number, how: Poison): Promise<void> {
  const name = `${method.split(" ")[0]} poisoned (${how}) before step ${at}`;
  await t.case(`numbers: ${name}`, `npm run faults -- --only numbers (case "${name}")`, async () => {
    const dir = join(root, `${t.tried}`);
    mkdirSync(dir);
    const file = join(dir, "run.peft");
    const text = spec(method, at + 2, how === "grad NaN" ? "clip = 1.0;" : "");
    writeFileSync(file, text);
    const s = await prepareSession(new TextEncoder().encode(text), file);
    const inner = new ReferenceBackend(s.trainGraph, s.evalGraph, await allParams(s), s.spec.train.seed, adaloraAllocation(s));
    let stopped: DiagnosticsError | undefined;
    try {
      await runTraining(s, new Poisoned(inner, at, how), quiet);
    } catch (e) {
      if (!(e instanceof DiagnosticsError)) throw e;
      stopped = e;
    }
    expectThat(stopped, "the run went on past a non-finite step");
    const d = stopped.diagnostics[0]!;
    const line = formatDiagnostic(d);
    expectThat(d.code === "P703", `stopped with ${line}`);
    expectThat(line.startsWith(`${file}:`) && d.span, `no file:line:col: ${line}`);
    expectThat(line.includes(`step ${at}:`), `does not name step ${at}: ${line}`);
    const out = join(dir, "out");
    const ckpts = existsSync(out) ? readdirSync(out).filter((n) => /^checkpoint-\d+$/.test(n)) : [];
    expectThat(!ckpts.includes(`checkpoint-${at}`), `checkpoint-${at} was written from the bad step`);
    expectThat(ckpts.length === at - 1, `expected ${at - 1} good checkpoints, found ${ckpts.join(", ")}`);
    if (at > 1) expectThat(line.includes(`checkpoint-${at - 1}`) && d.help?.includes("--resume"), `does not name the last good checkpoint: ${line} / ${d.help}`);
    else expectThat(line.includes("no checkpoint had been saved"), `says nothing of checkpoints: ${line}`);
    expectThat(d.help?.includes("lr"), `says nothing of what to try: ${d.help}`);
    for (const c of ckpts) {
      const { state } = await readTrainerFiles(join(out, c));
      expectThat(`checkpoint-${state.step}` === c, `${c} holds step ${state.step}`);
      const st = await openSafetensorsFile(join(out, c, "adapter_model.safetensors"));
      for (const n of st.tensors.keys()) expectThat((await st.readF32(n)).every(Number.isFinite), `${c}/${n} holds non-finite values`);
    }
    t.add("stopped at the step");
  });
}

/** An adapter to start from that holds NaN: `pefc run` stops at step 1 and writes nothing. */
async function nanAdapterThroughCli(t: Tally, root: string): Promise<void> {
  await t.case("numbers: init from an adapter holding NaN, through pefc run", "npm run faults -- --only numbers", async () => {
    const dir = join(root, "cli");
    mkdirSync(dir);
    const method = "lora r=2 alpha=4 on query_key_value;";
    writeFileSync(join(dir, "first.peft"), spec(method, 1).replace('save every 1 step to "out";', 'save to "start";'));
    const first = await pefc(["run", "--device", "reference", join(dir, "first.peft")], { cwd: dir });
    expectThat(first.code === 0, `could not make the starting adapter: ${first.err}`);
    const file = join(dir, "start", "adapter_model.safetensors");
    const f = splitSafetensors(readFileSync(file));
    const name = tensorNames(f).find((n) => n.includes("lora_A"))!;
    const [a, b] = (f.header[name] as RawEntry).data_offsets as [number, number];
    new Float32Array(f.data.buffer, f.data.byteOffset + a, (b - a) / 4).fill(Number.NaN);
    writeFileSync(file, joinSafetensors(f.header, f.data));
    writeFileSync(join(dir, "run.peft"), spec(method, 3).replace("save every", 'init from "start";\nsave every'));
    const res = await pefc(["run", "--device", "reference", join(dir, "run.peft")], { cwd: dir });
    expectThat(res.code === 1, `exit ${res.code}: ${res.err}`);
    expectThat(!looksLikeTrace(res.err), `stack trace: ${res.err}`);
    expectThat(new RegExp(`run\\.peft:\\d+:\\d+: error P703: training stopped at step 1`).test(res.err), `no P703 at step 1: ${res.err}`);
    expectThat(!existsSync(join(dir, "out", "checkpoint-1")), "a checkpoint was written from the NaN step");
    t.add("stopped at the step");
  });
}

export async function numbersFamily(o: FaultOptions): Promise<Tally> {
  const t = new Tally("numbers");
  t.zero("crashes", "hangs");
  const root = mkdtempSync(join(tmpdir(), "pefc-faults-numbers-"));
  try {
    const methods = ["lora r=2 alpha=4 dropout=0.1 on query_key_value;", "ia3 on query_key_value, dense_4h_to_h;", "adalora r=2 alpha=8 on query_key_value { init_r = 4; tinit = 1; tfinal = 1; delta_t = 1; }"];
    const poisons: Poison[] = ["NaN", "+Inf", "-Inf", "grad NaN"];
    let k = 0;
    for (const m of methods) for (const p of poisons) await poisonedRun(t, root, m, 1 + (k++ % 3), p);
    if (!o.quick) await nanAdapterThroughCli(t, root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return t;
}
