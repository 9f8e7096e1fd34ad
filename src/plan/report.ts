/**
 * `pefc plan`: what a spec will train and what it costs, from config.json alone. Per selector term
 * the modules matched; per method its parameters; PEFT's own summary line; the derived schedule;
 * and an estimate of device memory.
 */
import type { MethodSpec, Spec } from "../check/spec.js";
import type { Graph, Param } from "../ir/index.js";
import type { Match } from "../models/select.js";
import type { ModelProfile } from "../models/types.js";
import { methodLabel, type PassContext } from "../passes/context.js";
import { termText } from "../parser/print.js";
import { stepFlops, type StepFlops } from "./flops.js";

export interface PlanNumbers {
  trainable: number;
  all: number;
  /** PEFT's line: `trainable params: 2,924,880 || all params: 6,246,508,908 || trainable%: 0.0468`. */
  peftLine: string;
  perMethod: { label: string; line: number; params: number; tensors: number }[];
  schedule: Schedule;
  memory: MemoryEstimate;
  /** FLOPs of one micro-batch step at the planned batch and length (per optimizer step: x grad_accum). */
  flops?: StepFlops & { batch: number; seqLen: number };
}

export interface Schedule {
  records?: number;
  stepsPerEpoch?: number;
  totalSteps?: number;
  effectiveBatch: number;
  warmupSteps?: number;
  adalora?: { tinit: number; tfinal: number; deltaT: number; budgetSteps?: [number, number]; initBudget: number; targetBudget: number };
}

export interface MemoryEstimate {
  weights: number;
  trainable: number;
  activations: number;
  total: number;
  seqLen: number;
}

const fmt = (n: number) => n.toLocaleString("en-US");

export function peftLine(trainable: number, all: number): string {
  return `trainable params: ${fmt(trainable)} || all params: ${fmt(all)} || trainable%: ${((100 * trainable) / all).toFixed(4)}`;
}

function numel(p: Param): number {
  return p.shape.reduce((a, b) => a * b, 1);
}

/** Optimizer steps per epoch: micro-batches rounded up, then accumulation groups rounded up. */
export function stepsPerEpoch(records: number, batch: number, gradAccum: number): number {
  return Math.max(1, Math.ceil(Math.ceil(records / batch) / gradAccum));
}

export function deriveSchedule(spec: Spec, ctx: PassContext | undefined, records: number | undefined): Schedule {
  const t = spec.train;
  const s: Schedule = { effectiveBatch: t.batch * t.gradAccum };
  if (records !== undefined) {
    s.records = records;
    s.stepsPerEpoch = stepsPerEpoch(records, t.batch, t.gradAccum);
  }
  if ("steps" in t.length) s.totalSteps = t.length.steps;
  else if (s.stepsPerEpoch !== undefined) s.totalSteps = s.stepsPerEpoch * t.length.epochs;
  if (s.totalSteps !== undefined) s.warmupSteps = "steps" in t.warmup ? t.warmup.steps : Math.ceil(t.warmup.share * s.totalSteps);
  spec.methods.forEach((m, i) => {
    if (m.method !== "adalora") return;
    const n = ctx?.targets[i]?.modules.length ?? 0;
    const total = m.options.total_step ?? s.totalSteps;
    s.adalora = {
      tinit: m.options.tinit,
      tfinal: m.options.tfinal,
      deltaT: m.options.delta_t,
      initBudget: m.options.init_r * n,
      targetBudget: m.options.r * n,
      ...(total !== undefined ? { budgetSteps: [m.options.tinit, total - m.options.tfinal] as [number, number] } : {}),
    };
  });
  return s;
}

/** Sequence length the run trains at: the data budgets, or 512 when no data is given. */
export function trainLength(spec: Spec): number {
  const d = spec.data.train;
  if (!d) return 512;
  return "maxLength" in d.lengths ? d.lengths.maxLength : d.lengths.maxSource + d.lengths.maxTarget + 1;
}

/**
 * Device memory: frozen weights at their storage precision; trainable parameters with gradients and
 * optimizer state in f32; activations kept for backward, estimated per layer from the widths that
 * backward rules keep (inputs of each matmul, attention statistics, norms), plus the logits.
 */
export function estimateMemory(spec: Spec, profile: ModelProfile, graph: Graph): MemoryEstimate {
  const frozenBytes = spec.train.precision === "f16" ? 2 : 4;
  let weights = 0;
  let trainable = 0;
  const stateCopies = spec.train.optimizer.kind === "sgd" ? (spec.train.optimizer.momentum > 0 ? 1 : 0) : 2;
  for (const p of graph.params) {
    if (p.trainable) trainable += numel(p) * 4 * (2 + stateCopies);
    else weights += numel(p) * frozenBytes;
  }
  const T = trainLength(spec);
  const B = spec.train.batch;
  const d = profile.dims;
  const kv = d.numKvHeads * d.headDim;
  const perToken = d.numLayers * (4 * d.hiddenSize + 2 * (d.numHeads * d.headDim + 2 * kv) + 3 * d.intermediateSize) + 2 * d.vocabSize;
  const activations = B * T * perToken * 4;
  return { weights, trainable, activations, total: weights + trainable + activations, seqLen: T };
}

export function planNumbers(spec: Spec, profile: ModelProfile, graph: Graph, ctx: PassContext, records?: number): PlanNumbers {
  let trainable = 0;
  let all = 0;
  for (const p of graph.params) {
    all += numel(p);
    if (p.trainable) trainable += numel(p);
  }
  const perMethod = spec.methods.map((m, i) => {
    const ps = graph.params.filter((p) => p.method === i && p.trainable);
    return { label: methodLabel(m), line: m.line, params: ps.reduce((a, p) => a + numel(p), 0), tensors: ps.length };
  });
  const memory = estimateMemory(spec, profile, graph);
  const numbers: PlanNumbers = { trainable, all, peftLine: peftLine(trainable, all), perMethod, schedule: deriveSchedule(spec, ctx, records), memory };
  if (graph.outputs.some((o) => o.startsWith("grad."))) {
    numbers.flops = { ...stepFlops(graph, { B: spec.train.batch, T: memory.seqLen }), batch: spec.train.batch, seqLen: memory.seqLen };
  }
  return numbers;
}

export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 2)} ${units[i]}`;
}


/** `transformer.encoder.layers.{0..27}.self_attention.query_key_value`: paths that differ only in the layer index, collapsed. */
export function collapsePaths(matches: Match[]): string[] {
  return collapseMatches(matches).map((g) => g.text);
}

function collapseMatches(matches: Match[]): { text: string; first: Match }[] {
  const groups = new Map<string, number[]>();
  const firsts = new Map<string, Match>();
  const order: string[] = [];
  for (const m of matches) {
    const path = m.rows ? `${m.module.path}[${m.rows[0]}:${m.rows[1]}]` : m.module.path;
    const key = m.module.layer === undefined ? path : path.replace(new RegExp(`\\.${m.module.layer}\\.`), ".{}.");
    if (!groups.has(key)) {
      groups.set(key, []);
      firsts.set(key, m);
      order.push(key);
    }
    if (m.module.layer !== undefined) groups.get(key)!.push(m.module.layer);
  }
  return order.map((key) => {
    const ls = groups.get(key)!;
    return { text: ls.length === 0 ? key : key.replace("{}", `{${rangesText(ls)}}`), first: firsts.get(key)! };
  });
}

function rangesText(ls: number[]): string {
  const sorted = [...new Set(ls)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? String(sorted[i]) : `${sorted[i]}..${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

function methodSettings(m: MethodSpec): string {
  switch (m.method) {
    case "lora": return `r=${m.options.r} alpha=${m.options.alpha} scale=${(m.options.rslora ? m.options.alpha / Math.sqrt(m.options.r) : m.options.alpha / m.options.r).toPrecision(4)} dropout=${m.options.dropout}`;
    case "adalora": return `target_r=${m.options.r} init_r=${m.options.init_r} alpha=${m.options.alpha} dropout=${m.options.dropout}`;
    case "adapter": return `${m.options.bottleneck !== undefined ? `bottleneck=${m.options.bottleneck}` : `reduction=${m.options.reduction}`} act=${m.options.act} scaling=${m.options.scaling}`;
    case "prefix": case "p_tuning_v2": return `tokens=${m.options.tokens}${m.options.projection ? ` hidden=${m.options.hidden}` : " (no projection)"}`;
    case "p_tuning": return `tokens=${m.options.tokens} encoder=${m.options.encoder}`;
    case "prompt_tuning": return `tokens=${m.options.tokens} init=${m.options.init.kind}`;
    default: return "";
  }
}

export function formatPlan(spec: Spec, profile: ModelProfile, graph: Graph, ctx: PassContext, n: PlanNumbers): string {
  const out: string[] = [];
  const d = profile.dims;
  out.push(`model ${spec.model?.source}: ${profile.name}, ${d.numLayers} layers, hidden ${d.hiddenSize}, heads ${d.numHeads} (kv ${d.numKvHeads}), vocab ${d.vocabSize}, ${fmt(profile.totalParams)} params`);
  spec.methods.forEach((m, i) => {
    const t = ctx.targets[i]!;
    const pm = n.perMethod[i]!;
    const hybrid = m.hybrid !== undefined ? ` [${spec.hybrids[m.hybrid]!.kind}${m.gated ? ", gated" : ""}]` : "";
    out.push("");
    out.push(`${methodLabel(m)} ${methodSettings(m)}${hybrid}  (line ${m.line})`.replace(/ {2,}\(/, "  ("));
    if (t.defaultTarget) out.push(`  on ${t.defaultTarget} (default for ${profile.name}): ${t.modules.length} modules`);
    for (const term of t.terms) {
      out.push(`  ${term.except ? "except " : ""}${termText(term.term)} -> ${term.matched.length} module${term.matched.length === 1 ? "" : "s"}`);
    }
    if (t.modules.length) {
      for (const g of collapseMatches(t.modules)) {
        const mod = g.first.module;
        const out_ = g.first.rows ? g.first.rows[1] - g.first.rows[0] : mod.outFeatures;
        out.push(`    ${g.text}  ${mod.inFeatures}->${out_}`);
      }
    } else if (t.layers.length) out.push(`  layers {${rangesText(t.layers)}} of ${d.numLayers}`);
    for (const o of t.overrides) out.push(`  override ${Object.entries(o.options).map(([k, v]) => `${k}=${v}`).join(" ")}: ${o.modules.length} modules`);
    const shapes = [...new Map(graph.params.filter((p) => p.method === i).map((p) => [p.name.split(".").slice(-2).join("."), p])).values()].slice(0, 6);
    if (shapes.length) out.push(`  tensors: ${shapes.map((p) => `${p.name.split(".").slice(-2).join(".").replace(/^\d+\./, "")} [${p.shape.join(",")}]${p.trainable ? "" : " frozen"}`).join(", ")}`);
    out.push(`  trainable: ${fmt(pm.params)} in ${pm.tensors} tensors`);
  });
  const unfrozen = graph.params.filter((p) => p.trainable && p.origin === "base" && p.method === undefined);
  if (unfrozen.length) out.push("", `unfreeze: ${fmt(unfrozen.reduce((a, p) => a + numel(p), 0))} base parameters in ${unfrozen.length} tensors`);
  out.push("", n.peftLine, "");
  const s = n.schedule;
  const len = "steps" in spec.train.length ? `${spec.train.length.steps} steps` : `${spec.train.length.epochs} epochs`;
  out.push(`schedule: ${len}, batch ${spec.train.batch} x grad_accum ${spec.train.gradAccum} = effective batch ${s.effectiveBatch}`);
  if (s.records !== undefined) out.push(`  ${fmt(s.records)} train records -> ${s.stepsPerEpoch} optimizer steps per epoch`);
  if (s.totalSteps !== undefined) out.push(`  total optimizer steps: ${s.totalSteps}; warmup ${s.warmupSteps}; ${spec.train.schedule} schedule, lr ${spec.train.lr}`);
  else out.push("  total optimizer steps: unknown until the train data is counted");
  if (s.adalora) {
    const a = s.adalora;
    out.push(`  adalora: budget ${fmt(a.initBudget)} -> ${fmt(a.targetBudget)} singular values; ` + (a.budgetSteps ? `no pruning before step ${a.tinit}, cubic decay over steps ${a.budgetSteps[0]}..${a.budgetSteps[1]} every ${a.deltaT}, rank pattern fixed for the last ${a.tfinal}` : `tinit ${a.tinit}, tfinal ${a.tfinal}, every ${a.deltaT} steps`));
  }
  if (n.flops) {
    const f = n.flops;
    const g = (x: number) => `${(x / 1e9).toFixed(x < 1e9 ? 3 : 1)} GFLOP`;
    const saved = f.unprunedBackward > 0 ? ` (full backward would be ${g(f.unprunedBackward)}: pruning saves ${((100 * (f.unprunedBackward - f.backward)) / f.unprunedBackward).toFixed(0)}%)` : "";
    out.push("", `compute per micro-batch (${f.batch} x ${f.seqLen} tokens): forward ${g(f.forward)}, backward ${g(f.backward)}${saved}, optimizer ${g(f.optimizer)}`);
  }
  const m = n.memory;
  out.push("", `memory estimate (batch ${spec.train.batch} x ${m.seqLen} tokens, ${spec.train.precision}): weights ${bytes(m.weights)}, trainable state ${bytes(m.trainable)}, activations ${bytes(m.activations)}, total ${bytes(m.total)}`);
  return out.join("\n");
}
