/**
 * The one kernel the program adds itself: dst[i] += src[i] over f32 words, summing a micro-batch's
 * gradients into the step's. The length comes from the binding (arrayLength), so one pipeline
 * serves every tensor and arena; workgroups spread over x and y when there are many.
 */
import type { DeviceCaps } from "../caps.js";
import type { KernelBinding, KernelSpec } from "../kernel.js";
import { renderModule } from "../render.js";

const WG = 256;

const BINDINGS: KernelBinding[] = [
  { binding: 0, name: "src", access: "read", type: "array<f32>", elem: "f32" },
  { binding: 1, name: "dst", access: "read_write", type: "array<f32>", elem: "f32" },
];

export function accumulateKernel(): KernelSpec {
  const wgsl = renderModule({
    bindings: BINDINGS,
    entryPoint: "main",
    workgroupSize: [WG, 1, 1],
    params: ["@builtin(workgroup_id) wid: vec3<u32>", "@builtin(num_workgroups) nwg: vec3<u32>", "@builtin(local_invocation_id) lid: vec3<u32>"],
    body: `let i = (wid.y * nwg.x + wid.x) * ${WG}u + lid.x;\nif (i < arrayLength(&dst)) {\n  dst[i] = dst[i] + src[i];\n}`,
  });
  return { label: "accumulate_grads", wgsl, entryPoint: "main", workgroupSize: [WG, 1, 1], dispatch: [1, 1, 1], bindings: BINDINGS, flops: 0 };
}

/** Workgroups covering `words` f32 values. */
export function accumulateGrid(words: number, caps: DeviceCaps): [number, number, number] {
  const groups = Math.max(1, Math.ceil(words / WG));
  const max = caps.maxWorkgroupsPerDimension;
  if (groups <= max) return [groups, 1, 1];
  const y = Math.ceil(groups / max);
  return [Math.ceil(groups / y), y, 1];
}
