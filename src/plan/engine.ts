/**
 * Per-GPU memory of a run handed to a multi-GPU engine (`pefc plan --engine deepspeed --gpus N`),
 * beside the single-device estimate. W = gpus x nodes processes, one GPU each; w = bytes per
 * weight as the engine holds the model (4 in f32, 2 under bf16/fp16 mixed precision).
 *
 *   DeepSpeed ZeRO-3 and FSDP FULL_SHARD shard parameters, gradients and optimizer state:
 *     params     = (frozen + trainable) numel x w / W
 *     master     = trainable numel x 4 / W            (f32 copy, only under mixed precision)
 *     grads      = trainable numel x 4 / W            (reduced in f32)
 *     optimizer  = trainable numel x 4 x states / W   (AdamW: m and v; SGD: momentum or none)
 *     gathered   = 2 x the largest decoder layer x w  (the layer being computed and the one prefetched)
 *   DDP replicates everything: the same terms with W = 1 and nothing gathered.
 *   activations: one micro-batch (the spec's batch x the length budget), as for one device.
 */
import type { Spec } from "../check/spec.js";
import type { Graph } from "../ir/index.js";
import type { ModelProfile } from "../models/types.js";
import type { MemoryEstimate } from "./report.js";

export type PlanEngine = "deepspeed" | "fsdp" | "ddp";

export interface EngineTopology {
  engine: PlanEngine;
  gpus: number;
  nodes: number;
  precision: "no" | "bf16" | "fp16";
}

export interface EngineMemory extends EngineTopology {
  processes: number;
  params: number;
  master: number;
  grads: number;
  optimizer: number;
  gathered: number;
  activations: number;
  total: number;
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** The parameter count of the largest decoder layer (modules with a layer index). */
export function largestLayer(profile: ModelProfile): number {
  const per = new Map<number, number>();
  for (const m of profile.modules) {
    if (m.layer === undefined) continue;
    per.set(m.layer, (per.get(m.layer) ?? 0) + m.params.reduce((a, p) => a + numel(p.shape), 0));
  }
  return Math.max(0, ...per.values());
}

export function engineMemory(spec: Spec, profile: ModelProfile, graph: Graph, single: MemoryEstimate, t: EngineTopology): EngineMemory {
  const processes = t.gpus * t.nodes;
  const shards = t.engine === "ddp" ? 1 : processes;
  const w = t.precision === "no" ? 4 : 2;
  let frozen = 0;
  let trainable = 0;
  for (const p of graph.params) {
    if (p.trainable) trainable += numel(p.shape);
    else frozen += numel(p.shape);
  }
  const o = spec.train.optimizer;
  const states = o.kind === "sgd" ? (o.momentum > 0 ? 1 : 0) : 2;
  const params = ((frozen + trainable) * w) / shards;
  const master = t.precision === "no" ? 0 : (trainable * 4) / shards;
  const grads = (trainable * 4) / shards;
  const optimizer = (trainable * 4 * states) / shards;
  const gathered = t.engine === "ddp" ? 0 : 2 * largestLayer(profile) * w;
  const activations = single.activations;
  return { ...t, processes, params, master, grads, optimizer, gathered, activations, total: params + master + grads + optimizer + gathered + activations };
}

const NAMES: Record<PlanEngine, string> = { deepspeed: "DeepSpeed ZeRO-3", fsdp: "FSDP FULL_SHARD", ddp: "DDP" };

export function formatEngineMemory(m: EngineMemory, bytes: (n: number) => string): string {
  const where = `${NAMES[m.engine]} on ${m.gpus} GPU${m.gpus === 1 ? "" : "s"} x ${m.nodes} node${m.nodes === 1 ? "" : "s"} (${m.processes} processes, ${m.precision === "no" ? "f32" : m.precision})`;
  const parts = [`params ${bytes(m.params)}`, ...(m.master ? [`f32 master ${bytes(m.master)}`] : []), `grads ${bytes(m.grads)}`, `optimizer state ${bytes(m.optimizer)}`, ...(m.gathered ? [`gathered layers ${bytes(m.gathered)}`] : []), `activations ${bytes(m.activations)}`];
  return `memory per GPU, ${where}: ${parts.join(", ")}, total ${bytes(m.total)}`;
}
