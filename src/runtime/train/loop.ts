/**
 * The training loop, whatever device runs the math: epochs of seeded batches grouped into
 * optimizer steps of grad_accum micro-batches (a short last group still steps, as Accelerate does
 * at the end of the data), the learning-rate schedule, logging, evaluation and saves.
 */
import { rm, readdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { SaveSpec } from "../../check/spec.js";
import { makeBatches, type Batch, type Example } from "../data/index.js";
import { saveAdapter } from "../adapter/index.js";
import type { MicroBatch, TrainBackend } from "./backend.js";
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

export async function runTraining(s: Session, backend: TrainBackend, report: Reporter): Promise<RunResult> {
  const t = s.spec.train;
  const padId = s.tokenizer?.padId ?? 0;
  const total = s.totalSteps;
  const result: RunResult = { steps: 0, losses: [], evals: [], saved: [] };
  const started = Date.now();
  let tokens = 0;
  let windowLoss = 0;
  let windowSteps = 0;
  const adapterSaves = s.spec.save.filter((x) => x.every);

  const save = async (dir: string, step: number) => {
    const pattern = backend.rankPattern();
    await saveAdapter(dir, {
      spec: s.spec, graph: s.trainGraph, profile: s.profile, values: await backend.values(), baseModel: s.spec.model!.source,
      extra: { totalStep: total, ...(pattern ? { rankPattern: pattern } : {}) },
    });
    result.saved.push(dir);
    report.saved(dir, step);
  };
  const periodic = async (sv: SaveSpec, step: number) => {
    const root = resolve(s.baseDir, sv.dir);
    await save(join(root, `checkpoint-${step}`), step);
    if (sv.keep !== undefined) await rotate(root, sv.keep);
  };

  for (let epoch = 0; result.steps < total; epoch++) {
    const groups = epochGroups(s.train, s, epoch, padId);
    for (let g = 0; g < groups.length && result.steps < total; g++) {
      const group = groups[g]!;
      const lr = lrAt(t, result.steps, total);
      const out = await backend.step(group, lr);
      result.steps++;
      result.losses.push(out.loss);
      tokens += group.reduce((a, m) => a + m.tokens, 0);
      windowLoss += out.loss;
      windowSteps++;
      const step = result.steps;
      const epochEnded = g === groups.length - 1 ? epoch + 1 : undefined;
      const elapsed = (Date.now() - started) / 1000;
      if (due(t.logEvery, step, epochEnded) || step === total || step === 1) {
        report.step({
          step, totalSteps: total, epoch: epoch + (g + 1) / groups.length, loss: windowLoss / windowSteps, lr,
          ...(out.gradNorm !== undefined ? { gradNorm: out.gradNorm } : {}),
          tokens, tokensPerSecond: tokens / Math.max(elapsed, 1e-9), elapsed, eta: (elapsed / step) * (total - step),
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
      for (const sv of adapterSaves) if (due(sv.every!, step, epochEnded) || (last && !result.saved.some((d) => d.endsWith(`checkpoint-${step}`)))) await periodic(sv, step);
    }
  }
  for (const sv of s.spec.save.filter((x) => !x.every)) await save(resolve(s.baseDir, sv.dir), result.steps);
  for (const e of s.spec.export.filter((x) => x.what === "adapter")) await save(resolve(s.baseDir, e.dir), result.steps);
  return result;
}

/** Keeps the newest `keep` checkpoint-N folders under `root`. */
async function rotate(root: string, keep: number): Promise<void> {
  const entries = (await readdir(root)).map((n) => ({ n, step: /^checkpoint-(\d+)$/.exec(n)?.[1] })).filter((x) => x.step !== undefined);
  entries.sort((a, b) => Number(a.step) - Number(b.step));
  for (const e of entries.slice(0, Math.max(0, entries.length - keep))) await rm(join(root, e.n), { recursive: true, force: true });
}
