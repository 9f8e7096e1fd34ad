/**
 * Building and rewriting graphs. Model builders append ops; passes open an existing graph, move the
 * insertion point next to the op they wrap, add parameters and ops, and redirect uses — the LoRA
 * pattern is `at(after y) → A, B, scale, add → replaceUses(y, y')`. Output types always come from
 * the op table, so a builder can never record a shape the rule did not produce. Misuse (unknown
 * value, duplicate name, ill-typed op) is a compiler bug and throws.
 */
import { cloneGraph, type Graph, type Op, type Param, type ParamInit, type ValueDecl } from "./graph.js";
import { retypeGraph } from "./infer.js";
import type { Attrs } from "./opdef.js";
import { inferOp } from "./ops.js";
import { formatType, isDim, normDim, shapeEq, type DType, type Shape, type TensorType } from "./shape.js";

export interface ParamSpec {
  name: string;
  shape: number[];
  dtype?: DType;
  trainable?: boolean;
  origin?: string;
  init?: ParamInit;
}

export class GraphBuilder {
  private readonly g: Graph;
  private readonly types = new Map<string, TensorType>();
  /** Index in `g.ops` where the next op goes. */
  private cursor: number;

  constructor(name: string) {
    this.g = { name, inputs: [], params: [], ops: [], outputs: [] };
    this.cursor = 0;
  }

  /** Opens a copy of `graph` for rewriting, with the insertion point at the end. */
  static edit(graph: Graph): GraphBuilder {
    const b = new GraphBuilder(graph.name);
    const g = cloneGraph(graph);
    Object.assign(b.g, g);
    for (const v of g.inputs) b.types.set(v.name, { dtype: v.dtype, shape: v.shape });
    for (const p of g.params) b.types.set(p.name, { dtype: p.dtype, shape: p.shape });
    for (const op of g.ops) for (const o of op.outputs) b.types.set(o.name, { dtype: o.dtype, shape: o.shape });
    b.cursor = g.ops.length;
    return b;
  }

  has(name: string): boolean {
    return this.types.has(name);
  }

  typeOf(name: string): TensorType {
    const t = this.types.get(name);
    if (!t) throw new Error(`unknown value '${name}'`);
    return t;
  }

  /** `base` if free, else `base_1`, `base_2`... */
  fresh(base: string): string {
    if (!this.has(base)) return base;
    for (let i = 1; ; i++) if (!this.has(`${base}_${i}`)) return `${base}_${i}`;
  }

  private claim(name: string): void {
    if (this.types.has(name)) throw new Error(`duplicate value name '${name}'`);
  }

  input(name: string, dtype: DType, shape: Shape): string {
    this.claim(name);
    if (!shape.every(isDim)) throw new Error(`bad shape for input '${name}'`);
    const decl: ValueDecl = { name, dtype, shape: shape.map(normDim) };
    this.g.inputs.push(decl);
    this.types.set(name, { dtype, shape: decl.shape });
    return name;
  }

  param(spec: ParamSpec): string {
    this.claim(spec.name);
    if (!spec.shape.every((d) => Number.isInteger(d) && d > 0)) throw new Error(`bad shape for param '${spec.name}'`);
    const p: Param = {
      name: spec.name,
      shape: [...spec.shape],
      dtype: spec.dtype ?? "f32",
      trainable: spec.trainable ?? false,
      origin: spec.origin ?? "base",
    };
    if (spec.init) p.init = spec.init;
    this.g.params.push(p);
    this.types.set(p.name, { dtype: p.dtype, shape: p.shape });
    return p.name;
  }

  /** Appends a single-output op at the insertion point and returns its output's name. */
  op(kind: string, module: string, inputs: string[], attrs: Attrs, name: string): string {
    return this.opN(kind, module, inputs, attrs, [name])[0]!;
  }

  /** Appends an op with one named output per inferred output (split). */
  opN(kind: string, module: string, inputs: string[], attrs: Attrs, names: string[]): string[] {
    const ts = inputs.map((v) => this.typeOf(v));
    const res = inferOp(kind, ts, attrs);
    if (typeof res === "string")
      throw new Error(`${kind} at ${module || "<root>"}: ${res} (inputs ${inputs.map((v, i) => `${v}: ${formatType(ts[i]!)}`).join(", ")})`);
    if (res.length !== names.length) throw new Error(`${kind} at ${module}: ${res.length} outputs, ${names.length} names`);
    names.forEach((n) => this.claim(n));
    const op: Op = {
      op: kind,
      module,
      inputs: [...inputs],
      outputs: res.map((t, i) => ({ name: names[i]!, dtype: t.dtype, shape: t.shape })),
      attrs: { ...attrs },
    };
    this.g.ops.splice(this.cursor++, 0, op);
    res.forEach((t, i) => this.types.set(names[i]!, t));
    return names;
  }

  output(name: string): void {
    this.typeOf(name);
    if (!this.g.outputs.includes(name)) this.g.outputs.push(name);
  }

  /** The op defining `value`, or undefined for inputs and parameters. */
  producer(value: string): Op | undefined {
    return this.g.ops.find((op) => op.outputs.some((o) => o.name === value));
  }

  uses(value: string): { op: Op; slot: number }[] {
    const out: { op: Op; slot: number }[] = [];
    for (const op of this.g.ops) op.inputs.forEach((v, slot) => v === value && out.push({ op, slot }));
    return out;
  }

  /** Moves the insertion point just past the latest definition among `values`. */
  after(...values: string[]): this {
    let at = 0;
    for (const v of values) {
      this.typeOf(v);
      const i = this.g.ops.findIndex((op) => op.outputs.some((o) => o.name === v));
      at = Math.max(at, i + 1);
    }
    this.cursor = at;
    return this;
  }

  /** Moves the insertion point to just before `op`. */
  before(op: Op): this {
    const i = this.g.ops.indexOf(op);
    if (i < 0) throw new Error(`op ${op.op} at ${op.module} is not in this graph`);
    this.cursor = i;
    return this;
  }

  atEnd(): this {
    this.cursor = this.g.ops.length;
    return this;
  }

  /**
   * Makes every reader of `old` placed after the definition of `neu` read `neu` instead, and
   * graph outputs too. Readers before it (the new ops that compute `neu` from `old`) keep `old`.
   * The types must agree unless `shapeChange` is set (prompt tuning turns [B,T,D] into [B,T+P,D]);
   * then call retype() once the rewrite is complete. Returns how many input slots changed.
   */
  replaceUses(old: string, neu: string, opts: { shapeChange?: boolean } = {}): number {
    const t0 = this.typeOf(old);
    const t1 = this.typeOf(neu);
    if (t0.dtype !== t1.dtype || (!opts.shapeChange && !shapeEq(t0.shape, t1.shape)))
      throw new Error(`cannot replace ${old}: ${formatType(t0)} by ${neu}: ${formatType(t1)}`);
    const start = this.g.ops.findIndex((op) => op.outputs.some((o) => o.name === neu)) + 1;
    let n = 0;
    for (const op of this.g.ops.slice(start))
      op.inputs.forEach((v, i) => {
        if (v === old) {
          op.inputs[i] = neu;
          n++;
        }
      });
    this.g.outputs = this.g.outputs.map((v) => (v === old ? neu : v));
    return n;
  }

  /** Changes a graph input's shape (positions cover P virtual tokens too); call retype() afterwards. */
  setInputShape(name: string, shape: Shape): void {
    const v = this.g.inputs.find((i) => i.name === name);
    if (!v) throw new Error(`no graph input '${name}'`);
    if (!shape.every(isDim)) throw new Error(`bad shape for input '${name}'`);
    v.shape = shape.map(normDim);
    this.types.set(name, { dtype: v.dtype, shape: v.shape });
  }

  /** Rewires one op's inputs (append prefix k/v to attention, scale an input for IA3) and re-infers its outputs. */
  setInputs(op: Op, inputs: string[]): void {
    const res = inferOp(op.op, inputs.map((v) => this.typeOf(v)), op.attrs);
    if (typeof res === "string") throw new Error(`${op.op} at ${op.module}: ${res}`);
    if (res.length !== op.outputs.length) throw new Error(`${op.op} at ${op.module}: output count changed`);
    op.inputs = [...inputs];
    res.forEach((t, i) => {
      const o = op.outputs[i]!;
      o.dtype = t.dtype;
      o.shape = t.shape;
      this.types.set(o.name, t);
    });
  }

  removeOp(op: Op): void {
    const i = this.g.ops.indexOf(op);
    if (i < 0) throw new Error(`op ${op.op} at ${op.module} is not in this graph`);
    this.g.ops.splice(i, 1);
    if (this.cursor > i) this.cursor--;
    for (const o of op.outputs) this.types.delete(o.name);
  }

  /** Re-runs every shape rule in order, for edits that change shapes downstream (prompt tuning grows T). */
  retype(): void {
    const g = retypeGraph(this.g);
    this.g.ops = g.ops;
    for (const op of g.ops) for (const o of op.outputs) this.types.set(o.name, { dtype: o.dtype, shape: o.shape });
  }

  /** The graph built so far (a copy: the builder may keep editing its own). */
  finish(): Graph {
    return cloneGraph(this.g);
  }
}
