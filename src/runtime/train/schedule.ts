/**
 * Learning rate at each optimizer step, as Transformers' schedulers compute it (the value for step
 * k, 0-based, is the one the k-th optimizer step uses): a linear warm-up from 0, then constant,
 * linear decay to 0, or half a cosine to 0, over the remaining steps.
 */
import type { TrainSpec } from "../../check/spec.js";

export function warmupSteps(train: TrainSpec, total: number): number {
  return "steps" in train.warmup ? train.warmup.steps : Math.ceil(train.warmup.share * total);
}

export function lrAt(train: TrainSpec, step: number, total: number): number {
  const warm = warmupSteps(train, total);
  if (step < warm) return (train.lr * step) / Math.max(1, warm);
  if (train.schedule === "constant") return train.lr;
  const progress = (step - warm) / Math.max(1, total - warm);
  if (train.schedule === "linear") return train.lr * Math.max(0, (total - step) / Math.max(1, total - warm));
  return train.lr * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}
