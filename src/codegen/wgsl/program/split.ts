/**
 * Frozen weights larger than the device's largest storage binding (llvmpipe: 128 MiB; a 32000 x
 * 4096 f32 table is 500 MiB), split by rows into parts that fit, before the program is planned.
 * Every reader is rewritten to work part by part, with the same arithmetic:
 *  - linear(x, W) with W [N,K]: each part gives a block of output columns, joined by concat; with
 *    W stored [K,N] (transposed, GPT-2's Conv1D) each part takes its columns of x and the partial
 *    products are summed; a linear_fused is taken apart the same way, its bias, LoRA term and
 *    residual added after;
 *  - linear_grad_input(dy, W): the mirror image (columns of dy in, dx summed; or dx in column
 *    blocks, joined); a linear_grad_input_sum is first taken apart into its terms and their sum,
 *    a silu_mul_linear into its silu_mul and linear, a gate_up_silu_mul into its two linears and
 *    silu_mul, a linear_grad_silu_mul into its dX and SwiGLU backward;
 *  - embedding(ids, W): each part looks up the ids in its row block (embedding_rows, zeros for the
 *    rest), and the parts are summed (exactly one is non-zero per row).
 * A part is a graph parameter named `W[a:b]` that the runtime fills from rows a..b of W. Trainable
 * tensors, transposed (GPT-2 Conv1D) weights and any other reader are refused with an error that
 * names the tensor: none of them is that large in the models pefc knows.
 */
import { cloneGraph, numel, type Graph, type Op, type Param, type ValueDecl } from "../../../ir/index.js";
import { DeviceLimitError } from "../caps.js";

export interface RowPart {
  name: string;
  /** The whole tensor's name and the rows this part holds. */
  of: string;
  start: number;
  rows: number;
}

/** Row blocks of at most `maxBytes` for a [rows, cols] tensor of `elemBytes`-byte elements. */
export function rowBlocks(rows: number, cols: number, elemBytes: number, maxBytes: number): { start: number; rows: number }[] {
  const per = Math.floor(maxBytes / (cols * elemBytes));
  if (per < 1) throw new Error(`program: one row of ${cols} values is larger than the device's largest storage binding (${maxBytes} bytes)`);
  const out: { start: number; rows: number }[] = [];
  for (let a = 0; a < rows; a += per) out.push({ start: a, rows: Math.min(per, rows - a) });
  return out;
}

/**
 * `graphs` with every frozen weight whose storage (`elemBytes(name)` bytes an element) exceeds
 * `maxBytes` split into parts. Graphs without such a weight come back as they are.
 */
export function splitLargeWeights(graphs: readonly Graph[], elemBytes: (name: string) => number, maxBytes: number): { graphs: Graph[]; parts: RowPart[] } {
  const big = new Map<string, Param>();
  for (const g of graphs)
    for (const p of g.params) {
      const bytes = numel(p.shape) * elemBytes(p.name);
      if (bytes <= maxBytes) continue;
      if (p.trainable || p.shape.length !== 2)
        throw new DeviceLimitError(
          `${p.trainable ? "trainable " : ""}tensor ${p.name} [${p.shape.join(", ")}] takes ${bytes} bytes, more than the device's largest storage binding (${maxBytes} bytes), and only frozen 2-D weights can be split; keep it frozen, or use a device with larger bindings`,
          p.name,
        );
      big.set(p.name, p);
    }
  if (big.size === 0) return { graphs: [...graphs], parts: [] };
  const parts: RowPart[] = [];
  const partsOf = new Map<string, RowPart[]>();
  for (const p of big.values()) {
    const ps = rowBlocks(p.shape[0]!, p.shape[1]!, elemBytes(p.name), maxBytes).map((b) => ({ name: `${p.name}[${b.start}:${b.start + b.rows}]`, of: p.name, ...b }));
    partsOf.set(p.name, ps);
    parts.push(...ps);
  }
  return { graphs: graphs.map((g) => rewrite(g, big, partsOf)), parts };
}

function rewrite(graph: Graph, big: ReadonlyMap<string, Param>, partsOf: ReadonlyMap<string, RowPart[]>): Graph {
  if (!graph.params.some((p) => big.has(p.name))) return graph;
  const g = cloneGraph(graph);
  g.params = g.params.flatMap((p) => {
    const ps = partsOf.get(p.name);
    return ps ? ps.map((q): Param => ({ ...p, name: q.name, shape: [q.rows, p.shape[1]!] })) : [p];
  });
  const rewriteOp = (op: Op): Op[] => {
    const slot = op.inputs.findIndex((v) => big.has(v));
    if (slot < 0) return [op];
    if (op.op === "linear_grad_input_sum") return unfuseGradSum(op).flatMap(rewriteOp);
    if (op.op === "silu_mul_linear" && slot === 1) return unfuseSiluMulLinear(op, big.get(op.inputs[1]!)!).flatMap(rewriteOp);
    if (op.op === "gate_up_silu_mul") return unfuseGateUp(op).flatMap(rewriteOp);
    if (op.op === "linear_grad_silu_mul" && slot === 1) return unfuseGradSiluMul(op).flatMap(rewriteOp);
    const w = op.inputs[slot]!;
    if (op.inputs.filter((v) => v === w).length > 1 || op.inputs.some((v, i) => i !== slot && big.has(v)) || slot !== 1 || (op.op === "embedding" && op.attrs.transposed === true))
      throw new DeviceLimitError(`${w} is too large for one storage binding and ${op.op} (${op.outputs[0]?.name ?? "?"}) reads it in a way that cannot be split; use a device with larger bindings`, w);
    const ps = partsOf.get(w)!;
    switch (op.op) {
      case "linear":
      case "linear_fused":
        return splitLinear(op, ps);
      case "linear_grad_input":
        return splitGradInput(op, ps);
      case "embedding":
        return splitEmbedding(op, ps);
      default:
        throw new DeviceLimitError(`${w} is too large for one storage binding and ${op.op} (${op.outputs[0]?.name ?? "?"}) cannot read it in parts; use a device with larger bindings`, w);
    }
  };
  g.ops = g.ops.flatMap(rewriteOp);
  return g;
}

/** A silu_mul_linear as silu_mul, then the linear (with its residual, as linear_fused), W being `w`. */
function unfuseSiluMulLinear(op: Op, w: Param): Op[] {
  const y = op.outputs[0]!;
  const [gate, weight, up, r] = op.inputs as [string, string, string, string | undefined];
  const t = op.attrs.transposed === true;
  const h: ValueDecl = { name: `${y.name}.act`, dtype: "f32", shape: at(y.shape, t ? w.shape[0]! : w.shape[1]!) };
  const act: Op = { op: "silu_mul", module: op.module, inputs: [gate, up], outputs: [h], attrs: {} };
  if (!r) return [act, { op: "linear", module: op.module, inputs: [h.name, weight], outputs: [y], attrs: t ? { transposed: true } : {} }];
  return [act, { op: "linear_fused", module: op.module, inputs: [h.name, weight, r], outputs: [y], attrs: { ...(t ? { transposed: true } : {}), bias: false, residual: true } }];
}

/** A gate_up_silu_mul as its two linears, then silu_mul. */
function unfuseGateUp(op: Op): Op[] {
  const [x, wg, wu] = op.inputs as [string, string, string];
  const [gate, up, act] = op.outputs as [ValueDecl, ValueDecl, ValueDecl];
  const attrs: Op["attrs"] = op.attrs.transposed === true ? { transposed: true } : {};
  return [
    { op: "linear", module: op.module, inputs: [x, wg], outputs: [gate], attrs },
    { op: "linear", module: op.module, inputs: [x, wu], outputs: [up], attrs: { ...attrs } },
    { op: "silu_mul", module: op.module, inputs: [gate.name, up.name], outputs: [act], attrs: {} },
  ];
}

/** A linear_grad_silu_mul as linear_grad_input, then silu_mul_backward. */
function unfuseGradSiluMul(op: Op): Op[] {
  const [dy, w, gate, up] = op.inputs as [string, string, string, string];
  const dh: ValueDecl = { name: `${op.outputs[0]!.name}.dh`, dtype: "f32", shape: op.outputs[0]!.shape };
  return [
    { op: "linear_grad_input", module: op.module, inputs: [dy, w], outputs: [dh], attrs: op.attrs.transposed === true ? { transposed: true } : {} },
    { op: "silu_mul_backward", module: op.module, inputs: [gate, up, dh.name], outputs: [...op.outputs], attrs: {} },
  ];
}

/** A linear_grad_input_sum as the linear_grad_input ops and the add_grad it stands for. */
function unfuseGradSum(op: Op): Op[] {
  const dx = op.outputs[0]!;
  const T = op.attrs.terms as number;
  const tr = (op.attrs.transposed as number[] | undefined) ?? [];
  const out: Op[] = [];
  const terms = Array.from({ length: T }, (_, t) => {
    const v: ValueDecl = { name: `${dx.name}.term${t}`, dtype: "f32", shape: dx.shape };
    out.push({ op: "linear_grad_input", module: op.module, inputs: [op.inputs[2 * t]!, op.inputs[2 * t + 1]!], outputs: [v], attrs: tr[t] === 1 ? { transposed: true } : {} });
    return v.name;
  });
  out.push({ op: "add_grad", module: op.module, inputs: [...terms, ...op.inputs.slice(2 * T)], outputs: [dx], attrs: {} });
  return out;
}

const at = (shape: ValueDecl["shape"], last: number): ValueDecl["shape"] => [...shape.slice(0, -1), last];

/** y = concat over parts of x·W_cᵀ, then the bias, LoRA term and residual of a linear_fused. */
function splitLinear(op: Op, ps: readonly RowPart[]): Op[] {
  const y = op.outputs[0]!;
  const [x, , ...extras] = op.inputs;
  const fused = op.op === "linear_fused";
  const bias = fused ? op.attrs.bias === true : extras.length > 0;
  const lora = fused && typeof op.attrs.lora_scale === "number";
  const residual = fused && op.attrs.residual === true;
  const mk = (o: string, inputs: string[], outputs: ValueDecl[], attrs: Op["attrs"] = {}): Op => ({ op: o, module: op.module, inputs, outputs, attrs });
  const out: Op[] = [];
  const steps = (bias ? 1 : 0) + (lora ? 1 : 0) + (residual ? 1 : 0);
  let k = 0;
  const next = (): ValueDecl => ({ name: ++k > steps ? y.name : `${y.name}.part${k}`, dtype: "f32", shape: y.shape });
  let cur = next();
  if (op.attrs.transposed === true) {
    // W [K,N] by rows = blocks of K: y = Σ x[…, a:b]·W_c.
    const terms = ps.map((q, c) => {
      const xs: ValueDecl = { name: `${y.name}.x${c}`, dtype: "f32", shape: at(y.shape, q.rows) };
      const t: ValueDecl = { name: `${y.name}.rows${c}`, dtype: "f32", shape: y.shape };
      out.push(mk("slice", [x!], [xs], { axis: -1, start: q.start, end: q.start + q.rows }), mk("linear", [xs.name, q.name], [t], { transposed: true }));
      return t.name;
    });
    out.push(mk("add_grad", terms, [cur]));
  } else {
    const blocks = ps.map((q, c) => {
      const v: ValueDecl = { name: `${y.name}.rows${c}`, dtype: "f32", shape: at(y.shape, q.rows) };
      out.push(mk("linear", [x!, q.name], [v]));
      return v.name;
    });
    out.push(mk("concat", blocks, [cur], { axis: -1 }));
  }
  let e = 0;
  if (bias) {
    const v = next();
    out.push(mk("add", [cur.name, extras[e++]!], [v]));
    cur = v;
  }
  if (lora) {
    const [u, B] = [extras[e++]!, extras[e++]!];
    const t: ValueDecl = { name: `${y.name}.lora`, dtype: "f32", shape: y.shape };
    const ts: ValueDecl = { name: `${y.name}.lora_scaled`, dtype: "f32", shape: y.shape };
    const v = next();
    const factor = op.attrs.lora_scale as number;
    const scaled =
      op.attrs.lora_ranknum === true
        ? mk("rank_scale", [t.name, extras[e++]!], [ts], { factor, eps: op.attrs.lora_eps as number })
        : mk("scale", [t.name], [ts], { factor });
    out.push(mk("linear", [u, B], [t]), scaled, mk("add", [cur.name, ts.name], [v]));
    cur = v;
  }
  if (residual) {
    const v = next();
    out.push(mk("add", [cur.name, extras[e++]!], [v]));
    cur = v;
  }
  return out;
}

/** dx = Σ over parts of alpha·dy[…, a:b]·W_c; transposed (W [K,N] by blocks of K): dx in column blocks, joined. */
function splitGradInput(op: Op, ps: readonly RowPart[]): Op[] {
  const dx = op.outputs[0]!;
  const dy = op.inputs[0]!;
  const out: Op[] = [];
  if (op.attrs.transposed === true) {
    const blocks = ps.map((q, c) => {
      const v: ValueDecl = { name: `${dx.name}.rows${c}`, dtype: "f32", shape: at(dx.shape, q.rows) };
      out.push({ op: "linear_grad_input", module: op.module, inputs: [dy, q.name], outputs: [v], attrs: { ...op.attrs } });
      return v.name;
    });
    out.push({ op: "concat", module: op.module, inputs: blocks, outputs: [dx], attrs: { axis: -1 } });
    return out;
  }
  const terms = ps.map((q, c) => {
    const s: ValueDecl = { name: `${dx.name}.dy${c}`, dtype: "f32", shape: at(dx.shape, q.rows) };
    const t: ValueDecl = { name: `${dx.name}.rows${c}`, dtype: "f32", shape: dx.shape };
    out.push(
      { op: "slice", module: op.module, inputs: [dy], outputs: [s], attrs: { axis: -1, start: q.start, end: q.start + q.rows } },
      { op: "linear_grad_input", module: op.module, inputs: [s.name, q.name], outputs: [t], attrs: { ...op.attrs } },
    );
    return t.name;
  });
  out.push({ op: "add_grad", module: op.module, inputs: terms, outputs: [dx], attrs: {} });
  return out;
}

/** out = Σ over parts of the part's rows looked up (zeros for ids outside it). */
function splitEmbedding(op: Op, ps: readonly RowPart[]): Op[] {
  const y = op.outputs[0]!;
  const out: Op[] = [];
  const terms = ps.map((q, c) => {
    const v: ValueDecl = { name: `${y.name}.rows${c}`, dtype: "f32", shape: y.shape };
    out.push({ op: "embedding_rows", module: op.module, inputs: [op.inputs[0]!, q.name], outputs: [v], attrs: { start: q.start } });
    return v.name;
  });
  out.push({ op: "add_grad", module: op.module, inputs: terms, outputs: [y], attrs: {} });
  return out;
}
