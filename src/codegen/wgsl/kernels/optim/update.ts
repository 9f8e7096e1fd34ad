// Per-tensor optimizer kernels in the lowering contract's names. SGD is one kernel. Adam/AdamW
// take nine buffers (param, grad, m, v, lr, step in; param, m, v out), one more than the eight
// storage bindings WebGPU guarantees per stage, so a one-invocation prologue turns lr and step into
// [step_size, bc2_sqrt, lr] in tmp0 and the element kernel reads those.

import type { DeviceCaps } from "../../caps.js";
import type { KernelBinding, KernelSpec } from "../../kernel.js";
import { renderModule, splitGrid } from "../../render.js";
import { adamElement, adamScalars, checkAdam, ONE_MINUS_POW, sgdElement, type AdamHyper, type SgdHyper } from "./math.js";

export const ELEMENT_THREADS = 256;

export function buffer(binding: number, name: string, access: "read" | "read_write"): KernelBinding {
  return { binding, name, access, type: "array<f32>", elem: "f32" };
}

/** Grid for one invocation per element; kernels index `i = (wid.x + wid.y·gx)·256 + lid`. */
export function elementGrid(count: number, caps: DeviceCaps): { dispatch: [number, number, number]; index: string } {
  const [gx, gy] = splitGrid(Math.max(1, Math.ceil(count / ELEMENT_THREADS)), caps);
  return { dispatch: [gx, gy, 1], index: `let i = (wid.x + wid.y * ${gx}u) * ${ELEMENT_THREADS}u + lid;` };
}

const PARAMS = ["@builtin(workgroup_id) wid: vec3<u32>", "@builtin(local_invocation_index) lid: u32"];

/** sgd_update(param, grad, lr, step, momentum_buffer?) → param', momentum_buffer'?. */
export function sgdUpdateKernel(count: number, h: SgdHyper, caps: DeviceCaps): KernelSpec {
  const mom = h.momentum !== 0;
  const bindings = [buffer(0, "in0", "read"), buffer(1, "in1", "read"), buffer(2, "in2", "read"), buffer(3, "in3", "read")];
  if (mom) bindings.push(buffer(4, "in4", "read"));
  bindings.push(buffer(bindings.length, "out0", "read_write"));
  if (mom) bindings.push(buffer(bindings.length, "out1", "read_write"));
  const g = elementGrid(count, caps);
  const body = `
${g.index}
if (i >= COUNT) { return; }
let lr = in2[0];
let t = in3[0];
var p = in0[i];
var d = in1[i];${mom ? "\nvar buf = in4[i];" : ""}
${sgdElement(h, h.weightDecay)}
out0[i] = p;${mom ? "\nout1[i] = buf;" : ""}`;
  const wgsl = renderModule({ bindings, consts: { COUNT: count }, entryPoint: "main", workgroupSize: [ELEMENT_THREADS, 1, 1], params: PARAMS, body });
  return { label: `sgd_update_${count}${mom ? "_mom" : ""}`, wgsl, entryPoint: "main", workgroupSize: [ELEMENT_THREADS, 1, 1], dispatch: g.dispatch, bindings, flops: 6 * count };
}

/** tmp0 = [step_size, bc2_sqrt, lr] from lr (in4) and step (in5). */
export function adamPrologueKernel(h: AdamHyper): KernelSpec {
  checkAdam(h);
  const bindings = [buffer(0, "in4", "read"), buffer(1, "in5", "read"), buffer(2, "tmp0", "read_write")];
  const body = `
let lr = in4[0];
let t = in5[0];
${adamScalars(h)}
tmp0[0] = step_size;
tmp0[1] = bc2_sqrt;
tmp0[2] = lr;`;
  const wgsl = renderModule({ bindings, helpers: ONE_MINUS_POW, entryPoint: "main", workgroupSize: [1, 1, 1], params: [], body });
  return { label: `adam_scalars_b${h.beta1}_${h.beta2}`, wgsl, entryPoint: "main", workgroupSize: [1, 1, 1], dispatch: [1, 1, 1], bindings, flops: 0 };
}

/** adam_update / adamw_update(param, grad, m, v, lr, step) → param', m', v', after the prologue. */
export function adamUpdateKernel(count: number, h: AdamHyper, caps: DeviceCaps): KernelSpec {
  checkAdam(h);
  const bindings = [
    buffer(0, "in0", "read"),
    buffer(1, "in1", "read"),
    buffer(2, "in2", "read"),
    buffer(3, "in3", "read"),
    buffer(4, "tmp0", "read"),
    buffer(5, "out0", "read_write"),
    buffer(6, "out1", "read_write"),
    buffer(7, "out2", "read_write"),
  ];
  const g = elementGrid(count, caps);
  const body = `
${g.index}
if (i >= COUNT) { return; }
let step_size = tmp0[0];
let bc2_sqrt = tmp0[1];
let lr = tmp0[2];
var p = in0[i];
var grad = in1[i];
var m = in2[i];
var v = in3[i];
${adamElement(h, h.weightDecay)}
out0[i] = p;
out1[i] = m;
out2[i] = v;`;
  const wgsl = renderModule({ bindings, consts: { COUNT: count }, entryPoint: "main", workgroupSize: [ELEMENT_THREADS, 1, 1], params: PARAMS, body });
  const kind = h.decoupled ? "adamw" : "adam";
  return { label: `${kind}_update_${count}`, wgsl, entryPoint: "main", workgroupSize: [ELEMENT_THREADS, 1, 1], dispatch: g.dispatch, bindings, flops: 12 * count };
}
