/**
 * Pass fuse: rewrites chains that cost a pass over memory each into single ops the kernels do in
 * one pass. On the training graph (after autodiff and the optimizer):
 *  - LoRA: add(linear(x, W), scale(linear(u, B), s)) → linear_fused(x, W, u, B){lora_scale: s};
 *    the base matmul adds the low-rank term in its epilogue (u = x·Aᵀ stays its own small op);
 *    AdaLoRA's rank_scale(linear(u, B), ranknum) likewise, ranknum becoming an input;
 *  - residual: add(linear…(…), r) → linear_fused(…, r){residual}: the add happens in the epilogue;
 *  - scale folding: scale(dy, s) read only by linear gradients becomes their alpha;
 *  - SwiGLU (llama's MLP): mul(silu(g), u) → silu_mul(g, u), and its backward mul(dh, u),
 *    mul(dh, silu(g)), silu_backward(g, ·) → one silu_mul_backward(g, u, dh) giving dg and du,
 *    so silu(g) is neither written nor kept for backward; where gate and up are plain
 *    projections of one input, they and the activation → gate_up_silu_mul(x, Wg, Wu), one pass
 *    over x for all three; otherwise, where the activation feeds only the down projection,
 *    linear(silu_mul(g, u), W) → silu_mul_linear(g, W, u): the activation is computed as the
 *    projection reads it and never stored; and silu_mul_backward of a dX →
 *    linear_grad_silu_mul, SwiGLU's backward done as the dX matmul stores;
 *  - gradient sums: add_grad over dX of several linear layers (q, k, v and the LoRA A's all read
 *    the same normed input) → linear_grad_input_sum, one matmul over every term's K instead of a
 *    matmul per term and a pass to add them;
 *  - residual gradients: add_grad(r, norm backward's dx) → the norm backward adding r as it stores dx;
 *  - the loss: cross_entropy with its backward → cross_entropy_grad, both from one pass over the
 *    logits (the backward would read them again for the same row statistics).
 * An intermediate is removed only when nothing else reads it (no other op, output or saved
 * activation), so the graph computes exactly what it did.
 */
import { cloneGraph, type Graph, type Op } from "../ir/index.js";
import type { PassContext } from "./context.js";

interface Uses {
  ops: Map<string, Op[]>;
  pinned: Set<string>;
}

function uses(g: Graph): Uses {
  const ops = new Map<string, Op[]>();
  for (const op of g.ops) for (const v of op.inputs) ops.set(v, [...(ops.get(v) ?? []), op]);
  return { ops, pinned: new Set([...g.outputs, ...(g.saved ?? [])]) };
}

/** The op defining `v` when `v` is read by `reader` alone. */
function soleProducer(v: string, reader: Op, u: Uses, producers: Map<string, Op>): Op | undefined {
  if (u.pinned.has(v)) return undefined;
  const readers = u.ops.get(v) ?? [];
  if (readers.length !== 1 || readers[0] !== reader) return undefined;
  return producers.get(v);
}

function producersOf(g: Graph): Map<string, Op> {
  const m = new Map<string, Op>();
  for (const op of g.ops) for (const o of op.outputs) m.set(o.name, op);
  return m;
}

/** The attributes of linear_fused standing for a plain linear op, before any extra term. */
function fusedAttrs(base: Op): Op["attrs"] {
  if (base.op === "linear_fused") return { ...base.attrs };
  return { ...(base.attrs.transposed === true ? { transposed: true } : {}), bias: base.inputs.length > 2, residual: false };
}

/** What a rewrite of one op sees: readers, producers, the ops' places, and the ops already absorbed. */
interface Scene {
  u: Uses;
  prod: Map<string, Op>;
  index: Map<Op, number>;
  dead: Set<Op>;
}

/**
 * Visits every op; `fold` rewrites it in place and returns the ops it absorbs (removed at the
 * end), or undefined to leave it.
 */
function rewriteEach(g: Graph, fold: (op: Op, s: Scene) => Op[] | undefined): number {
  const s: Scene = { u: uses(g), prod: producersOf(g), index: new Map(g.ops.map((o, i) => [o, i])), dead: new Set() };
  let n = 0;
  for (const op of g.ops) {
    if (s.dead.has(op)) continue;
    const absorbed = fold(op, s);
    if (!absorbed) continue;
    for (const o of absorbed) s.dead.add(o);
    n++;
  }
  g.ops = g.ops.filter((o) => !s.dead.has(o));
  return n;
}

/** The op defining `v` when `reader` alone reads it and no rewrite has absorbed it. */
function liveProducer(v: string, reader: Op, s: Scene): Op | undefined {
  const p = soleProducer(v, reader, s.u, s.prod);
  return p && !s.dead.has(p) ? p : undefined;
}

const unscaled = (op: Op): boolean => op.attrs.alpha === undefined || op.attrs.alpha === 1;

/**
 * Visits every add with each operand order; `fold` returns the ops the add absorbs (after turning
 * the add into the fused op), or undefined to leave it. Absorbed ops are removed at the end.
 */
function rewriteAdds(g: Graph, fold: (add: Op, first: string, second: string, u: Uses, prod: Map<string, Op>, dead: Set<Op>) => Op[] | undefined): number {
  return rewriteEach(g, (add, s) => {
    if (add.op !== "add") return undefined;
    for (const [a, b] of [[0, 1], [1, 0]] as const) {
      const absorbed = fold(add, add.inputs[a]!, add.inputs[b]!, s.u, s.prod, s.dead);
      if (absorbed) return absorbed;
    }
    return undefined;
  });
}

/**
 * add(linear-ish, scale(linear(u, B))) → linear_fused with a LoRA term; AdaLoRA's
 * rank_scale(linear(u, B), ranknum) the same, its ranknum read by the fused op.
 */
function fuseLora(g: Graph): number {
  return rewriteAdds(g, (add, first, second, u, prod, dead) => {
    const base = soleProducer(first, add, u, prod);
    const sc = soleProducer(second, add, u, prod);
    if (!base || base.op !== "linear" || !sc || (sc.op !== "scale" && sc.op !== "rank_scale") || dead.has(base) || dead.has(sc)) return undefined;
    const up = soleProducer(sc.inputs[0]!, sc, u, prod);
    if (!up || up.op !== "linear" || up.inputs.length !== 2 || up.attrs.transposed === true) return undefined;
    const ranked = sc.op === "rank_scale";
    const attrs = { ...fusedAttrs(base), lora_scale: sc.attrs.factor as number, ...(ranked ? { lora_ranknum: true, lora_eps: sc.attrs.eps as number } : {}) };
    const inputs = [...base.inputs, up.inputs[0]!, up.inputs[1]!, ...(ranked ? [sc.inputs[1]!] : [])];
    Object.assign(add, { op: "linear_fused", inputs, attrs, module: base.module });
    return [base, sc, up];
  });
}

/** add(linear or linear_fused without residual, r) → the same with the residual in its epilogue. */
function fuseResidual(g: Graph): number {
  return rewriteAdds(g, (add, first, r, u, prod, dead) => {
    const base = soleProducer(first, add, u, prod);
    if (!base || dead.has(base) || (base.op !== "linear" && !(base.op === "linear_fused" && base.attrs.residual === false))) return undefined;
    const outShape = add.outputs[0]!.shape.join(",");
    const rType = g.inputs.find((v) => v.name === r) ?? prod.get(r)?.outputs.find((o) => o.name === r);
    if (!rType || rType.shape.join(",") !== outShape || base.outputs[0]!.shape.join(",") !== outShape) return undefined;
    Object.assign(add, { op: "linear_fused", inputs: [...base.inputs, r], attrs: { ...fusedAttrs(base), residual: true }, module: base.module });
    return [base];
  });
}

/** scale(dy, s) read only by linear gradients → their alpha. */
function foldScales(g: Graph): number {
  let n = 0;
  const u = uses(g);
  const dead = new Set<Op>();
  for (const sc of g.ops) {
    if (sc.op !== "scale") continue;
    const v = sc.outputs[0]!.name;
    const readers = u.ops.get(v) ?? [];
    if (u.pinned.has(v) || readers.length === 0) continue;
    const slotOf = (op: Op) => (op.op === "linear_grad_input" ? 0 : op.op === "linear_grad_weight" ? 1 : -1);
    if (!readers.every((r) => slotOf(r) >= 0 && r.inputs.filter((x) => x === v).length === 1 && r.inputs[slotOf(r)] === v)) continue;
    for (const r of readers) {
      r.inputs[slotOf(r)] = sc.inputs[0]!;
      r.attrs = { ...r.attrs, alpha: ((r.attrs.alpha as number | undefined) ?? 1) * (sc.attrs.factor as number) };
    }
    dead.add(sc);
    n++;
  }
  g.ops = g.ops.filter((o) => !dead.has(o));
  return n;
}

/** The op of `ops` whose inputs are exactly {x, y} in either order, if one. */
function mulOf(ops: readonly Op[], x: string, y: string): Op | undefined {
  return ops.find((o) => o.op === "mul" && ((o.inputs[0] === x && o.inputs[1] === y) || (o.inputs[0] === y && o.inputs[1] === x)));
}

/** mul(silu(g), u) with its backward → silu_mul and silu_mul_backward (see the file comment). */
function fuseSwiglu(g: Graph): number {
  const u = uses(g);
  const prod = producersOf(g);
  const dead = new Set<Op>();
  const replace = new Map<Op, Op>();
  let n = 0;
  for (const fwd of g.ops) {
    if (fwd.op !== "mul" || dead.has(fwd)) continue;
    for (const [si, ui] of [[0, 1], [1, 0]] as const) {
      const s = fwd.inputs[si]!;
      const up = fwd.inputs[ui]!;
      const sil = prod.get(s);
      if (!sil || sil.op !== "silu" || s === up || g.outputs.includes(s)) continue;
      const gate = sil.inputs[0]!;
      const readers = u.ops.get(s) ?? [];
      // silu(g) read by the forward mul and by the backward's du = mul(dh, s), nothing else.
      const duMul = readers.find((o) => o !== fwd && o.op === "mul");
      if (readers.length !== 2 || !duMul) continue;
      const dh = duMul.inputs[0] === s ? duMul.inputs[1]! : duMul.inputs[0]!;
      const dsMul = mulOf(u.ops.get(dh) ?? [], dh, up);
      if (!dsMul || dsMul === duMul) continue;
      const ds = dsMul.outputs[0]!.name;
      const sb = u.ops.get(ds) ?? [];
      if (sb.length !== 1 || sb[0]!.op !== "silu_backward" || sb[0]!.inputs[0] !== gate || u.pinned.has(ds)) continue;
      const bwd = sb[0]!;
      Object.assign(fwd, { op: "silu_mul", inputs: [gate, up], attrs: {} });
      const fused: Op = { op: "silu_mul_backward", module: bwd.module, inputs: [gate, up, dh], outputs: [bwd.outputs[0]!, duMul.outputs[0]!], attrs: {} };
      // At the earlier of the two ops it replaces: dh, gate and up exist there, dg and du are read later.
      const first = g.ops.indexOf(duMul) < g.ops.indexOf(bwd) ? duMul : bwd;
      replace.set(first, fused);
      for (const o of [sil, duMul, dsMul, bwd]) if (o !== first) dead.add(o);
      if (g.saved) g.saved = g.saved.filter((v) => v !== s);
      n++;
      break;
    }
  }
  g.ops = g.ops.filter((o) => !dead.has(o) || replace.has(o)).map((o) => replace.get(o) ?? o);
  return n;
}

/**
 * silu_mul(linear(x, Wg), linear(x, Wu)), both linears plain (no bias, no LoRA term) of one input
 * and layout → gate_up_silu_mul(x, Wg, Wu), giving gate, up and the activation from
 * one pass over x. It stands where the earlier linear stood (x exists there; every reader of its
 * outputs comes later). Gate and up keep their names and their other readers (the backward).
 */
function fuseGateUp(g: Graph): number {
  return rewriteEach(g, (op, s) => {
    if (op.op !== "silu_mul") return undefined;
    const [gl, ul] = op.inputs.map((v) => s.prod.get(v));
    const plain = (l: Op | undefined): l is Op => l !== undefined && l.op === "linear" && l.inputs.length === 2 && !s.dead.has(l);
    if (!plain(gl) || !plain(ul) || gl === ul || gl.inputs[0] !== ul.inputs[0]) return undefined;
    // One input and silu_mul's one output shape give both weights one shape, in one layout.
    if ((gl.attrs.transposed === true) !== (ul.attrs.transposed === true)) return undefined;
    const [early, late] = s.index.get(gl)! < s.index.get(ul)! ? [gl, ul] : [ul, gl];
    const outputs = [gl.outputs[0]!, ul.outputs[0]!, op.outputs[0]!];
    const attrs = gl.attrs.transposed === true ? { transposed: true } : {};
    Object.assign(early, { op: "gate_up_silu_mul", module: gl.module, inputs: [gl.inputs[0]!, gl.inputs[1]!, ul.inputs[1]!], outputs, attrs });
    return [late, op];
  });
}

/**
 * linear or linear_fused (no bias, no LoRA term) whose input is a silu_mul read by nothing else →
 * silu_mul_linear: the projection computes the activation as it reads it (llama's down_proj).
 */
function fuseSiluMulLinear(g: Graph): number {
  return rewriteEach(g, (op, s) => {
    const plain = op.op === "linear" && op.inputs.length === 2;
    const fused = op.op === "linear_fused" && op.attrs.bias === false && op.attrs.lora_scale === undefined;
    if (!plain && !fused) return undefined;
    const act = liveProducer(op.inputs[0]!, op, s);
    if (!act || act.op !== "silu_mul") return undefined;
    const residual = fused && op.attrs.residual === true;
    Object.assign(op, {
      op: "silu_mul_linear",
      inputs: [act.inputs[0]!, op.inputs[1]!, act.inputs[1]!, ...(residual ? [op.inputs[2]!] : [])],
      attrs: { ...(op.attrs.transposed === true ? { transposed: true } : {}), residual },
    });
    return [act];
  });
}

/**
 * silu_mul_backward(g, u, dh) with dh from linear_grad_input (unscaled) read by nothing else →
 * linear_grad_silu_mul(dy, W, g, u): the dX matmul applies SwiGLU's backward as it stores.
 */
function fuseGradSiluMul(g: Graph): number {
  return rewriteEach(g, (op, s) => {
    if (op.op !== "silu_mul_backward") return undefined;
    const dx = liveProducer(op.inputs[2]!, op, s);
    if (!dx || dx.op !== "linear_grad_input" || !unscaled(dx)) return undefined;
    Object.assign(op, {
      op: "linear_grad_silu_mul",
      inputs: [dx.inputs[0]!, dx.inputs[1]!, op.inputs[0]!, op.inputs[1]!],
      attrs: dx.attrs.transposed === true ? { transposed: true } : {},
    });
    return [dx];
  });
}

/** At most this many plain gradients join a sum of linear gradients (each costs the kernel a binding). */
const MAX_ADDENDS = 2;

/**
 * add_grad whose terms include gradients linear_grad_input gives nothing else → one
 * linear_grad_input_sum: the products summed in one matmul's accumulators, the other terms (at
 * most MAX_ADDENDS) added as it stores. Only unscaled gradients join (a folded alpha keeps its own
 * op and is an addend).
 */
function fuseGradSums(g: Graph): number {
  return rewriteEach(g, (sum, s) => {
    if (sum.op !== "add_grad" || sum.inputs.length < 2) return undefined;
    const terms: Op[] = [];
    const addends: string[] = [];
    for (const v of sum.inputs) {
      const p = liveProducer(v, sum, s);
      if (p && p.op === "linear_grad_input" && unscaled(p)) terms.push(p);
      else addends.push(v);
    }
    if (terms.length === 0 || addends.length > MAX_ADDENDS) return undefined;
    const transposed = terms.map((t) => (t.attrs.transposed === true ? 1 : 0));
    Object.assign(sum, {
      op: "linear_grad_input_sum",
      inputs: [...terms.flatMap((t) => [t.inputs[0]!, t.inputs[1]!]), ...addends],
      attrs: { terms: terms.length, ...(transposed.some((t) => t === 1) ? { transposed } : {}) },
    });
    return terms;
  });
}

/**
 * add_grad(r, dx) with dx a norm backward's, read by nothing else → the norm backward with r as
 * its `add`, where r already exists at the norm's place in the order (the residual stream's
 * gradient from the layer above, in a pre-norm block).
 */
function fuseNormAdds(g: Graph): number {
  return rewriteEach(g, (sum, s) => {
    if (sum.op !== "add_grad" || sum.inputs.length !== 2) return undefined;
    for (const [di, ri] of [[1, 0], [0, 1]] as const) {
      const dx = sum.inputs[di]!;
      const r = sum.inputs[ri]!;
      const norm = liveProducer(dx, sum, s);
      if (!norm || (norm.op !== "rmsnorm_backward" && norm.op !== "layernorm_backward") || norm.inputs.length !== 3 || norm.attrs.dx !== true) continue;
      // dx is the norm's first output; r must be made before the norm runs (or be a graph input).
      if (norm.outputs[0]!.name !== dx || r === dx) continue;
      const rp = s.prod.get(r);
      if (rp && !(s.index.get(rp)! < s.index.get(norm)!)) continue;
      if (!rp && !g.inputs.some((v) => v.name === r) && !g.params.some((p) => p.name === r)) continue;
      norm.inputs = [...norm.inputs, r];
      norm.outputs = [{ ...norm.outputs[0]!, name: sum.outputs[0]!.name }, ...norm.outputs.slice(1)];
      return [sum];
    }
    return undefined;
  });
}

/**
 * cross_entropy(logits, labels) and its cross_entropy_backward(logits, labels, dloss) →
 * cross_entropy_grad at the forward's place: the loss and dlogits from one pass over the logits.
 * dloss must exist there: made earlier, a graph input, or a constant (a `full` without inputs, the
 * autodiff seed), which then moves to just before it.
 */
function fuseLossGrad(g: Graph): number {
  let n = 0;
  for (const bwd of [...g.ops]) {
    if (bwd.op !== "cross_entropy_backward") continue;
    const [logits, labels, dloss] = bwd.inputs as [string, string, string];
    const fwd = g.ops.find((o) => o.op === "cross_entropy" && o.inputs[0] === logits && o.inputs[1] === labels && o.attrs.ignore_index === bwd.attrs.ignore_index);
    if (!fwd) continue;
    const seed = g.ops.find((o) => o.outputs.some((v) => v.name === dloss));
    if (seed && g.ops.indexOf(seed) > g.ops.indexOf(fwd)) {
      if (seed.op !== "full" || seed.inputs.length !== 0) continue;
      g.ops.splice(g.ops.indexOf(seed), 1);
      g.ops.splice(g.ops.indexOf(fwd), 0, seed);
    } else if (!seed && !g.inputs.some((v) => v.name === dloss)) continue;
    Object.assign(fwd, { op: "cross_entropy_grad", inputs: [logits, labels, dloss], outputs: [fwd.outputs[0]!, bwd.outputs[0]!] });
    g.ops = g.ops.filter((o) => o !== bwd);
    if (g.saved) g.saved = savedAfterLossGrad(g, fwd, [logits, labels], bwd.outputs[0]!.name);
    n++;
  }
  return n;
}

/**
 * `saved` (forward values the backward reads, in definition order) once the fused loss op makes
 * dlogits in the forward: the backward starts at the first op after it making only gradients
 * (autodiff's grad.* names); `dropped` stay only if it still reads them, dlogits joins if it does.
 */
function savedAfterLossGrad(g: Graph, fused: Op, dropped: readonly string[], dlogits: string): string[] {
  const at = g.ops.indexOf(fused);
  const from = g.ops.findIndex((o, i) => i > at && o.outputs.every((v) => v.name.startsWith("grad.")));
  const later = (v: string): boolean => from >= 0 && g.ops.slice(from).some((o) => o.inputs.includes(v));
  const kept = g.saved!.filter((v) => !dropped.includes(v) || later(v));
  if (!later(dlogits) || kept.includes(dlogits)) return kept;
  const order = new Map<string, number>(g.inputs.map((v, i) => [v.name, i - g.inputs.length]));
  g.ops.forEach((o, i) => o.outputs.forEach((v) => order.set(v.name, i)));
  return [...kept, dlogits].sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0));
}

export interface FuseStats {
  lora: number;
  residual: number;
  scales: number;
  swiglu: number;
  gradSums: number;
  normAdds: number;
  gateUp: number;
  siluMulLinear: number;
  gradSiluMul: number;
  lossGrad: number;
}

export function fuseGraph(graph: Graph): { graph: Graph; stats: FuseStats } {
  const g = cloneGraph(graph);
  const lora = fuseLora(g);
  const residual = fuseResidual(g);
  const scales = foldScales(g);
  const swiglu = fuseSwiglu(g);
  const gateUp = fuseGateUp(g);
  const siluMulLinear = fuseSiluMulLinear(g);
  const gradSiluMul = fuseGradSiluMul(g);
  const gradSums = fuseGradSums(g);
  const normAdds = fuseNormAdds(g);
  const lossGrad = fuseLossGrad(g);
  return { graph: g, stats: { lora, residual, scales, swiglu, gradSums, normAdds, gateUp, siluMulLinear, gradSiluMul, lossGrad } };
}

export function fuse(graph: Graph, ctx: PassContext): Graph {
  return ctx.fuse === false ? graph : fuseGraph(graph).graph;
}
