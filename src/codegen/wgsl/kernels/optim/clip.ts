// clip_grad_norm over separate gradient tensors, as torch.nn.utils.clip_grad_norm_:
//   total = sqrt(Σ g²) over all of them; coef = min(max_norm / (total + 1e-6), 1); g' = g·coef.
// Kernels: zero the running sum (tmp0[0]); per gradient, add its sum of squares (one workgroup for
// a small tensor; partials in tmp1, then one workgroup folding them, for a large one); finish
// (out_N = total, tmp0[1] = coef); per gradient, scale. Every kernel's text depends only on sizes,
// so same-shaped gradients (all layers' lora_A, say) share pipelines.

import type { DeviceCaps } from "../../caps.js";
import type { KernelSpec } from "../../kernel.js";
import { f32, renderModule } from "../../render.js";
import { buffer, elementGrid, ELEMENT_THREADS } from "./update.js";
import { REDUCE_THREADS, treeReduce, TREE_VAR } from "./reduce.js";

/** Above this many elements a gradient's sum of squares is split over workgroups. */
export const ONE_GROUP_MAX = 1 << 16;
/** Elements one workgroup folds in the split path. */
export const CHUNK = REDUCE_THREADS * 16;

const PARAMS = ["@builtin(workgroup_id) wid: vec3<u32>", "@builtin(local_invocation_index) lid: u32"];

function spec(label: string, wgsl: string, bindings: ReturnType<typeof buffer>[], dispatch: [number, number, number], threads: number, flops: number): KernelSpec {
  return { label, wgsl, entryPoint: "main", workgroupSize: [threads, 1, 1], dispatch, bindings, flops };
}

/** `acc[slot]` = (or += when `add`) Σ x² (Σ x when not `square`) over `x[0..count)`, one workgroup. */
export function sumSquaresOneGroup(count: number, x: string, acc: string, slot: number, add: boolean, square = true): KernelSpec {
  const bindings = [buffer(0, x, "read"), buffer(1, acc, "read_write")];
  const body = `
var part = 0.0;
for (var i = lid; i < ${count}u; i += ${REDUCE_THREADS}u) {
  let g = ${x}[i];
  part += ${square ? "g * g" : "g"};
}
${treeReduce(x)}
if (lid == 0u) { ${acc}[${slot}u] = ${add ? `${acc}[${slot}u] + ` : ""}red[0]; }`;
  const wgsl = renderModule({ bindings, workgroupVars: [TREE_VAR], entryPoint: "main", workgroupSize: [REDUCE_THREADS, 1, 1], params: ["@builtin(local_invocation_index) lid: u32"], body });
  return spec(`${square ? "sumsq" : "sum"}_${count}${add ? "_add" : ""}`, wgsl, bindings, [1, 1, 1], REDUCE_THREADS, 2 * count);
}

/** `partials[w]` = Σ x² over chunk w of `x[0..count)`. */
export function sumSquaresPartials(count: number, x: string, partials: string): KernelSpec {
  const groups = Math.ceil(count / CHUNK);
  if (groups > 65535) throw new Error(`clip_grad_norm: ${count} elements exceed one dispatch row of chunks`);
  const bindings = [buffer(0, x, "read"), buffer(1, partials, "read_write")];
  const body = `
let base = wid.x * ${CHUNK}u;
var part = 0.0;
for (var i = base + lid; i < min(base + ${CHUNK}u, ${count}u); i += ${REDUCE_THREADS}u) {
  let g = ${x}[i];
  part += g * g;
}
${treeReduce(x)}
if (lid == 0u) { ${partials}[wid.x] = red[0]; }`;
  const wgsl = renderModule({ bindings, workgroupVars: [TREE_VAR], entryPoint: "main", workgroupSize: [REDUCE_THREADS, 1, 1], params: PARAMS, body });
  return spec(`sumsq_partials_${count}`, wgsl, bindings, [groups, 1, 1], REDUCE_THREADS, 2 * count);
}

/** Kernels adding Σ x² of one tensor into `acc[0]`; the split path uses `partials`. */
export function addSumSquares(count: number, x: string, acc: string, partials: string): KernelSpec[] {
  if (count <= ONE_GROUP_MAX) return [sumSquaresOneGroup(count, x, acc, 0, true)];
  const groups = Math.ceil(count / CHUNK);
  return [sumSquaresPartials(count, x, partials), sumSquaresOneGroup(groups, partials, acc, 0, true, false)];
}

/** Scratch floats the split path needs for a tensor of `count` elements (0 when none). */
export function partialsFor(count: number): number {
  return count <= ONE_GROUP_MAX ? 0 : Math.ceil(count / CHUNK);
}

export function zeroKernel(name: string, slot: number): KernelSpec {
  const bindings = [buffer(0, name, "read_write")];
  const wgsl = renderModule({ bindings, entryPoint: "main", workgroupSize: [1, 1, 1], params: [], body: `${name}[${slot}u] = 0.0;` });
  return spec(`zero_${slot}`, wgsl, bindings, [1, 1, 1], 1, 0);
}

/** Statements: norm[0] = sqrt(sumsq); coef[coefSlot] = min(max_norm / (norm + 1e-6), 1). */
export function clipFinishBody(maxNorm: number, sumsq: string, norm: string, coef: string, coefSlot: number): string {
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm)) throw new Error(`clip_grad_norm: max_norm ${maxNorm}`);
  return `
let total = sqrt(${sumsq});
${norm}[0] = total;
${coef}[${coefSlot}u] = min(${f32(maxNorm)} / (total + 1e-6), 1.0);`;
}

/** norm[0] = sqrt(acc[accSlot]); coef[coefSlot] = min(max_norm / (norm + 1e-6), 1). */
export function clipFinishKernel(maxNorm: number, acc: string, accSlot: number, norm: string, coef: string, coefSlot: number): KernelSpec {
  const body = clipFinishBody(maxNorm, `${acc}[${accSlot}u]`, norm, coef, coefSlot);
  const bindings = [buffer(0, acc, "read_write"), buffer(1, norm, "read_write")];
  if (coef !== acc) bindings.push(buffer(2, coef, "read_write"));
  const wgsl = renderModule({ bindings, entryPoint: "main", workgroupSize: [1, 1, 1], params: [], body });
  return spec(`clip_finish_${maxNorm}`, wgsl, bindings, [1, 1, 1], 1, 0);
}

/** y = x · coef[slot]. */
export function scaleKernel(count: number, x: string, coef: string, slot: number, y: string, caps: DeviceCaps): KernelSpec {
  const bindings = [buffer(0, x, "read"), buffer(1, coef, "read"), buffer(2, y, "read_write")];
  const g = elementGrid(count, caps);
  const body = `
${g.index}
if (i < ${count}u) { ${y}[i] = ${x}[i] * ${coef}[${slot}u]; }`;
  const wgsl = renderModule({ bindings, entryPoint: "main", workgroupSize: [ELEMENT_THREADS, 1, 1], params: PARAMS, body });
  return spec(`clip_scale_${count}`, wgsl, bindings, g.dispatch, ELEMENT_THREADS, count);
}

/** clip_grad_norm(grads...) → grads'..., norm. Bindings in<i>, out<i>, out<N>, tmp0 (2 floats), tmp1 (partials). */
export function clipGradNormKernels(counts: readonly number[], maxNorm: number, caps: DeviceCaps): { kernels: KernelSpec[]; scratchBytes: number[] } {
  const n = counts.length;
  const kernels: KernelSpec[] = [zeroKernel("tmp0", 0)];
  counts.forEach((c, i) => kernels.push(...addSumSquares(c, `in${i}`, "tmp0", "tmp1")));
  kernels.push(clipFinishKernel(maxNorm, "tmp0", 0, `out${n}`, "tmp0", 1));
  counts.forEach((c, i) => kernels.push(scaleKernel(c, `in${i}`, "tmp0", 1, `out${i}`, caps)));
  const partials = Math.max(0, ...counts.map(partialsFor));
  return { kernels, scratchBytes: partials ? [8, 4 * partials] : [8] };
}
