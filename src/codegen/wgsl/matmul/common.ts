// Pieces every matmul variant shares: the binding list and the output store (alpha, bias,
// epilogue, accumulate), so variants differ only in how they compute the accumulators.

import type { KernelBinding } from "../kernel.js";
import { f32 } from "../render.js";
import type { BlockPos, LoopedEpilogue, MatmulProblem } from "./problem.js";

export interface OperandNames {
  a: string;
  b: string;
  c: string;
  bias: string;
}

export function operandNames(p: MatmulProblem): OperandNames {
  return { a: p.names?.a ?? "a", b: p.names?.b ?? "b", c: p.names?.c ?? "c", bias: p.names?.bias ?? "bias" };
}

/** Bindings in a fixed order: a, b, [bias], c, [A's map operand], each term's a and b, [the pair's B2, C2, C3], then the epilogue's. */
export function matmulBindings(
  p: MatmulProblem,
  vec: { a: boolean; b: boolean; c: boolean },
  termVec: readonly { a: boolean; b: boolean }[] = [],
): KernelBinding[] {
  const n = operandNames(p);
  const bElem = p.bF16 ? "f16" : "f32";
  const out: KernelBinding[] = [
    { binding: 0, name: n.a, access: "read", type: vec.a ? "array<vec4<f32>>" : "array<f32>", elem: "f32" },
    { binding: 1, name: n.b, access: "read", type: vec.b ? `array<vec4<${bElem}>>` : `array<${bElem}>`, elem: bElem },
  ];
  if (p.bias) out.push({ binding: out.length, name: n.bias, access: "read", type: "array<f32>", elem: "f32" });
  out.push({ binding: out.length, name: n.c, access: "read_write", type: vec.c ? "array<vec4<f32>>" : "array<f32>", elem: "f32" });
  if (p.aMap) out.push({ binding: out.length, name: p.aMap.with, access: "read", type: vec.a ? "array<vec4<f32>>" : "array<f32>", elem: "f32" });
  for (const [i, t] of (p.terms ?? []).entries()) {
    const v = termVec[i];
    if (!v) throw new Error(`matmul: no operand views for term ${i + 1}`);
    const e = t.bF16 ? "f16" : "f32";
    out.push({ binding: out.length, name: t.a, access: "read", type: v.a ? "array<vec4<f32>>" : "array<f32>", elem: "f32" });
    out.push({ binding: out.length, name: t.b, access: "read", type: v.b ? `array<vec4<${e}>>` : `array<${e}>`, elem: e });
  }
  if (p.pair) {
    const e = p.pair.bF16 ? "f16" : "f32";
    out.push({ binding: out.length, name: p.pair.b, access: "read", type: vec.b ? `array<vec4<${e}>>` : `array<${e}>`, elem: e });
    for (const name of [p.pair.c, p.pair.combined]) out.push({ binding: out.length, name, access: "read_write", type: vec.c ? "array<vec4<f32>>" : "array<f32>", elem: "f32" });
  }
  for (const e of p.epilogue?.bindings ?? []) out.push({ binding: out.length, ...e });
  return out;
}

/**
 * How a variant names the bias of its block's column `col` when it loaded the thread's biases once
 * before its stores (a bias load per stored element made llvmpipe's JIT of one kernel take seconds).
 */
export type BiasOf = (col: number) => string;

/** Element (m, n) after alpha and bias, before the epilogue. */
function baseValue(p: MatmulProblem, acc: string, n: string, col: number, biasOf?: BiasOf): string {
  let v = acc;
  if (p.alpha !== undefined && p.alpha !== 1) v = `${f32(p.alpha)} * ${v}`;
  if (p.bias) v = `${v} + ${biasOf ? biasOf(col) : `${operandNames(p).bias}[${n}]`}`;
  return v;
}

/** The final value of element (m, n) from accumulator expression `acc`. */
export function outputValue(p: MatmulProblem, acc: string, m: string, n: string, at: BlockPos, biasOf?: BiasOf): string {
  const v = baseValue(p, acc, n, at.col, biasOf);
  return p.epilogue ? p.epilogue.apply(`(${v})`, m, n, at) : v;
}

/** `c[idx] = v` (or `+=` when accumulating), then the epilogue's second output at the same index. */
function stores(p: MatmulProblem, idx: string, v: string, second: string | undefined): string {
  const c = operandNames(p).c;
  const main = p.accumulate ? `${c}[${idx}] = ${c}[${idx}] + ${v};` : `${c}[${idx}] = ${v};`;
  const name = p.epilogue?.second?.name;
  return second !== undefined && name ? `${main} ${name}[${idx}] = ${second};` : main;
}

/** Stores one scalar at C[m*N + n], element `at` of the thread's block; C is a scalar array. */
export function storeScalar(p: MatmulProblem, acc: string, m: string, n: string, at: BlockPos, biasOf?: BiasOf): string {
  const second = p.epilogue?.second ? p.epilogue.second.apply(`(${baseValue(p, acc, n, at.col, biasOf)})`, m, n, at) : undefined;
  return stores(p, `${m} * N + ${n}`, outputValue(p, acc, m, n, at, biasOf), second);
}

/**
 * Stores four consecutive columns n..n+3 (n a multiple of 4, N % 4 == 0), the first of them element
 * `at` of the thread's block; C is a vec4 array.
 */
export function storeVec4(p: MatmulProblem, acc: string, m: string, n: string, at: BlockPos, biasOf?: BiasOf): string[] {
  const pos = (j: number) => ({ row: at.row, col: at.col + j });
  const parts = [0, 1, 2, 3].map((j) => outputValue(p, `${acc}[${j}]`, m, `(${n} + ${j}u)`, pos(j), biasOf));
  const sec = p.epilogue?.second;
  const second = sec ? `vec4<f32>(${[0, 1, 2, 3].map((j) => sec.apply(`(${baseValue(p, `${acc}[${j}]`, `(${n} + ${j}u)`, at.col + j, biasOf)})`, m, `(${n} + ${j}u)`, pos(j))).join(", ")})` : undefined;
  return [stores(p, `(${m} * N + ${n}) / 4u`, `vec4<f32>(${parts.join(", ")})`, second)];
}

/**
 * The stores of element (m, n) for a store loop over rows (Epilogue.looped): `acc` the
 * accumulator expression, `col` the column's index in the thread's block, vec4 or scalar as
 * storeVec4 and storeScalar.
 */
export function loopedValue(p: MatmulProblem, looped: LoopedEpilogue | undefined, acc: string, m: string, n: string, col: number, biasOf?: BiasOf): string {
  const v = baseValue(p, acc, n, col, biasOf);
  return looped ? looped.apply(`(${v})`, m, n, col) : v;
}

function loopedSecond(p: MatmulProblem, looped: LoopedEpilogue | undefined, acc: string, m: string, n: string, col: number, biasOf?: BiasOf): string | undefined {
  return looped?.second ? looped.second(`(${baseValue(p, acc, n, col, biasOf)})`, m, n, col) : undefined;
}

export function loopedStoreScalar(p: MatmulProblem, looped: LoopedEpilogue | undefined, acc: string, m: string, n: string, col: number, biasOf?: BiasOf): string {
  return stores(p, `${m} * N + ${n}`, loopedValue(p, looped, acc, m, n, col, biasOf), loopedSecond(p, looped, acc, m, n, col, biasOf));
}

export function loopedStoreVec4(p: MatmulProblem, looped: LoopedEpilogue | undefined, acc: string, m: string, n: string, col: number, biasOf?: BiasOf): string {
  const parts = [0, 1, 2, 3].map((j) => loopedValue(p, looped, `${acc}[${j}]`, m, `(${n} + ${j}u)`, col + j, biasOf));
  const sec = [0, 1, 2, 3].map((j) => loopedSecond(p, looped, `${acc}[${j}]`, m, `(${n} + ${j}u)`, col + j, biasOf));
  const second = sec.every((x) => x !== undefined) ? `vec4<f32>(${sec.join(", ")})` : undefined;
  return stores(p, `(${m} * N + ${n}) / 4u`, `vec4<f32>(${parts.join(", ")})`, second);
}
