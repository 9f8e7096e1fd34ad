// What one value read inside a loop costs, by where it comes from, beside the ALU ceiling: kernel
// design on a device follows from these ratios. On llvmpipe every storage or workgroup read in
// a loop runs lane by lane (with a bounds test per lane on storage), the same for an address all
// lanes share as for one per lane, and a private array indexed at run time sits between those and
// a register; on a GPU the storage reads coalesce and the uniform ones are broadcast.
import type { KernelSpec } from "../src/codegen/wgsl/kernel.js";
import { median, type Device } from "../src/runtime/device/index.js";

const WG = 64;
const GROUPS = 64;
const ITERS = 256;
/** Values each invocation reads per iteration, into four independent sums. */
const READS = 4;
const SUMS = [...Array(READS).keys()];

interface Case {
  name: string;
  decl?: string;
  setup?: string;
  /** Defines o, the first of the iteration's READS consecutive indices, from k. */
  index: string;
  from: string;
}

const CASES: Case[] = [
  { name: "storage, address shared by the subgroup", index: "(wid.x * 64u + k) * 4u", from: "src" },
  { name: "storage, an address per lane", index: "(wid.x * 64u + k + lid.x * 16u) * 4u", from: "src" },
  {
    name: "workgroup memory, an address per lane",
    decl: "var<workgroup> w: array<f32, 4096>;",
    setup: "for (var i = lid.x; i < 4096u; i += 64u) { w[i] = src[i]; }\n  workgroupBarrier();",
    index: "((k * 8u + lid.x) * 4u) % 4096u",
    from: "w",
  },
  {
    name: "private array, index known at run time",
    setup: "var p: array<f32, 32>;\n  for (var i = 0u; i < 32u; i++) { p[i] = src[i] + f32(lid.x); }",
    index: "(k * 4u) % 32u",
    from: "p",
  },
];

function kernel(c: Case | undefined): KernelSpec {
  const body = c
    ? `let o = ${c.index};\n    ${SUMS.map((i) => `s${i} += ${c.from}[o + ${i}u];`).join(" ")}`
    : // The same loop and sums with nothing read: what the loop itself costs.
      `${SUMS.map((i) => `s${i} = s${i} * 1.0001 + f32(k + ${i}u);`).join(" ")}`;
  const wgsl = `@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
${c?.decl ?? ""}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  ${SUMS.map((i) => `var s${i} = 0.0;`).join(" ")}
  ${c?.setup ?? ""}
  for (var k = 0u; k < ${ITERS}u; k++) {
    ${body}
  }
  dst[wid.x * ${WG}u + lid.x] = ${SUMS.map((i) => `s${i}`).join(" + ")};
}`;
  return {
    label: `memops_${c ? CASES.indexOf(c) : "loop"}`, wgsl, entryPoint: "main", workgroupSize: [WG, 1, 1], dispatch: [GROUPS, 1, 1],
    bindings: [
      { binding: 0, name: "src", access: "read", type: "array<f32>", elem: "f32" },
      { binding: 1, name: "dst", access: "read_write", type: "array<f32>", elem: "f32" },
    ],
    flops: 0,
  };
}

/** ns per value read per invocation, over the bare loop, for each case (best of 6 alternated rounds). */
export async function memopCosts(dev: Device): Promise<{ name: string; ns: number }[]> {
  const specs = [kernel(undefined), ...CASES.map(kernel)];
  await dev.prepare(...specs);
  const bufs = { src: dev.bufferFrom(new Float32Array(1 << 20).map((_, i) => (i % 97) / 97)), dst: dev.bufferFrom(new Float32Array(WG * GROUPS)) };
  const reps = 4;
  const best = specs.map(() => Infinity);
  for (let round = 0; round < 6; round++)
    for (const [i, s] of specs.entries()) {
      const t = await dev.time((r: { dispatch: (s: KernelSpec, b: typeof bufs) => void }) => {
        for (let j = 0; j < reps; j++) r.dispatch(s, bufs);
      }, 3);
      best[i] = Math.min(best[i]!, median(t.ms) / reps);
    }
  for (const b of Object.values(bufs)) b.destroy();
  const reads = WG * GROUPS * ITERS * READS;
  return CASES.map((c, i) => ({ name: c.name, ns: (Math.max(0, best[i + 1]! - best[0]!) * 1e6) / reads }));
}
