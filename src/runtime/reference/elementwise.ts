// The elementwise ops as one table: forward and derivative written once as expression trees
// (expr.ts), evaluated here and printable as WGSL by codegen. Shapes: inputs of equal length,
// output the same. Backward keeps what `keeps` lists: the input `a` (and `b` for binary ops) or
// the output `y` where the derivative is cheaper from it (tanh, sigmoid).

import { add, c, compileExpr, div, erf, exp, max, mul, neg, step, sub, tanh, v, type Expr } from './expr.js';
import { expectLength, like, type Floats } from './floats.js';

export interface UnaryOp {
  arity: 1;
  attrs: readonly string[];
  /** y as a function of a (and attributes). */
  forward: Expr;
  /** dL/da as a function of dy and of the kept values. */
  gradA: Expr;
  keeps: readonly ('a' | 'y')[];
}

export interface BinaryOp {
  arity: 2;
  attrs: readonly string[];
  forward: Expr;
  gradA: Expr;
  gradB: Expr;
  keeps: readonly ('a' | 'b')[];
}

const a = v('a');
const b = v('b');
const y = v('y');
const dy = v('dy');
const one = c(1);
const half = c(0.5);
const sigmoidOf = (x: Expr): Expr => div(one, add(one, exp(neg(x))));

// gelu_tanh (GPT-2 "gelu_new"): 0.5 a (1 + tanh(k (a + 0.044715 a^3))), k = sqrt(2/pi).
const K = Math.sqrt(2 / Math.PI);
const geluInner = mul(c(K), add(a, mul(c(0.044715), a, a, a)));
const geluT = tanh(geluInner);
// Exact gelu (torch nn.GELU default, AdapterHub "gelu"): a * Phi(a).
const phi = mul(half, add(one, erf(mul(a, c(Math.SQRT1_2)))));
const density = mul(c(1 / Math.sqrt(2 * Math.PI)), exp(mul(c(-0.5), a, a)));

export const ELEMENTWISE = {
  relu: { arity: 1, attrs: [], forward: max(a, c(0)), gradA: mul(dy, step(a)), keeps: ['a'] },
  silu: {
    arity: 1,
    attrs: [],
    forward: mul(a, sigmoidOf(a)),
    gradA: mul(dy, sigmoidOf(a), add(one, mul(a, sub(one, sigmoidOf(a))))),
    keeps: ['a'],
  },
  gelu_tanh: {
    arity: 1,
    attrs: [],
    forward: mul(half, a, add(one, geluT)),
    gradA: mul(
      dy,
      add(
        mul(half, add(one, geluT)),
        mul(half, a, sub(one, mul(geluT, geluT)), c(K), add(one, mul(c(3 * 0.044715), a, a))),
      ),
    ),
    keeps: ['a'],
  },
  gelu: { arity: 1, attrs: [], forward: mul(a, phi), gradA: mul(dy, add(phi, mul(a, density))), keeps: ['a'] },
  tanh: { arity: 1, attrs: [], forward: tanh(a), gradA: mul(dy, sub(one, mul(y, y))), keeps: ['y'] },
  sigmoid: { arity: 1, attrs: [], forward: sigmoidOf(a), gradA: mul(dy, y, sub(one, y)), keeps: ['y'] },
  scale: { arity: 1, attrs: ['s'], forward: mul(v('s'), a), gradA: mul(v('s'), dy), keeps: [] },
  add: { arity: 2, attrs: [], forward: add(a, b), gradA: dy, gradB: dy, keeps: [] },
  mul: { arity: 2, attrs: [], forward: mul(a, b), gradA: mul(dy, b), gradB: mul(dy, a), keeps: ['a', 'b'] },
} satisfies Record<string, UnaryOp | BinaryOp>;

/**
 * llama's MLP activation as one op (the fuse pass's silu_mul): y = silu(a)·b for gate a and up b,
 * with the gradients toward both from dy, written from silu's entries so both forms agree.
 */
export const SILU_MUL = {
  forward: mul(ELEMENTWISE.silu.forward, b),
  gradGate: mul(b, ELEMENTWISE.silu.gradA),
  gradUp: mul(dy, ELEMENTWISE.silu.forward),
} as const;

/** silu_mul and its backward on whole arrays (a = gate, b = up), as the reference executor runs them. */
export function siluMulForward<T extends Floats>(gate: T, up: Floats): T {
  expectLength('silu_mul up', up, gate.length);
  const f = compileExpr(SILU_MUL.forward, ['a', 'b']);
  const out = like(gate, gate.length);
  for (let i = 0; i < gate.length; i++) out[i] = f([gate[i]!, up[i]!]);
  return out;
}

export function siluMulBackward<T extends Floats>(gate: Floats, up: Floats, dy0: T): [T, T] {
  expectLength('silu_mul gate', gate, dy0.length);
  expectLength('silu_mul up', up, dy0.length);
  const fg = compileExpr(SILU_MUL.gradGate, ['a', 'b', 'dy']);
  const fu = compileExpr(SILU_MUL.gradUp, ['a', 'b', 'dy']);
  const dg = like(dy0, dy0.length);
  const du = like(dy0, dy0.length);
  for (let i = 0; i < dy0.length; i++) {
    const vals = [gate[i]!, up[i]!, dy0[i]!];
    dg[i] = fg(vals);
    du[i] = fu(vals);
  }
  return [dg, du];
}

export type ElementwiseName = keyof typeof ELEMENTWISE;
export type UnaryName = { [K in ElementwiseName]: (typeof ELEMENTWISE)[K] extends { arity: 1 } ? K : never }[ElementwiseName];
export type BinaryName = Exclude<ElementwiseName, UnaryName>;
export type Attrs = Readonly<Record<string, number>>;

const NAMES = ['a', 'b', 'y', 'dy'] as const;

function names(op: UnaryOp | BinaryOp): string[] {
  return [...NAMES, ...op.attrs];
}

function attrValues(op: UnaryOp | BinaryOp, attrs: Attrs | undefined): number[] {
  return op.attrs.map((name) => {
    const value = attrs?.[name];
    if (value === undefined) throw new Error(`reference: elementwise op needs attribute '${name}'`);
    return value;
  });
}

/** y = op(a) or op(a, b), elementwise. */
export function elementwiseForward<T extends Floats>(name: ElementwiseName, a0: T, b0?: Floats, attrs?: Attrs): T {
  const op: UnaryOp | BinaryOp = ELEMENTWISE[name];
  const f = compileExpr(op.forward, names(op));
  const vals = [0, 0, 0, 0, ...attrValues(op, attrs)];
  if (op.arity === 2) {
    if (!b0) throw new Error(`reference: ${name} needs two inputs`);
    expectLength(`${name} b`, b0, a0.length);
  }
  const out = like(a0, a0.length);
  for (let i = 0; i < a0.length; i++) {
    vals[0] = a0[i]!;
    vals[1] = b0 ? b0[i]! : 0;
    out[i] = f(vals);
  }
  return out;
}

export interface ElementwiseSaved {
  a?: Floats;
  b?: Floats;
  y?: Floats;
}

/** Gradients toward the inputs; `saved` must hold what the op's `keeps` names. */
export function elementwiseBackward<T extends Floats>(
  name: ElementwiseName,
  saved: ElementwiseSaved,
  dy0: T,
  attrs?: Attrs,
): { da: T; db?: T } {
  const op: UnaryOp | BinaryOp = ELEMENTWISE[name];
  for (const k of op.keeps) {
    const arr = saved[k];
    if (!arr) throw new Error(`reference: ${name} backward needs saved '${k}'`);
    expectLength(`${name} saved ${k}`, arr, dy0.length);
  }
  const ns = names(op);
  const ga = compileExpr(op.gradA, ns);
  const gb = op.arity === 2 ? compileExpr(op.gradB, ns) : undefined;
  const vals = [0, 0, 0, 0, ...attrValues(op, attrs)];
  const da = like(dy0, dy0.length);
  const db = gb ? like(dy0, dy0.length) : undefined;
  for (let i = 0; i < dy0.length; i++) {
    vals[0] = saved.a ? saved.a[i]! : 0;
    vals[1] = saved.b ? saved.b[i]! : 0;
    vals[2] = saved.y ? saved.y[i]! : 0;
    vals[3] = dy0[i]!;
    da[i] = ga(vals);
    if (db && gb) db[i] = gb(vals);
  }
  return db ? { da, db } : { da };
}
