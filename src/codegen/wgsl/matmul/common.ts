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

/** Bindings in a fixed order: a, b, [bias], c, each term's a and b, then the epilogue's. */
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
  for (const [i, t] of (p.terms ?? []).entries()) {
    const v = termVec[i];
    if (!v) throw new Error(`matmul: no operand views for term ${i + 1}`);
    const e = t.bF16 ? "f16" : "f32";
    out.push({ binding: out.length, name: t.a, access: "read", type: v.a ? "array<vec4<f32>>" : "array<f32>", elem: "f32" });
    out.push({ binding: out.length, name: t.b, access: "read", type: v.b ? `array<vec4<${e}>>` : `array<${e}>`, elem: e });
  }
  for (const e of p.epilogue?.bindings ?? []) out.push({ binding: out.length, ...e });
  return out;
}

/**
 * How a variant names the bias of its block's column `col` when it loaded the thread's biases once
 * before its stores (a bias load per stored element made llvmpipe's JIT of one kernel take seconds).
 */
export type BiasOf = (col: number) => string;

/** The final value of element (m, n) from accumulator expression `acc`. */
export function outputValue(p: MatmulProblem, acc: string, m: string, n: string, at: BlockPos, biasOf?: BiasOf): string {
  let v = acc;
  if (p.alpha !== undefined && p.alpha !== 1) v = `${f32(p.alpha)} * ${v}`;
  if (p.bias) v = `${v} + ${biasOf ? biasOf(at.col) : `${operandNames(p).bias}[${n}]`}`;
  if (p.epilogue) v = p.epilogue.apply(`(${v})`, m, n, at);
  return v;
}

/** Stores one scalar at C[m*N + n], element `at` of the thread's block; C is a scalar array. */
export function storeScalar(p: MatmulProblem, acc: string, m: string, n: string, at: BlockPos, biasOf?: BiasOf): string {
  const c = operandNames(p).c;
  const idx = `${m} * N + ${n}`;
  const v = outputValue(p, acc, m, n, at, biasOf);
  return p.accumulate ? `${c}[${idx}] = ${c}[${idx}] + ${v};` : `${c}[${idx}] = ${v};`;
}

/**
 * Stores four consecutive columns n..n+3 (n a multiple of 4, N % 4 == 0), the first of them element
 * `at` of the thread's block; C is a vec4 array.
 */
export function storeVec4(p: MatmulProblem, acc: string, m: string, n: string, at: BlockPos, biasOf?: BiasOf): string[] {
  const c = operandNames(p).c;
  const idx = `(${m} * N + ${n}) / 4u`;
  const parts = [0, 1, 2, 3].map((j) => outputValue(p, `${acc}[${j}]`, m, `(${n} + ${j}u)`, { row: at.row, col: at.col + j }, biasOf));
  const v = `vec4<f32>(${parts.join(", ")})`;
  return [p.accumulate ? `${c}[${idx}] = ${c}[${idx}] + ${v};` : `${c}[${idx}] = ${v};`];
}

/**
 * The stores of element (m, n) for a store loop over rows (Epilogue.looped): `acc` the
 * accumulator expression, `col` the column's index in the thread's block, vec4 or scalar as
 * storeVec4 and storeScalar.
 */
export function loopedValue(p: MatmulProblem, looped: LoopedEpilogue | undefined, acc: string, m: string, n: string, col: number, biasOf?: BiasOf): string {
  let v = acc;
  if (p.alpha !== undefined && p.alpha !== 1) v = `${f32(p.alpha)} * ${v}`;
  if (p.bias) v = `${v} + ${biasOf ? biasOf(col) : `${operandNames(p).bias}[${n}]`}`;
  return looped ? looped.apply(`(${v})`, m, n, col) : v;
}

export function loopedStoreScalar(p: MatmulProblem, looped: LoopedEpilogue | undefined, acc: string, m: string, n: string, col: number, biasOf?: BiasOf): string {
  const c = operandNames(p).c;
  const idx = `${m} * N + ${n}`;
  const v = loopedValue(p, looped, acc, m, n, col, biasOf);
  return p.accumulate ? `${c}[${idx}] = ${c}[${idx}] + ${v};` : `${c}[${idx}] = ${v};`;
}

export function loopedStoreVec4(p: MatmulProblem, looped: LoopedEpilogue | undefined, acc: string, m: string, n: string, col: number, biasOf?: BiasOf): string {
  const c = operandNames(p).c;
  const idx = `(${m} * N + ${n}) / 4u`;
  const parts = [0, 1, 2, 3].map((j) => loopedValue(p, looped, `${acc}[${j}]`, m, `(${n} + ${j}u)`, col + j, biasOf));
  const v = `vec4<f32>(${parts.join(", ")})`;
  return p.accumulate ? `${c}[${idx}] = ${c}[${idx}] + ${v};` : `${c}[${idx}] = ${v};`;
}
