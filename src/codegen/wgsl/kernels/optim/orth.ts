// AdaLoRA's orthogonal regulariser R = (1/N) Σ ‖C − I‖_F (not squared), C = A·Aᵀ for a lora_A
// [r,in] (kind 0) or Bᵀ·B for a lora_B [out,r] (kind 1), and its gradient dR·(2/N)·D·A/‖D‖ or
// dR·(2/N)·B·D/‖D‖ (src/runtime/reference/adalora.ts). Matrices come in separate buffers, so each
// gets its own kernels; the r×r Gram matrix is small (r is the rank), so one workgroup builds it.
// Forward: per matrix, add ‖D‖_F into tmp0[0]; then out0 = tmp0[0]/N. Backward: per matrix, D and
// ‖D‖ into tmp0 (reused: kernels run in order), then its gradient, one invocation per element.

import type { DeviceCaps } from "../../caps.js";
import type { KernelSpec } from "../../kernel.js";
import { renderModule } from "../../render.js";
import { REDUCE_THREADS, treeReduce, TREE_VAR } from "./reduce.js";
import { buffer, elementGrid, ELEMENT_THREADS } from "./update.js";

export interface OrthMatrixShape {
  rows: number;
  cols: number;
  /** 0: lora_A, C = W·Wᵀ; 1: lora_B, C = Wᵀ·W. */
  kind: 0 | 1;
}

const rankOf = (m: OrthMatrixShape): number => (m.kind === 0 ? m.rows : m.cols);
const lengthOf = (m: OrthMatrixShape): number => (m.kind === 0 ? m.cols : m.rows);
/** Element (rank index a, long index j) of the matrix bound as `x`. */
const at = (m: OrthMatrixShape, x: string, a: string, j: string): string => (m.kind === 0 ? `${x}[${a} * ${m.cols}u + ${j}]` : `${x}[${j} * ${m.cols}u + ${a}]`);

/**
 * One workgroup: D = C − I and ‖D‖_F. `mode` "add": tmp[0] += ‖D‖ ("first": tmp[0] = ‖D‖);
 * "gram": tmp[0] = ‖D‖ and tmp[1 + a·r + c] = D[a,c].
 */
export function orthGramKernel(m: OrthMatrixShape, x: string, tmp: string, mode: "first" | "add" | "gram"): KernelSpec {
  const r = rankOf(m);
  const n = lengthOf(m);
  const bindings = [buffer(0, x, "read"), buffer(1, tmp, "read_write")];
  const body = `
var part = 0.0;
for (var e = lid; e < ${r * r}u; e += ${REDUCE_THREADS}u) {
  let a = e / ${r}u;
  let c = e % ${r}u;
  var dot = 0.0;
  for (var j = 0u; j < ${n}u; j++) { dot += ${at(m, x, "a", "j")} * ${at(m, x, "c", "j")}; }
  let d = dot - select(0.0, 1.0, a == c);${mode === "gram" ? `\n  ${tmp}[1u + e] = d;` : ""}
  part += d * d;
}
${treeReduce(x)}
if (lid == 0u) { ${tmp}[0] = ${mode === "add" ? `${tmp}[0] + ` : ""}sqrt(red[0]); }`;
  const wgsl = renderModule({ bindings, workgroupVars: [TREE_VAR], entryPoint: "main", workgroupSize: [REDUCE_THREADS, 1, 1], params: ["@builtin(local_invocation_index) lid: u32"], body });
  return {
    label: `orth_${mode}_${m.rows}x${m.cols}_k${m.kind}`,
    wgsl,
    entryPoint: "main",
    workgroupSize: [REDUCE_THREADS, 1, 1],
    dispatch: [1, 1, 1],
    bindings,
    flops: 2 * r * r * n,
  };
}

/** grad = dr·(2/N)/‖D‖ · (D·A or B·D), 0 where ‖D‖ = 0, from tmp = [‖D‖, D...]. */
export function orthGradKernel(m: OrthMatrixShape, count: number, dr: string, x: string, tmp: string, out: string, caps: DeviceCaps): KernelSpec {
  const r = rankOf(m);
  const total = m.rows * m.cols;
  const bindings = [buffer(0, dr, "read"), buffer(1, x, "read"), buffer(2, tmp, "read"), buffer(3, out, "read_write")];
  const g = elementGrid(total, caps);
  // A [r,in]: grad[i,j] = Σ_k D[i,k] A[k,j].  B [out,r]: grad[j,i] = Σ_k B[j,k] D[k,i].
  const sum =
    m.kind === 0
      ? `let row = i / ${m.cols}u;
let col = i % ${m.cols}u;
for (var k = 0u; k < ${r}u; k++) { acc += ${tmp}[1u + row * ${r}u + k] * ${x}[k * ${m.cols}u + col]; }`
      : `let row = i / ${m.cols}u;
let col = i % ${m.cols}u;
for (var k = 0u; k < ${r}u; k++) { acc += ${x}[row * ${m.cols}u + k] * ${tmp}[1u + k * ${r}u + col]; }`;
  const body = `
${g.index}
if (i >= ${total}u) { return; }
let f = ${tmp}[0];
var acc = 0.0;
${sum}
let coef = select(0.0, ${dr}[0] / ${count}.0 * (2.0 / f), f != 0.0);
${out}[i] = coef * acc;`;
  const wgsl = renderModule({
    bindings,
    entryPoint: "main",
    workgroupSize: [ELEMENT_THREADS, 1, 1],
    params: ["@builtin(workgroup_id) wid: vec3<u32>", "@builtin(local_invocation_index) lid: u32"],
    body,
  });
  return { label: `orth_grad_${m.rows}x${m.cols}_k${m.kind}_n${count}`, wgsl, entryPoint: "main", workgroupSize: [ELEMENT_THREADS, 1, 1], dispatch: g.dispatch, bindings, flops: 2 * r * total };
}

/** adalora_orth_reg(mats...) → R. Bindings in<i>, out0, tmp0 (1 float). */
export function orthRegKernels(mats: readonly OrthMatrixShape[]): { kernels: KernelSpec[]; scratchBytes: number[] } {
  const kernels = mats.map((m, i) => orthGramKernel(m, `in${i}`, "tmp0", i === 0 ? "first" : "add"));
  const bindings = [buffer(0, "tmp0", "read"), buffer(1, "out0", "read_write")];
  const body = mats.length ? `out0[0] = tmp0[0] / ${mats.length}.0;` : "out0[0] = 0.0;";
  const wgsl = renderModule({ bindings, entryPoint: "main", workgroupSize: [1, 1, 1], params: [], body });
  kernels.push({ label: `orth_mean_${mats.length}`, wgsl, entryPoint: "main", workgroupSize: [1, 1, 1], dispatch: [1, 1, 1], bindings, flops: 1 });
  return { kernels, scratchBytes: [4] };
}

/** adalora_orth_reg_backward(dr, mats...) → dmats. Bindings in0 (dr), in<1+i>, out<i>, tmp0. */
export function orthRegBackwardKernels(mats: readonly OrthMatrixShape[], caps: DeviceCaps): { kernels: KernelSpec[]; scratchBytes: number[] } {
  const kernels: KernelSpec[] = [];
  mats.forEach((m, i) => {
    kernels.push(orthGramKernel(m, `in${i + 1}`, "tmp0", "gram"));
    kernels.push(orthGradKernel(m, mats.length, "in0", `in${i + 1}`, "tmp0", `out${i}`, caps));
  });
  const r = Math.max(1, ...mats.map(rankOf));
  return { kernels, scratchBytes: [4 * (1 + r * r)] };
}
