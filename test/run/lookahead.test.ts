/**
 * The training loop submits the next optimizer step before it awaits this one's loss, except where
 * something after the step reads the trained state (an evaluation or a save): then the step runs
 * alone. Checked with the CPU reference behind a wrapper that counts steps in flight and what was
 * read while any were (must be none); the losses, evaluations and saved adapter must equal those of
 * the reference alone, where each step's work is done by the time step() returns its promise.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import type { MicroBatch, StepOutcome, TrainBackend, TrainSnapshot } from "../../src/runtime/train/backend.js";
import { runTraining, type Reporter } from "../../src/runtime/train/loop.js";
import { ReferenceBackend } from "../../src/runtime/train/reference-backend.js";
import { allParams, prepareSession } from "../../src/runtime/train/session.js";

const dir = mkdtempSync(join(tmpdir(), "pefc-lookahead-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const quiet: Reporter = { step: () => undefined, eval: () => undefined, saved: () => undefined, info: () => undefined };

/** Delegates to the reference; each step stays in flight for a few ms after it computes. */
class Spy implements TrainBackend {
  readonly device = "spy";
  inFlight = 0;
  maxInFlight = 0;
  /** State reads (values, snapshot, evalLoss, rankPattern) made while a step was in flight. */
  readsInFlight = 0;
  constructor(private readonly inner: TrainBackend) {}
  async step(micro: readonly MicroBatch[], lr: number): Promise<StepOutcome> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const out = await this.inner.step(micro, lr);
    await sleep(5);
    this.inFlight--;
    return out;
  }
  private read(): void {
    if (this.inFlight > 0) this.readsInFlight++;
  }
  evalLoss(b: MicroBatch): Promise<number> {
    this.read();
    return this.inner.evalLoss(b);
  }
  values(): Promise<Map<string, Float32Array>> {
    this.read();
    return this.inner.values();
  }
  rankPattern(): Promise<Record<string, boolean[]> | undefined> {
    this.read();
    return this.inner.rankPattern();
  }
  snapshot(): Promise<TrainSnapshot> {
    this.read();
    return this.inner.snapshot();
  }
  restore(s: TrainSnapshot): Promise<void> {
    return this.inner.restore(s);
  }
  dispose(): void {
    this.inner.dispose();
  }
}

const data = resolve("examples/data/instructions.jsonl");

async function run(name: string, spy: boolean): Promise<{ losses: number[]; evals: number[]; adapter: Buffer; backend: Spy | undefined }> {
  const out = join(dir, name, "out");
  const spec = `model "builtin:tiny-llama";
data train "${data}" { prompt = instruction; response = output; max_length = 48; }
data eval { split = 4; }
lora r=4 alpha=8 on q_proj, v_proj;
train { steps = 9; batch = 2; grad_accum = 1; lr = 0.01; eval_every = 4 steps; }
save every 3 steps to "${out}";
`;
  // One file name in two folders: the saved adapter's metadata names the spec file.
  mkdirSync(join(dir, name));
  const file = join(dir, name, "run.peft");
  writeFileSync(file, spec);
  const s = await prepareSession(new TextEncoder().encode(spec), file);
  const ref = new ReferenceBackend(s.trainGraph, s.evalGraph, await allParams(s), s.spec.train.seed);
  const backend = spy ? new Spy(ref) : undefined;
  const r = await runTraining(s, backend ?? ref, quiet);
  return { losses: r.losses, evals: r.evals.map((e) => e.loss), adapter: readFileSync(join(out, "checkpoint-9", "adapter_model.safetensors")), backend };
}

describe("the training loop's lookahead", () => {
  it("keeps two steps in flight between saves and evaluations, and reads state only when none is", async () => {
    const a = await run("spy", true);
    const b = await run("plain", false);
    expect(a.backend!.maxInFlight).toBe(2);
    expect(a.backend!.readsInFlight).toBe(0);
    expect(a.losses).toHaveLength(9);
    expect(a.losses).toEqual(b.losses);
    expect(a.evals).toEqual(b.evals);
    expect(a.adapter.equals(b.adapter)).toBe(true);
  }, 120_000);
});
