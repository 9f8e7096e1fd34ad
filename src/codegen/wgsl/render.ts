// The thin WGSL renderer: module boilerplate (enables, bindings, constants, entry point header) and
// literal formatting. Kernel generators write the body; everything device-dependent they need comes
// from DeviceCaps, never from a device.

import type { DeviceCaps } from "./caps.js";
import type { KernelBinding } from "./kernel.js";

export interface ModuleParts {
  enables?: string[];
  /** Global diagnostic filters, e.g. `off, subgroup_uniformity`. */
  diagnostics?: string[];
  bindings: readonly KernelBinding[];
  consts?: Record<string, number | string>;
  /** Functions placed before the entry point. */
  helpers?: string;
  entryPoint: string;
  workgroupSize: readonly [number, number, number];
  /** Entry point parameters, e.g. `@builtin(workgroup_id) wid: vec3<u32>`. */
  params: readonly string[];
  /** Module-scope `var<workgroup>` declarations. */
  workgroupVars?: readonly string[];
  body: string;
}

export function renderModule(p: ModuleParts): string {
  const out: string[] = [];
  for (const e of p.enables ?? []) out.push(`enable ${e};`);
  for (const d of p.diagnostics ?? []) out.push(`diagnostic(${d});`);
  for (const b of p.bindings) out.push(`@group(0) @binding(${b.binding}) var${addressSpace(b)} ${b.name}: ${b.type};`);
  for (const [k, v] of Object.entries(p.consts ?? {})) out.push(`const ${k} = ${typeof v === "number" ? u32(v) : v};`);
  for (const w of p.workgroupVars ?? []) out.push(`var<workgroup> ${w};`);
  if (p.helpers) out.push(p.helpers.trim());
  const [x, y, z] = p.workgroupSize;
  out.push(`@compute @workgroup_size(${x}, ${y}, ${z})`);
  out.push(`fn ${p.entryPoint}(${p.params.join(", ")}) {`);
  out.push(indent(p.body.trim(), "  "));
  out.push("}");
  return out.join("\n") + "\n";
}

function addressSpace(b: KernelBinding): string {
  if (b.access === "uniform") return "<uniform>";
  return b.access === "read" ? "<storage, read>" : "<storage, read_write>";
}

export function indent(s: string, pad: string): string {
  return s
    .split("\n")
    .map((l) => (l.length ? pad + l : l))
    .join("\n");
}

/** A WGSL u32 literal. */
export function u32(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`not a u32: ${n}`);
  return `${n}u`;
}

/** A WGSL f32 literal that round-trips. */
export function f32(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`not a finite f32: ${x}`);
  const s = String(x);
  return /[.eE]/.test(s) ? `${s}f` : `${s}.0f`;
}

/** The `enable` directives a module using these element types needs. */
export function enablesFor(caps: DeviceCaps, usesF16: boolean, usesSubgroups = false): string[] {
  const out: string[] = [];
  if (usesF16) {
    if (!caps.f16) throw new Error("kernel stores f16 but the device lacks shader-f16");
    out.push("f16");
  }
  if (usesSubgroups) {
    if (!caps.subgroups) throw new Error("kernel uses subgroups but the device lacks them");
    out.push("subgroups");
  }
  return out;
}

/**
 * Spreads `blocks` workgroups over y and z when one dimension cannot hold them; kernels rebuild
 * the linear index as `wid.y + wid.z * dispatchY`.
 */
export function splitGrid(blocks: number, caps: DeviceCaps): [number, number] {
  const max = caps.maxWorkgroupsPerDimension;
  if (blocks <= max) return [blocks, 1];
  const z = Math.ceil(blocks / max);
  return [Math.ceil(blocks / z), z];
}
