/**
 * The training loop, whatever device runs the math: epochs of seeded batches grouped into
 * optimizer steps of grad_accum micro-batches (a short last group still steps, as Accelerate does
 * at the end of the data), the learning-rate schedule, logging, evaluation, checkpoints that
 * resume, and the metrics file and loss curve beside them.
 */
import { readdir, rename, rm } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import type { SaveSpec } from "../../check/spec.js";
import { saveAdapter } from "../adapter/index.js";
import { makeBatches, type Batch, type Example } from "../data/index.js";
import { writeFileAtomic } from "../io/atomic.js";
import type { MicroBatch, StepOutcome, TrainBackend } from "./backend.js";
import { STATE_FORMAT, writeTrainerFiles, type TrainerPosition } from "./checkpoint.js";
import { lossCurveSvg } from "./curve.js";
import { nonFiniteOutcome, nonFiniteStop, nonFiniteValue } from "./finite.js";
import { lrAt } from "./schedule.js";
import type { Session } from "./session.js";

export interface StepLog {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  lr: number;
  gradNorm?: number;
  tokens: number;
  tokensPerSecond: number;
  elapsed: number;
  eta: number;
}

export interface EvalLog {
  step: number;
  epoch: number;
  loss: number;
  perplexity: number;
}

export interface Reporter {
  step(s: StepLog): void;
  eval(e: EvalLog): void;
  saved(dir: string, step: number): void;
  info(text: string): void;
}

export interface RunResult {
  steps: number;
  losses: number[];
  evals: EvalLog[];
  saved: string[];
}

export function toMicro(b: Batch): MicroBatch {
  return { inputIds: b.inputIds, labels: b.labels, B: b.size, T: b.length, tokens: b.tokens, lossTokens: b.lossTokens };
}

/** Optimizer-step groups of one epoch. */
export function epochGroups(examples: readonly Example[], s: Session, epoch: number, padId: number): MicroBatch[][] {
  const t = s.spec.train;
  const d = s.spec.data.train!;
  const batches = makeBatches(examples, { batch: t.batch, seed: d.seed, shuffle: d.shuffle, epoch, padId }).map(toMicro);
  const groups: MicroBatch[][] = [];
  for (let i = 0; i < batches.length; i += t.gradAccum) groups.push(batches.slice(i, i + t.gradAccum));
  return groups;
}

async function evaluate(s: Session, backend: TrainBackend, padId: number): Promise<{ loss: number; perplexity: number } | undefined> {
  if (!s.eval || s.eval.length === 0) return undefined;
  const batches = makeBatches(s.eval, { batch: s.spec.train.batch, seed: 0, shuffle: false, epoch: 0, padId }).map(toMicro);
  let sum = 0;
  let count = 0;
  for (const b of batches) {
    if (b.lossTokens === 0) continue;
    sum += (await backend.evalLoss(b)) * b.lossTokens;
    count += b.lossTokens;
  }
  if (count === 0) return undefined;
  const loss = sum / count;
  return { loss, perplexity: Math.exp(loss) };
}

function due(period: { every: number; unit: "steps" | "epochs" }, step: number, epochEnded: number | undefined): boolean {
  if (period.unit === "steps") return step % period.every === 0;
  return epochEnded !== undefined && epochEnded % period.every === 0;
}

/** Whether anything after optimizer step `step` reads the trained state (an evaluation or a save). */
function needsState(s: Session, step: number, epochEnded: number | undefined): boolean {
  return due(s.spec.train.evalEvery, step, epochEnded) || s.spec.save.some((sv) => sv.every && due(sv.every, step, epochEnded));
}

export interface RunOptions {
  /** Where a resumed run picks up (from a checkpoint's trainer_state.json); the backend is restored already. */
  resume?: TrainerPosition;
}

export async function runTraining(s: Session, backend: TrainBackend, report: Reporter, opts: RunOptions = {}): Promise<RunResult> {
  const t = s.spec.train;
  const padId = s.tokenizer?.padId ?? 0;
  const total = s.totalSteps;
  const from = opts.resume;
  const result: RunResult = { steps: from?.step ?? 0, losses: [...(from?.losses ?? [])], evals: [...(from?.evals ?? [])], saved: [] };
  const started = Date.now();
  let tokens = 0;
  let windowLoss = 0;
  let windowSteps = 0;

  let lastGood: string | undefined;
  const save = async (dir: string, step: number, position?: TrainerPosition) => {
    const values = await backend.values();
    const bad = nonFiniteValue(values);
    if (bad) throw nonFiniteStop(s.spec, step, bad, lrAt(t, Math.max(0, step - 1), total), lastGood, from !== undefined);
    const pattern = await backend.rankPattern();
    const snap = position ? await backend.snapshot() : undefined;
    await saveAdapter(dir, {
      spec: s.spec, graph: s.trainGraph, profile: s.profile, values, baseModel: s.spec.model!.source,
      extra: { totalStep: total, ...(pattern ? { rankPattern: pattern } : {}) },
      ...(position && snap ? { also: (tmp: string) => writeTrainerFiles(tmp, { ...position, format: STATE_FORMAT, specFile: basename(s.spec.file), seed: t.seed }, snap) } : {}),
    });
    result.saved.push(dir);
    if (position) lastGood = dir;
    report.saved(dir, step);
  };
  const periodic = async (sv: SaveSpec, step: number, position: TrainerPosition) => {
    const root = resolve(s.baseDir, sv.dir);
    await save(join(root, `checkpoint-${step}`), step, position);
    if (sv.keep !== undefined) await rotate(root, sv.keep);
    await writeMetrics(root, result, s);
  };

  let epoch = from?.epoch ?? 0;
  let firstGroup = from?.group ?? 0;
  for (; result.steps < total; epoch++, firstGroup = 0) {
    const groups = epochGroups(s.train, s, epoch, padId);
    // The step after this one is submitted before this one's loss is awaited, so a device never
    // idles while the host reads a loss and prepares the next batch. Only when nothing at this
    // step needs the device's state after it: an evaluation or a save waits for the step alone.
    let pending: Promise<StepOutcome> | undefined;
    for (let g = firstGroup; g < groups.length && result.steps < total; g++) {
      const group = groups[g]!;
      const lr = lrAt(t, result.steps, total);
      const stepNo = result.steps + 1;
      const epochEnded = g === groups.length - 1 ? epoch + 1 : undefined;
      const current = pending ?? backend.step(group, lr);
      pending = undefined;
      if (g + 1 < groups.length && stepNo < total && !needsState(s, stepNo, epochEnded)) {
        pending = backend.step(groups[g + 1]!, lrAt(t, stepNo, total));
        // Should this step fail first, the next one's failure is not also reported as unhandled.
        pending.catch(() => undefined);
      }
      const out = await current;
      const bad = nonFiniteOutcome(out);
      if (bad) throw nonFiniteStop(s.spec, stepNo, bad, lr, lastGood, from !== undefined);
      result.steps++;
      result.losses.push(out.loss);
      tokens += group.reduce((a, m) => a + m.tokens, 0);
      windowLoss += out.loss;
      windowSteps++;
      const step = result.steps;
      const elapsed = (Date.now() - started) / 1000;
      const stepsHere = step - (from?.step ?? 0);
      if (due(t.logEvery, step, epochEnded) || step === total || stepsHere === 1) {
        report.step({
          step, totalSteps: total, epoch: epoch + (g + 1) / groups.length, loss: windowLoss / windowSteps, lr,
          ...(out.gradNorm !== undefined ? { gradNorm: out.gradNorm } : {}),
          tokens, tokensPerSecond: tokens / Math.max(elapsed, 1e-9), elapsed, eta: (elapsed / stepsHere) * (total - step),
        });
        windowLoss = 0;
        windowSteps = 0;
      }
      const last = step === total;
      if (due(t.evalEvery, step, epochEnded) || (last && t.evalEvery.unit === "epochs" && epochEnded === undefined)) {
        const e = await evaluate(s, backend, padId);
        if (e) {
          const log = { step, epoch: epoch + (g + 1) / groups.length, ...e };
          result.evals.push(log);
          report.eval(log);
        }
      }
      const next = g + 1 < groups.length ? { epoch, group: g + 1 } : { epoch: epoch + 1, group: 0 };
      const position: TrainerPosition = { step, ...next, totalSteps: total, losses: result.losses, evals: result.evals };
      for (const sv of s.spec.save.filter((x) => x.every)) {
        if (due(sv.every!, step, epochEnded) || (last && !result.saved.some((d) => d.endsWith(`checkpoint-${step}`)))) await periodic(sv, step, position);
      }
    }
  }
  for (const sv of s.spec.save.filter((x) => !x.every)) {
    const root = resolve(s.baseDir, sv.dir);
    await save(root, result.steps);
    await writeMetrics(root, result, s);
  }
  for (const e of s.spec.export.filter((x) => x.what === "adapter")) await save(resolve(s.baseDir, e.dir), result.steps);
  return result;
}

/** metrics.jsonl (one line per step and eval) and loss.svg, beside the checkpoints. */
async function writeMetrics(root: string, r: RunResult, s: Session): Promise<void> {
  const lines = [
    ...r.losses.map((loss, i) => JSON.stringify({ step: i + 1, loss })),
    ...r.evals.map((e) => JSON.stringify({ step: e.step, eval_loss: e.loss, perplexity: e.perplexity })),
  ];
  await writeFileAtomic(join(root, "metrics.jsonl"), lines.join("\n") + "\n");
  await writeFileAtomic(join(root, "loss.svg"), lossCurveSvg(r.losses, r.evals, `${basename(s.spec.file)}: loss per optimizer step`));
}

/**
 * Keeps the newest `keep` checkpoint-N folders under `root`. A folder is renamed out of the
 * checkpoint-N namespace before it is deleted, so a crash mid-delete never leaves a half-deleted
 * checkpoint-N that looks resumable; leftovers of such a crash are deleted on the next rotation.
 */
async function rotate(root: string, keep: number): Promise<void> {
  const names = await readdir(root);
  for (const n of names.filter((x) => x.endsWith(DELETING))) await rm(join(root, n), { recursive: true, force: true });
  const entries = names.map((n) => ({ n, step: /^checkpoint-(\d+)$/.exec(n)?.[1] })).filter((x) => x.step !== undefined);
  entries.sort((a, b) => Number(a.step) - Number(b.step));
  for (const e of entries.slice(0, Math.max(0, entries.length - keep))) {
    const doomed = join(root, e.n + DELETING);
    await rename(join(root, e.n), doomed);
    await rm(doomed, { recursive: true, force: true });
  }
}
const DELETING = ".pefc-deleting";
