/**
 * Dispatch merging: dispatches of one command list that touch no common memory (nothing one writes
 * is read or written by another) run as one dispatch of one merged kernel. Each workgroup of the
 * merged kernel runs one workgroup of one of the kernels, picked by its index, so the work and its
 * arithmetic are exactly what the kernels did one after the other; only the seams between them go.
 * On llvmpipe every seam costs both cores a wait for the slowest workgroup and a wake-up for the
 * next dispatch, and small kernels (a LoRA A's dW runs as one workgroup) leave a core idle; merged,
 * they fill each other's gaps.
 *
 * A dispatch may move earlier in the list past dispatches it shares no memory with (it joins the
 * earliest merge after the last command it depends on), never past a copy or anything it
 * conflicts with, so every read still sees the same writes. Kernels merge only where that is plain
 * to see from their parts: rendered by renderModule (KernelSpec.parts), one-dimensional
 * workgroups, no workgroup memory or barriers, no uniform bindings, only the builtins below. A
 * kernel with a smaller workgroup than the merge runs on its first lanes; one that uses subgroups
 * then needs whole subgroups (its size a multiple of the device's fixed subgroup size).
 */
import type { DeviceCaps } from "../caps.js";
import { storageBufferLimit } from "../caps.js";
import type { KernelBinding, KernelSpec } from "../kernel.js";
import { indent, renderModule, u32 } from "../render.js";
import type { Command, DispatchCmd, Slice } from "./types.js";

/** The entry builtins a merged kernel can hand on, and the WGSL that gives each to kernel `i`. */
const BUILTINS: Record<string, (i: number) => string> = {
  workgroup_id: (i) => `mw_wid${i}`,
  local_invocation_id: () => "mw_lid",
  local_invocation_index: () => "mw_lid.x",
  global_invocation_id: (i) => `mw_wid${i} * vec3<u32>(P${i}_WG, 1u, 1u) + mw_lid`,
  num_workgroups: (i) => `P${i}_GRID`,
  subgroup_invocation_id: () => "mw_sl",
  subgroup_size: () => "mw_sgs",
};

interface Param {
  builtin: string;
  name: string;
  type: string;
}

function parseParam(p: string): Param | undefined {
  const m = /^@builtin\((\w+)\)\s+(\w+)\s*:\s*(.+)$/.exec(p.trim());
  return m && BUILTINS[m[1]!] ? { builtin: m[1]!, name: m[2]!, type: m[3]!.trim() } : undefined;
}

const usesSubgroups = (k: KernelSpec): boolean => (k.parts?.enables ?? []).includes("subgroups");

/** Whether `k` can be part of a merged kernel at all. */
export function mergeable(k: KernelSpec): boolean {
  const p = k.parts;
  if (!p || p.entryPoint !== k.entryPoint) return false;
  if (p.workgroupVars?.length || p.workgroupSize[1] !== 1 || p.workgroupSize[2] !== 1) return false;
  if (/\b(workgroupBarrier|storageBarrier|textureBarrier|workgroupUniformLoad)\b/.test(`${p.body}\n${p.helpers ?? ""}`)) return false;
  if (k.bindings.some((b) => b.access === "uniform")) return false;
  return p.params.every((q) => parseParam(q) !== undefined);
}

/** Whether kernels `ks` (each mergeable) can share one workgroup size on this device. */
function lanesFit(ks: readonly KernelSpec[], caps: DeviceCaps): boolean {
  const wg = Math.max(...ks.map((k) => k.workgroupSize[0]));
  if (wg > caps.maxInvocationsPerWorkgroup || wg > caps.maxWorkgroupSizeX) return false;
  const sg = caps.subgroupSize;
  return ks.every((k) => k.workgroupSize[0] === wg || !usesSubgroups(k) || (sg > 0 && k.workgroupSize[0] % sg === 0));
}

const groupsOf = (d: readonly [number, number, number]): number => d[0] * d[1] * d[2];

/** Module-scope names a kernel's text declares: its bindings, constants and helper functions and constants. */
function moduleNames(k: KernelSpec): string[] {
  const p = k.parts!;
  const names = new Set<string>([...k.bindings.map((b) => b.name), ...Object.keys(p.consts ?? {})]);
  for (const m of (p.helpers ?? "").matchAll(/(?:^|\n)\s*(?:fn|const|var(?:<[^>]*>)?|alias|struct|override)\s+(\w+)/g)) names.add(m[1]!);
  return [...names];
}

/** `text` with every identifier of `names` prefixed (not where it follows a `.`: a member or swizzle). */
function prefixed(text: string, names: readonly string[], prefix: string): string {
  if (!names.length) return text;
  const alt = [...names].sort((a, b) => b.length - a.length).join("|");
  return text.replace(new RegExp(`(?<![.\\w])(${alt})(?!\\w)`, "g"), `${prefix}$1`);
}

/**
 * One kernel running `ks` side by side: workgroup w of the merge runs workgroup w − start_i of
 * kernel i, its grid position rebuilt from the kernel's own dispatch. Kernel i's bindings are
 * named `p<i>_<name>`.
 */
export function mergeKernels(ks: readonly KernelSpec[], caps: DeviceCaps): KernelSpec {
  if (ks.length < 2 || !ks.every(mergeable) || !lanesFit(ks, caps)) throw new Error(`merge: ${ks.map((k) => k.label).join(", ")} cannot share a dispatch`);
  const wg = Math.max(...ks.map((k) => k.workgroupSize[0]));
  const bindings: KernelBinding[] = [];
  const consts: Record<string, number | string> = {};
  const helpers: string[] = [];
  const enables = new Set<string>();
  const branches: string[] = [];
  let start = 0;
  let needSl = false;
  let needSgs = false;
  let narrowSubgroups = false;
  ks.forEach((k, i) => {
    const p = k.parts!;
    const prefix = `p${i}_`;
    const names = moduleNames(k);
    const rename = (s: string) => prefixed(s, names, prefix);
    for (const e of p.enables ?? []) enables.add(e);
    for (const b of k.bindings) bindings.push({ ...b, binding: bindings.length, name: prefix + b.name });
    for (const [c, v] of Object.entries(p.consts ?? {})) consts[prefix + c] = typeof v === "string" ? rename(v) : v;
    const [dx, dy, dz] = k.dispatch;
    const own = k.workgroupSize[0];
    consts[`P${i}_WG`] = own;
    consts[`P${i}_GRID`] = `vec3<u32>(${u32(dx)}, ${u32(dy)}, ${u32(dz)})`;
    if (p.helpers) helpers.push(rename(p.helpers.trim()));
    const params = p.params.map((q) => parseParam(q)!);
    needSl ||= params.some((q) => q.builtin === "subgroup_invocation_id");
    needSgs ||= params.some((q) => q.builtin === "subgroup_size");
    if (own < wg && usesSubgroups(k)) narrowSubgroups = true;
    helpers.push(`fn ${prefix}main(${params.map((q) => `${q.name}: ${q.type}`).join(", ")}) {\n${indent(rename(p.body.trim()), "  ")}\n}`);
    const n = groupsOf(k.dispatch);
    const call = `${prefix}main(${params.map((q) => BUILTINS[q.builtin]!(i)).join(", ")});`;
    const local = `let w${i} = mw_w - ${u32(start)};`;
    const wid = `let mw_wid${i} = vec3<u32>(w${i} % ${u32(dx)}, (w${i} / ${u32(dx)}) % ${u32(dy)}, w${i} / ${u32(dx * dy)});`;
    const guarded = own < wg ? `if (mw_lid.x < ${u32(own)}) { ${call} }` : call;
    branches.push(`if (mw_w < ${u32(start + n)}) {\n  ${local}\n  ${wid}\n  ${guarded}\n  return;\n}`);
    start += n;
  });
  const total = start;
  const max = caps.maxWorkgroupsPerDimension;
  const gy = Math.ceil(total / max);
  const gx = Math.ceil(total / gy);
  const params = ["@builtin(workgroup_id) mw_id: vec3<u32>", "@builtin(local_invocation_id) mw_lid: vec3<u32>"];
  if (needSl) params.push("@builtin(subgroup_invocation_id) mw_sl: u32");
  if (needSgs) params.push("@builtin(subgroup_size) mw_sgs: u32");
  const body = [`let mw_w = mw_id.x + mw_id.y * ${u32(gx)};`, ...branches].join("\n");
  // Lanes past a smaller kernel's workgroup skip it; a kernel using subgroups keeps whole ones
  // (lanesFit), which WGSL's uniformity analysis cannot see.
  const wgsl = renderModule({
    enables: [...enables],
    ...(narrowSubgroups ? { diagnostics: ["off, subgroup_uniformity"] } : {}),
    bindings,
    consts,
    helpers: helpers.join("\n"),
    entryPoint: "main",
    workgroupSize: [wg, 1, 1],
    params,
    body,
  });
  return {
    label: ks.map((k) => k.label).join(" + "),
    wgsl,
    entryPoint: "main",
    workgroupSize: [wg, 1, 1],
    dispatch: [gx, gy, 1],
    bindings,
    flops: ks.reduce((a, k) => a + k.flops, 0),
  };
}

/** What a command reads and writes. */
interface Access {
  slice: Slice;
  write: boolean;
}

export function accesses(c: Command, kernels: readonly KernelSpec[]): Access[] {
  if (c.kind === "copy") return [{ slice: c.src, write: false }, { slice: c.dst, write: true }];
  return kernels[c.kernel]!.bindings.map((b) => ({ slice: c.bindings[b.name]!, write: b.access === "read_write" }));
}

export const overlap = (a: Slice, b: Slice): boolean => a.buffer === b.buffer && a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes;

interface Group {
  /** Indices into the command list. */
  idx: number[];
  access: Access[];
  /** Dispatches of mergeable kernels only, nothing else joins. */
  open: boolean;
}

function conflicts(g: Group, acc: readonly Access[]): boolean {
  return g.access.some((x) => acc.some((y) => (x.write || y.write) && overlap(x.slice, y.slice)));
}

/**
 * Which commands of `cmds` run together: groups of indices, in the order they run (see the file
 * comment). A group of more than one holds dispatches of mergeable kernels only, touching no common
 * memory, within the device's storage-buffer limit.
 */
export function planMerges(cmds: readonly Command[], kernels: readonly KernelSpec[], caps: DeviceCaps): number[][] {
  const limit = storageBufferLimit(caps);
  const groups: Group[] = [];
  const specOf = (c: Command) => (c.kind === "dispatch" ? kernels[c.kernel]! : undefined);
  cmds.forEach((c, ci) => {
    const acc = accesses(c, kernels);
    const spec = specOf(c);
    const open = c.kind === "dispatch" && mergeable(spec!) && c.workgroups.every((n, d) => n === spec!.dispatch[d]);
    let last = -1;
    for (let i = groups.length - 1; i >= 0; i--)
      if (conflicts(groups[i]!, acc)) {
        last = i;
        break;
      }
    let joined = false;
    if (open)
      for (let i = last + 1; i < groups.length && !joined; i++) {
        const g = groups[i]!;
        if (!g.open) continue;
        const specs = [...g.idx.map((x) => specOf(cmds[x]!)!), spec!];
        if (specs.reduce((a, k) => a + k.bindings.length, 0) > limit || !lanesFit(specs, caps)) continue;
        const total = specs.reduce((a, k) => a + groupsOf(k.dispatch), 0);
        if (Math.ceil(total / caps.maxWorkgroupsPerDimension) > caps.maxWorkgroupsPerDimension) continue;
        g.idx.push(ci);
        g.access.push(...acc);
        joined = true;
      }
    if (!joined) groups.push({ idx: [ci], access: [...acc], open });
  });
  return groups.map((g) => g.idx);
}

/**
 * `cmds` with independent dispatches merged (planMerges); merged kernels are added with `add`,
 * which returns their index. Commands that merge with nothing stay as they are.
 */
export function mergeDispatches(cmds: readonly Command[], kernels: readonly KernelSpec[], caps: DeviceCaps, add: (spec: KernelSpec) => number): Command[] {
  return planMerges(cmds, kernels, caps).map((idx): Command => {
    if (idx.length === 1) return cmds[idx[0]!]!;
    const ds = idx.map((i) => cmds[i] as DispatchCmd);
    const spec = mergeKernels(
      ds.map((d) => kernels[d.kernel]!),
      caps,
    );
    const bindings: Record<string, Slice> = {};
    ds.forEach((d, i) => {
      for (const [name, s] of Object.entries(d.bindings)) bindings[`p${i}_${name}`] = s;
    });
    return { kind: "dispatch", kernel: add(spec), label: ds.map((d) => d.label).join(" + "), op: ds.map((d) => d.op).join("+"), bindings, workgroups: [...spec.dispatch] };
  });
}

/** `kernels` reduced to those `lists` dispatch, and the lists with their indices renumbered to match. */
export function compactKernels(kernels: readonly KernelSpec[], lists: readonly (readonly Command[])[]): { kernels: KernelSpec[]; lists: Command[][] } {
  const used = new Map<number, number>();
  const out: KernelSpec[] = [];
  const renumbered = lists.map((l) =>
    l.map((c): Command => {
      if (c.kind !== "dispatch") return c;
      let j = used.get(c.kernel);
      if (j === undefined) {
        j = out.length;
        out.push(kernels[c.kernel]!);
        used.set(c.kernel, j);
      }
      return { ...c, kernel: j };
    }),
  );
  return { kernels: out, lists: renumbered };
}
