// Prints the elementwise table's expression trees (src/runtime/reference/expr.ts) as WGSL, so the
// kernels and the CPU reference come from one definition (STYLE §8). Subtrees that occur more
// than once become `let`s. WGSL has no erf: it is the polynomial below; tanh is clamped because
// some drivers compute it through exp and return NaN for large |x| (tanh(±15) is ±1 in f32).

import type { Expr } from "../../../runtime/reference/expr.js";
import { f32 } from "../render.js";

/**
 * erf by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7, about two f32 ulps of 1), odd extension.
 */
export const ERF_WGSL = `
fn erf_f32(x: f32) -> f32 {
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * z);
  let p = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return sign(x) * (1.0 - p * exp(-z * z));
}`;

export interface PrintedExpr {
  /** `let` statements the value needs, in order. */
  lets: string[];
  value: string;
  /** WGSL functions the expression calls. */
  helpers: string;
  /** Arithmetic operations per element. */
  ops: number;
}

const key = (e: Expr): string =>
  e.kind === "var" ? e.name : e.kind === "const" ? `#${e.value}` : `${e.fn}(${e.args.map(key).join(",")})`;

/**
 * WGSL for `e` with each variable replaced by the WGSL expression `vars` gives it (an f32
 * value). `prefix` names the lets so that several printed trees can share one body.
 */
export function printExpr(e: Expr, vars: Readonly<Record<string, string>>, prefix = "t"): PrintedExpr {
  const counts = new Map<string, number>();
  const count = (x: Expr): void => {
    if (x.kind !== "call") return;
    const k = key(x);
    counts.set(k, (counts.get(k) ?? 0) + 1);
    if (counts.get(k) === 1) x.args.forEach(count);
  };
  count(e);
  const lets: string[] = [];
  const named = new Map<string, string>();
  let usesErf = false;
  let ops = 0;

  const print = (x: Expr): string => {
    if (x.kind === "const") return x.value < 0 ? `(${f32(x.value)})` : f32(x.value);
    if (x.kind === "var") {
      const v = vars[x.name];
      if (v === undefined) throw new Error(`expression uses unbound variable '${x.name}'`);
      return `(${v})`;
    }
    const k = key(x);
    const done = named.get(k);
    if (done) return done;
    ops++;
    const [p, q] = x.args.map(print) as [string, string | undefined];
    let s: string;
    switch (x.fn) {
      case "add": s = `(${p} + ${q!})`; break;
      case "sub": s = `(${p} - ${q!})`; break;
      case "mul": s = `(${p} * ${q!})`; break;
      case "div": s = `(${p} / ${q!})`; break;
      case "neg": s = `(-${p})`; break;
      case "max": s = `max(${p}, ${q!})`; break;
      case "exp": s = `exp(${p})`; break;
      case "tanh": s = `tanh(clamp(${p}, -15.0, 15.0))`; break;
      case "erf": usesErf = true; s = `erf_f32(${p})`; break;
      case "step": s = `select(0.0, 1.0, ${p} > 0.0)`; break;
    }
    if ((counts.get(k) ?? 0) > 1) {
      const name = `${prefix}${named.size}`;
      lets.push(`let ${name} = ${s};`);
      named.set(k, name);
      return name;
    }
    return s;
  };
  const value = print(e);
  return { lets, value, helpers: usesErf ? ERF_WGSL : "", ops };
}
