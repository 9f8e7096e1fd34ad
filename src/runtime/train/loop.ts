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
import { checkpointSteps, claimRoot, clearEarlierRun } from "../io/outputs.js";
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
  /** Mean of the per-step losses of the `lossSteps` steps since the last log line (metrics.jsonl has each). */
  loss: number;
  lossSteps: number;
  lr: number;
  gradNorm?: number;
  tokens: number;
  /** Over the steps after this invocation's first, which also compiles kernels: NaN until then. */
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
  /** Kernels compiled so far before the first step (from 0 of total to total of total). */
  compiling?(done: number, total: number): void;
}

export interface RunResult {
  steps: number;
  losses: number[];
  evals: EvalLog[];
  saved: string[];
  /** Set when the run stopped early on request: the step it stopped after and the checkpoint saved there, if the spec saves. */
  interrupted?: { step: number; dir?: string };
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
  /** --overwrite: an earlier run's checkpoints in a checkpoint root go once this run's first is saved. */
  overwrite?: boolean;
  /** Aborted: stop after the step in flight, save a checkpoint that resumes, and return. */
  stop?: AbortSignal;
}

export async function runTraining(s: Session, backend: TrainBackend, report: Reporter, opts: RunOptions = {}): Promise<RunResult> {
  const t = s.spec.train;
  const padId = s.tokenizer?.padId ?? 0;
  const total = s.totalSteps;
  const from = opts.resume;
  const result: RunResult = { steps: from?.step ?? 0, losses: [...(from?.losses ?? [])], evals: [...(from?.evals ?? [])], saved: [] };
  const started = Date.now();
  // Rates count from the end of this invocation's first step: that one also compiles the kernels.
  let timedFrom = 0;
  let timedTokens = 0;
  let tokens = 0;
  let windowLoss = 0;
  let windowSteps = 0;
  const claimed = new Set<string>();
  const stopping = () => opts.stop?.aborted === true;

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
    const first = !claimed.has(root);
    if (first) await claimRoot(root, resolve(s.spec.file));
    claimed.add(root);
    await save(join(root, `checkpoint-${step}`), step, position);
    if (first && opts.overwrite && !from) await clearEarlierRun(root, step);
    if (sv.keep !== undefined) await rotate(root, sv.keep, step);
    await writeMetrics(root, result, s);
    return join(root, `checkpoint-${step}`);
  };
  /** Where an interrupted run leaves a checkpoint that resumes: the first checkpoint root, else the first final save folder. */
  const saveInterrupted = async (step: number, position: TrainerPosition): Promise<string | undefined> => {
    const periodicSave = s.spec.save.find((x) => x.every);
    if (periodicSave) {
      const dir = join(resolve(s.baseDir, periodicSave.dir), `checkpoint-${step}`);
      return result.saved.includes(dir) ? dir : await periodic(periodicSave, step, position);
    }
    const once = s.spec.save.find((x) => !x.every);
    if (!once) return undefined;
    const root = resolve(s.baseDir, once.dir);
    await save(root, step, position);
    await writeMetrics(root, result, s);
    return root;
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
      if (g + 1 < groups.length && stepNo < total && !needsState(s, stepNo, epochEnded) && !stopping()) {
        pending = backend.step(groups[g + 1]!, lrAt(t, stepNo, total));
        // Should this step fail first, the next one's failure is not also reported as unhandled.
        pending.catch(() => undefined);
      }
      const out = await current;
      const bad = nonFiniteOutcome(out);
      if (bad) throw nonFiniteStop(s.spec, stepNo, bad, lr, lastGood, from !== undefined);
      result.steps++;
      result.losses.push(out.loss);
      const groupTokens = group.reduce((a, m) => a + m.tokens, 0);
      tokens += groupTokens;
      windowLoss += out.loss;
      windowSteps++;
      const step = result.steps;
      const now = Date.now();
      const elapsed = (now - started) / 1000;
      const stepsHere = step - (from?.step ?? 0);
      if (stepsHere === 1) timedFrom = now;
      else timedTokens += groupTokens;
      const timed = Math.max((now - timedFrom) / 1000, 1e-9);
      if (due(t.logEvery, step, epochEnded) || step === total || stepsHere === 1) {
        report.step({
          step, totalSteps: total, epoch: epoch + (g + 1) / groups.length, loss: windowLoss / windowSteps, lossSteps: windowSteps, lr,
          ...(out.gradNorm !== undefined ? { gradNorm: out.gradNorm } : {}),
          tokens,
          tokensPerSecond: stepsHere > 1 ? timedTokens / timed : NaN,
          elapsed,
          eta: stepsHere > 1 ? (timed / (stepsHere - 1)) * (total - step) : NaN,
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
      // Let a signal's handler run: a CPU backend's steps never wait on I/O of their own.
      if (opts.stop) await new Promise((r) => setImmediate(r));
      // A stop request waits for the step already submitted, so the checkpoint is of a whole step.
      if (stopping() && !pending && !last) {
        const dir = await saveInterrupted(step, position);
        result.interrupted = dir ? { step, dir } : { step };
        return result;
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
/**
 * Keeps the newest `keep` checkpoint-N folders of this run under `root`: those up to `step`, the
 * one just written always among them. Folders past `step` (left by a run that went further before
 * this one resumed from an earlier checkpoint) are not this run's to count or delete. A folder is
 * renamed out of the checkpoint-N namespace before it is deleted, so a crash mid-delete never
 * leaves a half-deleted checkpoint-N that looks resumable; leftovers of such a crash are deleted
 * on the next rotation.
 */
async function rotate(root: string, keep: number, step: number): Promise<void> {
  for (const n of (await readdir(root)).filter((x) => x.endsWith(DELETING))) await rm(join(root, n), { recursive: true, force: true });
  const mine = checkpointSteps(root).filter((n) => n <= step && n !== step);
  for (const n of mine.slice(0, Math.max(0, mine.length - (keep - 1)))) {
    const doomed = join(root, `checkpoint-${n}${DELETING}`);
    await rename(join(root, `checkpoint-${n}`), doomed);
    await rm(doomed, { recursive: true, force: true });
  }
}
const DELETING = ".pefc-deleting";
