// The plain-data form of one compute kernel: everything the runtime needs to create the pipeline,
// bind buffers by name and dispatch it. Codegen returns these; only the runtime touches a device.

import type { ModuleParts } from "./render.js";

export type BindingAccess = "read" | "read_write" | "uniform";

export interface KernelBinding {
  binding: number;
  /** The WGSL variable name; the runtime binds buffers by this name. */
  name: string;
  access: BindingAccess;
  /** WGSL store type, e.g. `array<vec4<f32>>`. */
  type: string;
  /** Element type of the data the buffer holds (what the host uploads). */
  elem: "f32" | "f16" | "u32";
}

export interface KernelSpec {
  label: string;
  wgsl: string;
  entryPoint: string;
  workgroupSize: [number, number, number];
  dispatch: [number, number, number];
  bindings: KernelBinding[];
  /** Floating-point operations one dispatch performs (for GFLOP/s reports). */
  flops: number;
  /** What `wgsl` was rendered from, where a generator keeps it: lets the program merge dispatches (program/merge.ts). */
  parts?: ModuleParts;
}
