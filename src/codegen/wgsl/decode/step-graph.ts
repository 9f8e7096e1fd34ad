/**
 * The decode step: the forward graph specialised to one new position of one sequence, with a KV
 * cache. Derived from the compiled forward graph, so whatever the methods injected (LoRA branches,
 * IA3 scales, adapters, prefix keys/values, prompt rows) runs unchanged:
 *
 * - Ops that read no graph input (prefix encoders, prompt-tuning rows, their reparameterisations)
 *   form the `setup` graph; the runtime computes its outputs once and the step reads them as
 *   constant parameters.
 * - Every other op runs for one position: each sequence dimension (any dim that mentions T,
 *   including T+P) becomes 1, and B becomes 1.
 * - Each causal attention op becomes kv_cache_write of the new key and of the new value into the
 *   caches (graph inputs [maxLen, Hkv, hd] that persist between steps) at `positions`, then
 *   attention_decode of the one query over cache rows 0..pos (and the prefix, if any).
 * - A concat along the sequence that prepends constant rows (prompt tuning's virtual tokens)
 *   becomes a row pick: the rows and the new token's embedding stacked as a [P+1, D] table, and
 *   row min(pos, P) taken by `decode.row`. The runtime runs the P virtual positions first.
 *
 * The step reads `input_ids` [1,1], `positions` [1,1] (the absolute position, virtual tokens
 * counted) and, with prompt rows, `decode.row` [1,1]; it outputs `logits` [1,1,V].
 */
import { inferOp, opDef, verify, type Attrs, type Dim, type Graph, type Op, type Param, type TensorType, type ValueDecl } from "../../../ir/index.js";
import { evalDim } from "../program/shapes.js";
import { inferenceGraph } from "./inference.js";

export const ROW_INPUT = "decode.row";

export interface CacheDecl {
  /** The graph input holding the cache: `<attention output>.k_cache` or `.v_cache`. */
  name: string;
  /** [maxLen, Hkv, hd]. */
  shape: [number, number, number];
}

export interface DecodeStep {
  /** One position of one sequence; every size concrete. */
  graph: Graph;
  /** Ops that read parameters only; its outputs are the step graph's constant parameters. */
  setup: Graph;
  caches: CacheDecl[];
  /** Virtual tokens prompt methods prepend; the runtime runs positions 0..P-1 before any token. */
  virtualTokens: number;
  /** Cache rows: positions 0..maxLen-1, virtual tokens included. */
  maxLen: number;
}

const mentionsT = (d: Dim): boolean => typeof d === "string" && /(^|[^A-Za-z0-9_])T([^A-Za-z0-9_]|$)/.test(d);

/** A dimension at one position of one row: anything along the sequence is 1. */
function stepDim(d: Dim): number {
  return mentionsT(d) ? 1 : evalDim(d, { B: 1 });
}

function stepAttrs(op: Op): Attrs {
  const def = opDef(op.op);
  const out: Attrs = { ...op.attrs };
  for (const [k, spec] of Object.entries(def?.attrs ?? {})) {
    const v = op.attrs[k];
    if (v === undefined) continue;
    if (spec.kind === "dim") out[k] = stepDim(v as Dim);
    if (spec.kind === "dims") out[k] = (v as Dim[]).map(stepDim);
  }
  return out;
}

/** How long the cache is: room for `tokens` tokens after the virtual ones, at most `maxPositions` rows. */
export interface DecodeSize {
  tokens: number;
  maxPositions?: number;
}

export function decodeStepGraph(forward: Graph, size: DecodeSize): DecodeStep {
  const g = inferenceGraph(forward);
  const dynamic = new Set(g.inputs.map((v) => v.name));
  const stepOps: Op[] = [];
  const setupOps: Op[] = [];
  for (const op of g.ops) {
    if (op.inputs.some((v) => dynamic.has(v))) {
      stepOps.push(op);
      for (const o of op.outputs) dynamic.add(o.name);
    } else setupOps.push(op);
  }
  const setupOut = new Map(setupOps.flatMap((op) => op.outputs.map((o) => [o.name, o] as const)));
  const constants: ValueDecl[] = [];
  for (const op of stepOps)
    for (const v of op.inputs) {
      const c = setupOut.get(v);
      if (c && !constants.includes(c)) constants.push(c);
    }

  const types = new Map<string, TensorType>();
  for (const p of g.params) types.set(p.name, { dtype: p.dtype, shape: p.shape });
  const constParams: Param[] = constants.map((c) => {
    if (c.shape.some(mentionsT)) throw new Error(`decode: ${c.name} ${JSON.stringify(c.shape)} reads no input yet has a sequence dimension`);
    const shape = c.shape.map((d) => evalDim(d, { B: 1 }));
    types.set(c.name, { dtype: c.dtype, shape });
    return { name: c.name, shape, dtype: c.dtype, trainable: false, origin: "constant" };
  });
  const stepInput = (name: string): ValueDecl => ({ name, dtype: "i32", shape: [1, 1] });
  const inputs: ValueDecl[] = [stepInput("input_ids"), stepInput("positions")];
  for (const v of inputs) types.set(v.name, { dtype: v.dtype, shape: v.shape });

  const ops: Op[] = [];
  const emit = (op: string, module: string, ins: string[], attrs: Attrs, names: string[]): void => {
    const r = inferOp(op, ins.map((v) => types.get(v)!), attrs);
    if (typeof r === "string") throw new Error(`decode: ${op} (${names[0]}) at one position: ${r}`);
    const outputs = r.map((t, i) => ({ name: names[i]!, dtype: t.dtype, shape: t.shape }));
    outputs.forEach((o) => types.set(o.name, { dtype: o.dtype, shape: o.shape }));
    ops.push({ op, module, inputs: ins, outputs, attrs });
  };

  const declared = new Map<string, Dim[]>([...g.inputs, ...g.ops.flatMap((o) => o.outputs)].map((v) => [v.name, v.shape]));
  let virtualTokens: number | undefined;
  for (const op of stepOps) if (prependsRows(op)) virtualTokens = prependedRows(op, dynamic, types, virtualTokens);
  const maxLen = Math.min((virtualTokens ?? 0) + size.tokens, size.maxPositions ?? Infinity);
  if (!Number.isInteger(maxLen) || maxLen <= (virtualTokens ?? 0)) throw new Error(`decode: a cache of ${maxLen} rows leaves no room for a token after ${virtualTokens ?? 0} virtual ones`);
  const caches: CacheDecl[] = [];
  for (const op of stepOps) {
    const out = op.outputs[0]!.name;
    if (op.op === "attention") {
      if (op.attrs["causal"] !== true) throw new Error(`decode: attention ${out} is not causal; only causal attention decodes with a KV cache`);
      const [q, k, v, pk, pv] = op.inputs as [string, string, string, string?, string?];
      for (const x of [k, v]) if (!dynamic.has(x)) throw new Error(`decode: attention ${out} reads keys/values ${x} that do not come from the sequence`);
      const [, , hkv, hd] = types.get(k)!.shape as number[];
      const cache = (which: "k" | "v", x: string): string => {
        const c: CacheDecl = { name: `${out}.${which}_cache`, shape: [maxLen, hkv!, hd!] };
        caches.push(c);
        inputs.push({ name: c.name, dtype: "f32", shape: c.shape });
        types.set(c.name, { dtype: "f32", shape: c.shape });
        emit("kv_cache_write", op.module, [c.name, x, "positions"], {}, [`${c.name}.next`]);
        return `${c.name}.next`;
      };
      const kc = cache("k", k);
      const vc = cache("v", v);
      emit("attention_decode", op.module, [q, kc, vc, "positions", ...(pk && pv ? [pk, pv] : [])], { scale: op.attrs["scale"]! }, [out]);
      continue;
    }
    if (prependsRows(op)) {
      if (!types.has(ROW_INPUT)) {
        inputs.push(stepInput(ROW_INPUT));
        types.set(ROW_INPUT, { dtype: "i32", shape: [1, 1] });
      }
      emit("concat", op.module, op.inputs, { axis: 1 }, [`${out}.rows`]);
      const [, n, d] = types.get(`${out}.rows`)!.shape as number[];
      emit("reshape", op.module, [`${out}.rows`], { shape: [n!, d!] }, [`${out}.table`]);
      emit("embedding", op.module, [ROW_INPUT, `${out}.table`], {}, [out]);
      continue;
    }
    const seqAxis = op.op === "slice" && mentionsT(declared.get(op.inputs[0]!)?.[axisAt(op, declared)] ?? 0);
    if (op.op === "mean_seq" || seqAxis) throw new Error(`decode: ${op.op} (${out}) works across positions and has no one-position form`);
    emit(op.op, op.module, op.inputs, stepAttrs(op), op.outputs.map((o) => o.name));
  }

  const read = new Set(ops.flatMap((op) => op.inputs));
  const graph: Graph = {
    name: `${g.name} decode step`,
    inputs: inputs.filter((v) => read.has(v.name)),
    params: [...g.params.filter((p) => read.has(p.name)), ...constParams],
    ops,
    outputs: ["logits"],
  };
  const errs = verify(graph);
  if (errs.length) throw new Error(`decode: the step graph is ill-formed:\n${errs.join("\n")}`);

  const setupRead = new Set(setupOps.flatMap((op) => op.inputs));
  const setup: Graph = {
    name: `${g.name} decode constants`,
    inputs: [],
    params: g.params.filter((p) => setupRead.has(p.name)),
    ops: setupOps,
    outputs: constants.map((c) => c.name),
  };
  return { graph, setup, caches, virtualTokens: virtualTokens ?? 0, maxLen };
}

/** A concat along the sequence axis (prompt methods' virtual tokens). */
function prependsRows(op: Op): boolean {
  if (op.op !== "concat") return false;
  const shape = op.outputs[0]!.shape;
  const a = op.attrs["axis"] as number;
  return mentionsT(shape[a < 0 ? a + shape.length : a] ?? 0);
}

/** The slice's axis, made non-negative. */
function axisAt(op: Op, declared: ReadonlyMap<string, Dim[]>): number {
  const a = op.attrs["axis"] as number;
  return a < 0 ? a + (declared.get(op.inputs[0]!)?.length ?? 0) : a;
}

/** P for a concat that prepends P constant rows to the sequence (axis 1 of [B, T, D]). */
function prependedRows(op: Op, dynamic: ReadonlySet<string>, types: ReadonlyMap<string, TensorType>, known: number | undefined): number {
  const out = op.outputs[0]!;
  const axis = op.attrs["axis"] as number;
  const last = op.inputs[op.inputs.length - 1]!;
  const rows = op.inputs.slice(0, -1);
  if (out.shape.length !== 3 || (axis !== 1 && axis !== -2) || !dynamic.has(last) || rows.some((v) => dynamic.has(v)))
    throw new Error(`decode: concat ${out.name} along the sequence must prepend constant rows to [B,T,D]`);
  const P = rows.reduce((a, v) => a + (types.get(v)!.shape[1] as number), 0);
  if (known !== undefined && known !== P) throw new Error(`decode: prompt methods prepend ${known} and ${P} rows in different places`);
  return P;
}
