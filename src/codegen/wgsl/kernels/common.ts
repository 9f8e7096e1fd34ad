// What the op lowerings share: tensor bindings typed by dtype (f16 loads widen to f32, i32 stays
// i32), grids that spread any number of workgroups over x and y, and one module builder, so
// each lowering writes only the body of its kernel.

import type { DeviceCaps } from "../caps.js";
import type { BindingAccess, KernelBinding, KernelSpec } from "../kernel.js";
import { enablesFor, renderModule, u32, type ModuleParts } from "../render.js";

export type DType = "f32" | "f16" | "i32";

export interface BindingDecl {
  name: string;
  dtype: DType | "u32";
  access: BindingAccess;
  /** Bound as `array<vec4<f32>>` (f32 only): four elements a load. */
  vec4?: boolean;
}

/** `in0` read as its dtype, `out0` written. */
export const input = (i: number, dtype: DType): BindingDecl => ({ name: `in${i}`, dtype, access: "read" });
export const output = (i: number, dtype: DType): BindingDecl => ({ name: `out${i}`, dtype, access: "read_write" });
export const scratch = (i: number, dtype: "f32" | "u32" = "f32"): BindingDecl => ({ name: `tmp${i}`, dtype, access: "read_write" });

/** The bytes one element of `dtype` takes in a buffer. */
export const elemBytes = (dtype: DType): number => (dtype === "f16" ? 2 : 4);

function toBinding(d: BindingDecl, binding: number): KernelBinding {
  // i32 data is uploaded as 32-bit words: the host elem type is u32 (the bit pattern is the same).
  const elem = d.dtype === "i32" ? "u32" : d.dtype;
  return { binding, name: d.name, access: d.access, type: d.vec4 ? `array<vec4<${d.dtype}>>` : `array<${d.dtype}>`, elem };
}

/** An f32 value of element `idx` of a float binding (f16 widens). */
export function load(b: BindingDecl | string, dtype: DType, idx: string): string {
  const name = typeof b === "string" ? b : b.name;
  return dtype === "f16" ? `f32(${name}[${idx}])` : `${name}[${idx}]`;
}

/** `name[idx] = v;` narrowing an f32 value to the binding's dtype. */
export function store(name: string, dtype: DType, idx: string, v: string): string {
  const val = dtype === "f16" ? `f16(${v})` : dtype === "i32" ? `i32(${v})` : v;
  return `${name}[${idx}] = ${val};`;
}

/** A dispatch of `groups` workgroups as [x, y, 1], and the WGSL for the linear workgroup id. */
export function grid(groups: number, caps: DeviceCaps): { dispatch: [number, number, number]; group: string } {
  const max = caps.maxWorkgroupsPerDimension;
  const n = Math.max(1, groups);
  if (n <= max) return { dispatch: [n, 1, 1], group: "wid.x" };
  const y = Math.ceil(n / max);
  const x = Math.ceil(n / y);
  return { dispatch: [x, y, 1], group: `(wid.x + wid.y * ${u32(x)})` };
}

export const PARAMS = ["@builtin(workgroup_id) wid: vec3<u32>", "@builtin(local_invocation_index) lid: u32"];

export interface KernelParts {
  label: string;
  caps: DeviceCaps;
  bindings: readonly BindingDecl[];
  workgroupSize: number;
  /** Workgroups to launch; the body sees their linear index as `group`. */
  groups: number;
  body: string;
  consts?: Record<string, number | string>;
  helpers?: string;
  workgroupVars?: readonly string[];
  /** The body or helpers call subgroup builtins (`enable subgroups`). */
  subgroups?: boolean;
  flops?: number;
}

export function kernel(p: KernelParts): KernelSpec {
  const bindings = p.bindings.map(toBinding);
  const g = grid(p.groups, p.caps);
  const usesF16 = p.bindings.some((b) => b.dtype === "f16");
  const parts: ModuleParts = {
    enables: enablesFor(p.caps, usesF16, p.subgroups === true),
    bindings,
    consts: { WG: p.workgroupSize, ...p.consts },
    ...(p.helpers ? { helpers: p.helpers } : {}),
    entryPoint: "main",
    workgroupSize: [p.workgroupSize, 1, 1],
    params: PARAMS,
    ...(p.workgroupVars ? { workgroupVars: p.workgroupVars } : {}),
    body: `let group = ${g.group};\n${p.body}`,
  };
  return { label: p.label, wgsl: renderModule(parts), entryPoint: "main", workgroupSize: [p.workgroupSize, 1, 1], dispatch: g.dispatch, bindings, flops: p.flops ?? 0, parts };
}

const MAP_WG = 256;
const CPU_MAP_WG = 64;

/**
 * Workgroups and elements per thread of a map kernel on a CPU adapter. llvmpipe pays for every
 * invocation and workgroup it starts, so a thread per element spends more time starting than
 * working on cheap bodies: measured interleaved on 2 cores, an add of 16384 vec4 took 0.20-0.36
 * ms with 64 workgroups of 256 one-element threads and 0.09-0.16 ms with 4-16 workgroups of 64
 * threads looping (98304 vec4: 1.1-2.0 ms against 0.44-0.84). Few workgroups, at least 4 so both
 * cores (and a few more) get some, at most 16 until each thread has 64 elements.
 */
export function cpuMapGeometry(n: number): { groups: number; perThread: number } {
  const m = Math.max(1, n);
  const target = Math.max(4, Math.min(16, Math.ceil(m / (CPU_MAP_WG * 64))));
  const perThread = Math.ceil(m / (target * CPU_MAP_WG));
  // No workgroup left without elements.
  return { groups: Math.ceil(m / (perThread * CPU_MAP_WG)), perThread };
}

/**
 * One thread per element i < n: `body` sees `i` (u32) and runs only in range. The common shape of
 * elementwise, copy and fill kernels. On CPU adapters each thread instead loops over a run of
 * elements (cpuMapGeometry); the body is then a function of `i`, so a `return` in it ends only
 * that element.
 */
export function mapKernel(p: Omit<KernelParts, "workgroupSize" | "groups" | "body"> & { n: number; body: string }): KernelSpec {
  // Bodies that read the launch builtins themselves keep one thread per element.
  if (p.caps.isCpu && !/\b(lid|group|wid)\b/.test(p.body)) {
    const g = cpuMapGeometry(p.n);
    const item = `fn map_item(i: u32) {\n${p.body}\n}`;
    return kernel({
      ...p,
      workgroupSize: CPU_MAP_WG,
      groups: g.groups,
      consts: { N: p.n, PER: g.perThread, ...p.consts },
      helpers: p.helpers ? `${p.helpers}\n${item}` : item,
      // Consecutive lanes take consecutive elements; a workgroup walks one contiguous run. The
      // loop starts at the lane's own index, so its trip count is not a compile-time constant:
      // with `k < PER` Mesa unrolled runs of up to about 32 elements in full, and llvmpipe's JIT
      // of a 4-line add took 2.1 s instead of 50 ms.
      body: `let last = min(N, (group + 1u) * WG * PER);\nfor (var i = group * WG * PER + lid; i < last; i += WG) {\n  map_item(i);\n}`,
    });
  }
  return kernel({
    ...p,
    workgroupSize: MAP_WG,
    groups: Math.ceil(p.n / MAP_WG),
    consts: { N: p.n, ...p.consts },
    body: `let i = group * WG + lid;\nif (i >= N) { return; }\n${p.body}`,
  });
}

/** Row-major strides of a shape. */
export function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1]! * shape[i + 1]!;
  return s;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * WGSL for the flat index into `from` of output element `i` of `to` under NumPy broadcasting
 * (trailing axes aligned, size-1 axes repeated).
 */
export function broadcastIndex(i: string, from: readonly number[], to: readonly number[]): string {
  if (from.length === to.length && from.every((d, k) => d === to[k])) return i;
  const pad = to.length - from.length;
  const fs = strides(from);
  const ts = strides(to);
  const terms: string[] = [];
  for (let a = 0; a < to.length; a++) {
    const fa = a - pad;
    if (fa < 0 || from[fa] === 1) continue;
    let coord = ts[a] === 1 ? i : `(${i} / ${u32(ts[a]!)})`;
    if (a > 0) coord = `(${coord} % ${u32(to[a]!)})`;
    terms.push(fs[fa] === 1 ? coord : `${coord} * ${u32(fs[fa]!)}`);
  }
  return terms.length ? terms.join(" + ") : "0u";
}

/**
 * The first stride of a workgroup tree over `top` entries, as a value Mesa cannot fold: a
 * storage binding's length (uniform, never 0 where bound). With a constant, Mesa unrolled the
 * tree with a barrier per level, and llvmpipe's JIT of each such kernel took about twice as long
 * (orth_gram 12x64: 148 against 75 ms; fused_sumsq: 215 against 82 ms).
 */
export function treeTop(top: string, bound: string): string {
  return `select(${top}, 0u, arrayLength(&${bound}) == 0u)`;
}

/**
 * Workgroup tree sums over `red` (WG entries, WG a power of two); `bound` names any storage
 * binding of the module (see treeTop). Called in uniform control flow; the trailing barrier lets
 * the caller reuse `red` at once.
 */
export const wgSum = (bound: string): string => `
fn wg_sum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${treeTop("WG / 2u", bound)}; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}`;

export const RED_VAR = "red: array<f32, WG>";

/** The largest power of two ≤ min(cap, max(32, n)): a workgroup width for a row of n values. */
export function rowWorkgroup(n: number, cap = 256): number {
  let w = 32;
  while (w * 2 <= cap && w < n) w *= 2;
  return w;
}
