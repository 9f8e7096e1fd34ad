// One optimizer dispatch over every trainable parameter, for a runtime that packs parameters,
// gradients and optimizer state into arenas (one buffer each, the same offset for a tensor in
// every arena). Tensors are segments {offset, count} of the arenas, in elements; adjacent segments
// with the same weight decay merge into runs, and when more than one run remains a const table of
// run starts maps invocation i (numbered over the segments' elements only, gaps skipped) to its
// arena element by binary search. The update is in place and follows the per-tensor rules of
// math.ts exactly, so packing changes no number. With `clip`, gradients are multiplied by
// coef[0] as they are read, so clip_grad_norm over the packed gradients costs the two small norm
// kernels of fusedGradNormKernels and no pass of its own.

import { BASELINE_CAPS, sharedLoadLanes, type DeviceCaps } from "../../caps.js";
import type { KernelBinding, KernelSpec } from "../../kernel.js";
import { f32, renderModule } from "../../render.js";
import { clipFinishBody, clipFinishKernel, CHUNK } from "./clip.js";
import { adamElement, adamScalars, checkAdam, ONE_MINUS_POW, sgdElement } from "./math.js";
import { REDUCE_THREADS, treeReduce, TREE_VAR } from "./reduce.js";
import { buffer, elementGrid, ELEMENT_THREADS } from "./update.js";

export interface ParamSegment {
  /** First element of this tensor in every arena. */
  offset: number;
  count: number;
  /** Overrides the kind's weight decay for this tensor (the HF Trainer exempts biases and norms). */
  weightDecay?: number;
}

export type FusedKind = "sgd" | "adam" | "adamw";

export interface FusedHyper {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  /** Multiply gradients by coef[0] (clip_grad_norm's coefficient) as they are read. */
  clip?: boolean;
  /** With `clip`, also store each clipped gradient in clipped_grads (same arena layout). */
  writeClipped?: boolean;
}

/** Binding names of the fused kernels. */
export const FUSED_NAMES = {
  params: "params",
  grads: "grads",
  m: "exp_avg",
  v: "exp_avg_sq",
  momentum: "momentum_buffer",
  lr: "lr",
  step: "step",
  coef: "clip_coef",
  clipped: "clipped_grads",
  norm: "grad_norm",
  partials: "norm_partials",
} as const;

interface Run {
  logical: number;
  arena: number;
  count: number;
  wd: number;
}

function runsOf(segments: readonly ParamSegment[], wd: number): Run[] {
  const sorted = [...segments].filter((s) => s.count > 0).sort((a, b) => a.offset - b.offset);
  const runs: Run[] = [];
  let logical = 0;
  for (const s of sorted) {
    if (!Number.isInteger(s.offset) || !Number.isInteger(s.count) || s.offset < 0) throw new Error(`fused optimizer: bad segment ${JSON.stringify(s)}`);
    const last = runs[runs.length - 1];
    if (last && s.offset < last.arena + last.count) throw new Error(`fused optimizer: segment at ${s.offset} overlaps the one before`);
    const w = s.weightDecay ?? wd;
    if (last && last.arena + last.count === s.offset && last.wd === w) last.count += s.count;
    else runs.push({ logical, arena: s.offset, count: s.count, wd: w });
    logical += s.count;
  }
  if (!runs.length) throw new Error("fused optimizer: no parameters");
  return runs;
}

/** WGSL that maps invocation `i` to `o` (arena element) and `wd` (that run's weight decay). */
function segmentLookup(runs: readonly Run[]): { helpers: string; lookup: string; wd: string | number } {
  const sameWd = runs.every((r) => r.wd === runs[0]!.wd);
  if (runs.length === 1) return { helpers: "", lookup: `let o = ${runs[0]!.arena}u + i;`, wd: runs[0]!.wd };
  const n = runs.length;
  const table = (xs: string[], t: string): string => `array<${t}, ${n}>(${xs.join(", ")})`;
  const helpers = `
const RUN_L = ${table(runs.map((r) => `${r.logical}u`), "u32")};
const RUN_A = ${table(runs.map((r) => `${r.arena}u`), "u32")};${sameWd ? "" : `\nconst RUN_WD = ${table(runs.map((r) => f32(r.wd)), "f32")};`}
fn run_of(i: u32) -> u32 {
  var lo = 0u;
  var hi = ${n - 1}u;
  while (lo < hi) {
    let mid = (lo + hi + 1u) / 2u;
    if (RUN_L[mid] <= i) { lo = mid; } else { hi = mid - 1u; }
  }
  return lo;
}`;
  return { helpers, lookup: `let run = run_of(i);\nlet o = RUN_A[run] + (i - RUN_L[run]);`, wd: sameWd ? runs[0]!.wd : "RUN_WD[run]" };
}

/**
 * Updates every segment of the arenas in one dispatch, in place. Bindings (FUSED_NAMES): params,
 * grads, then exp_avg and exp_avg_sq (Adam/AdamW) or momentum_buffer (SGD with momentum), lr and
 * step (one f32 each, the step 1-based), and clip_coef when `hyper.clip`.
 */
export function fusedOptimizerKernel(params: readonly ParamSegment[], kind: FusedKind, hyper: FusedHyper, caps: DeviceCaps = BASELINE_CAPS): KernelSpec {
  const N = FUSED_NAMES;
  const wd = hyper.weightDecay ?? 0;
  const runs = runsOf(params, wd);
  const total = runs.reduce((a, r) => a + r.count, 0);
  const seg = segmentLookup(runs);
  const adam = kind !== "sgd";
  const momentum = hyper.momentum ?? 0;
  const bindings: KernelBinding[] = [];
  const bind = (name: string, access: "read" | "read_write"): void => void bindings.push(buffer(bindings.length, name, access));
  bind(N.params, "read_write");
  bind(N.grads, "read");
  if (adam) {
    bind(N.m, "read_write");
    bind(N.v, "read_write");
  } else if (momentum !== 0) bind(N.momentum, "read_write");
  bind(N.lr, "read");
  bind(N.step, "read");
  if (hyper.clip) bind(N.coef, "read");
  const keepClipped = hyper.clip === true && hyper.writeClipped === true;
  if (keepClipped) bind(N.clipped, "read_write");

  const g = elementGrid(total, caps);
  const grad = keepClipped ? "gc" : `${N.grads}[o]${hyper.clip ? ` * ${N.coef}[0]` : ""}`;
  let update: string;
  if (adam) {
    const h = { beta1: hyper.beta1 ?? 0.9, beta2: hyper.beta2 ?? 0.999, eps: hyper.eps ?? 1e-8, weightDecay: wd, decoupled: kind === "adamw" };
    checkAdam(h);
    for (const r of runs) checkAdam({ ...h, weightDecay: r.wd });
    update = `${adamScalars(h)}
var p = ${N.params}[o];
var grad = ${grad};
var m = ${N.m}[o];
var v = ${N.v}[o];
${adamElement(h, seg.wd)}
${N.params}[o] = p;
${N.m}[o] = m;
${N.v}[o] = v;`;
  } else {
    const h = { momentum, dampening: hyper.dampening ?? 0, weightDecay: wd, nesterov: hyper.nesterov === true };
    update = `var p = ${N.params}[o];
var d = ${grad};${momentum !== 0 ? `\nvar buf = ${N.momentum}[o];` : ""}
${sgdElement(h, seg.wd)}
${N.params}[o] = p;${momentum !== 0 ? `\n${N.momentum}[o] = buf;` : ""}`;
  }
  const body = `
${g.index}
if (i >= ${total}u) { return; }
${seg.lookup}
let lr = ${N.lr}[0];
let t = ${N.step}[0];${keepClipped ? `\nlet gc = ${N.grads}[o] * ${N.coef}[0];\n${N.clipped}[o] = gc;` : ""}
${update}`;
  const wgsl = renderModule({
    bindings,
    helpers: (adam ? ONE_MINUS_POW : "") + seg.helpers,
    entryPoint: "main",
    workgroupSize: [ELEMENT_THREADS, 1, 1],
    params: ["@builtin(workgroup_id) wid: vec3<u32>", "@builtin(local_invocation_index) lid: u32"],
    body,
  });
  return {
    label: `fused_${kind}_${runs.length}runs_${total}`,
    wgsl,
    entryPoint: "main",
    workgroupSize: [ELEMENT_THREADS, 1, 1],
    dispatch: g.dispatch,
    bindings,
    flops: (adam ? 12 : 6) * total,
  };
}

/**
 * clip_grad_norm over the packed gradients: partial sums of squares per chunk of the segments'
 * elements (into norm_partials, `partialsBytes` long), then one invocation-group folding them into
 * grad_norm[0] and clip_coef[0] = min(max_norm / (norm + 1e-6), 1), for fusedOptimizerKernel with
 * `clip`. Gaps between segments are not read.
 */
export function fusedGradNormKernels(params: readonly ParamSegment[], maxNorm: number, caps: DeviceCaps = BASELINE_CAPS): { kernels: KernelSpec[]; partialsBytes: number } {
  const N = FUSED_NAMES;
  const runs = runsOf(params, 0).map((r) => ({ ...r, wd: 0 }));
  const total = runs.reduce((a, r) => a + r.count, 0);
  const seg = segmentLookup(runs);
  const groups = Math.ceil(total / CHUNK);
  if (groups > caps.maxWorkgroupsPerDimension) throw new Error(`fused grad norm: ${total} elements need more than one dispatch row`);
  const pb = [buffer(0, N.grads, "read"), buffer(1, N.partials, "read_write")];
  const one = (label: string, wgsl: string, bindings: KernelBinding[], dispatch: [number, number, number], threads: number): KernelSpec => ({
    label,
    wgsl,
    entryPoint: "main",
    workgroupSize: [threads, 1, 1],
    dispatch,
    bindings,
    flops: 0,
  });
  // On a CPU adapter with a fixed subgroup size, each workgroup is one subgroup that sums by
  // subgroupAdd, and one subgroup folds the partials and finishes: a 256-wide barrier tree there
  // costs a coroutine switch per level for each of 32 SIMD slices (the fold and finish took
  // about 0.3 ms of a stories260K step as two dispatches).
  const entry = ["@builtin(workgroup_id) wid: vec3<u32>", "@builtin(local_invocation_index) lid: u32"];
  const sg = sharedLoadLanes(caps);
  const threads = sg || REDUCE_THREADS;
  const partial = renderModule({
    ...(sg ? { enables: ["subgroups"] } : { workgroupVars: [TREE_VAR] }),
    bindings: pb,
    helpers: seg.helpers,
    entryPoint: "main",
    workgroupSize: [threads, 1, 1],
    params: entry,
    // Each thread sums the squares of its elements of the workgroup's chunk, then the workgroup's.
    body: `
let base = wid.x * ${CHUNK}u;
var part = 0.0;
for (var i = base + lid; i < min(base + ${CHUNK}u, ${total}u); i += ${threads}u) {
  ${seg.lookup.replace(/\n/g, "\n  ")}
  let g = ${N.grads}[o];
  part += g * g;
}
${sg ? "let sum = subgroupAdd(part);" : treeReduce(N.grads)}
if (lid == 0u) { ${N.partials}[wid.x] = ${sg ? "sum" : "red[0]"}; }`,
  });
  if (sg) {
    const fb = [buffer(0, N.partials, "read_write"), buffer(1, N.norm, "read_write"), buffer(2, N.coef, "read_write")];
    const finish = renderModule({
      enables: ["subgroups"],
      bindings: fb,
      entryPoint: "main",
      workgroupSize: [sg, 1, 1],
      params: entry,
      body: `
var part = 0.0;
for (var i = lid; i < ${groups}u; i += ${sg}u) { part += ${N.partials}[i]; }
let sumsq = subgroupAdd(part);
if (lid == 0u) {
  ${N.partials}[${groups}u] = sumsq;${clipFinishBody(maxNorm, "sumsq", N.norm, N.coef, 0).replace(/\n/g, "\n  ")}
}`,
    });
    return {
      kernels: [one(`fused_sumsq_${total}_sg`, partial, pb, [groups, 1, 1], sg), one(`fused_sumsq_finish_${groups}_sg`, finish, fb, [1, 1, 1], sg)],
      partialsBytes: 4 * (groups + 1),
    };
  }
  // Fold the partials into partials[groups] so the finish kernel reads one slot.
  const fb = [buffer(0, N.partials, "read_write")];
  const fold = renderModule({
    bindings: fb,
    workgroupVars: [TREE_VAR],
    entryPoint: "main",
    workgroupSize: [REDUCE_THREADS, 1, 1],
    params: ["@builtin(local_invocation_index) lid: u32"],
    body: `
var part = 0.0;
for (var i = lid; i < ${groups}u; i += ${REDUCE_THREADS}u) { part += ${N.partials}[i]; }
${treeReduce(N.partials)}
if (lid == 0u) { ${N.partials}[${groups}u] = red[0]; }`,
  });
  const finish = clipFinishKernel(maxNorm, N.partials, groups, N.norm, N.coef, 0);
  return {
    kernels: [one(`fused_sumsq_${total}`, partial, pb, [groups, 1, 1], REDUCE_THREADS), one(`fused_sumsq_fold_${groups}`, fold, fb, [1, 1, 1], REDUCE_THREADS), finish],
    partialsBytes: 4 * (groups + 1),
  };
}
