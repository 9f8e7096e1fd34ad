/** Shared pieces of the autodiff tests: compiling a spec text, seeded data, finite differences in f64. */
import { checkSource } from "../../src/frontend.js";
import { compileSpec } from "../../src/passes/compile.js";
import type { Graph } from "../../src/ir/graph.js";
import { verify } from "../../src/ir/verify.js";
import { builtinConfig, initBuiltinWeights } from "../../src/models/builtin.js";
import { profileFromConfig } from "../../src/models/profile.js";
import type { ModelProfile } from "../../src/models/types.js";
import { runGraph, type Data, type Tensor } from "../../src/runtime/reference/executor.js";
import { evalDim } from "../../src/runtime/reference/exec/tensor.js";

export function compile(source: string, until?: string): { graph: Graph; profile: ModelProfile } {
  const fe = checkSource(source, "/tmp/autodiff-test.peft");
  if (!fe.ok) throw new Error(fe.diagnostics.map((d) => d.message).join("\n"));
  const errs: string[] = [];
  const r = compileSpec(fe.spec, { ...(until ? { until } : {}), after: (p, g) => errs.push(...verify(g).map((e) => `${p.name}: ${e}`)) });
  const bad = r.diagnostics.filter((d) => d.severity === "error");
  if (bad.length) throw new Error(bad.map((d) => d.message).join("\n"));
  if (errs.length) throw new Error(errs.join("\n"));
  return { graph: r.graph!, profile: r.profile! };
}

export function specText(model: string, body: string, train = ""): string {
  return `peft 0.1;\nmodel "builtin:${model}";\n${body}\ntrain { steps = 10; batch = 2; lr = 1e-3; ${train} }\n`;
}

export function builtin(name: string): ModelProfile {
  const p = profileFromConfig(builtinConfig(name)!, `builtin:${name}`);
  if (typeof p === "string") throw new Error(p);
  return p;
}

/** A small deterministic generator (LCG), enough for test data. */
export class Rand {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  next(): number {
    this.s = (Math.imul(this.s, 1664525) + 1013904223) >>> 0;
    return this.s / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  normal(std = 1): number {
    return std * Math.sqrt(-2 * Math.log(this.next() + 1e-12)) * Math.cos(2 * Math.PI * this.next());
  }
  fill(n: number, std = 1): Float64Array {
    return Float64Array.from({ length: n }, () => this.normal(std));
  }
}

/** Weights of every parameter of `g`: the built-in's seeded ones, method parameters random (so no gradient vanishes at a zero init). */
export function weightsFor(g: Graph, profile: ModelProfile, seed = 1): Map<string, Float64Array> {
  const base = initBuiltinWeights(profile, seed);
  if (typeof base === "string") throw new Error(base);
  const r = new Rand(seed + 7);
  const out = new Map<string, Float64Array>();
  for (const p of g.params) {
    const b = base.get(p.name);
    const n = p.shape.reduce((a, c) => a * c, 1);
    if (b) out.set(p.name, Float64Array.from(b, (x) => x + (p.trainable ? r.normal(0.05) : 0)));
    else if (p.name.endsWith("ranknum")) out.set(p.name, Float64Array.from({ length: n }, () => p.shape[0] === 1 ? 4 : 1));
    else out.set(p.name, r.fill(n, 0.2));
  }
  return out;
}

/** input_ids, labels (some -100) and positions 0..n-1 for B rows of T tokens; positions as long as the graph declares them (virtual tokens included). */
export function batch(g: Graph, B: number, T: number, vocab: number, seed: number): Record<string, Tensor> {
  const r = new Rand(seed);
  const ids = Int32Array.from({ length: B * T }, () => 3 + r.int(vocab - 3));
  const labels = Int32Array.from(ids, (x, i) => (i % T === 1 && i > T ? -100 : x));
  const decl = g.inputs.find((v) => v.name === "positions");
  const n = decl ? evalDim(decl.shape[1]!, { B, T }) : T;
  const positions = Int32Array.from({ length: B * n }, (_, i) => i % n);
  return { input_ids: { data: ids, shape: [B, T] }, labels: { data: labels, shape: [B, T] }, positions: { data: positions, shape: [B, n] } };
}

/** Loss of the graph in f64 with `params`. */
export function lossOf(g: Graph, params: Map<string, Float64Array>, inputs: Record<string, Data | Tensor>, name = "loss"): number {
  const vals = runGraph(g, { params, inputs, dtype: "f64", ops: (op) => !op.op.endsWith("_update") && op.op !== "clip_grad_norm" });
  return vals.get(name)!.data[0]!;
}

/** Central differences of f at a few entries of one parameter. */
export function fdAt(
  f: (p: Map<string, Float64Array>) => number,
  params: Map<string, Float64Array>,
  name: string,
  idx: readonly number[],
  h = 1e-5,
): number[] {
  const w = params.get(name)!;
  return idx.map((i) => {
    const x0 = w[i]!;
    w[i] = x0 + h;
    const up = f(params);
    w[i] = x0 - h;
    const down = f(params);
    w[i] = x0;
    return (up - down) / (2 * h);
  });
}

/** `k` distinct random indices below n (all of them when n ≤ k). */
export function pick(n: number, k: number, r: Rand): number[] {
  if (n <= k) return Array.from({ length: n }, (_, i) => i);
  const s = new Set<number>();
  while (s.size < k) s.add(r.int(n));
  return [...s];
}

/** max |a − b| / (atol + rtol·|b|) ≤ 1 as a number: the worst ratio. */
export function worst(a: readonly number[], b: readonly number[], atol = 1e-7, rtol = 1e-5): number {
  return Math.max(0, ...a.map((x, i) => Math.abs(x - b[i]!) / (atol + rtol * Math.abs(b[i]!))));
}
