/**
 * Lowerings of the norm family (see types.ts for the contract). Rows are the last axis. On a GPU
 * one workgroup per row reduces its statistics in workgroup memory (two passes for layernorm, as
 * the reference); on a CPU adapter, where every workgroup barrier is a switch between coroutines,
 * there is no barrier at all: a few lanes of one subgroup share a narrow row (laneSplit), or one
 * thread owns a whole row and loops over it (8x faster on llvmpipe at 1024 x 64 than the tree).
 * Backward without atomics: the row kernel writes dx and each row's (mean, rstd) to tmp0; then
 * each thread owns one column of dw/db over a chunk of rows (partials in tmp1/tmp2), and a last
 * kernel adds the chunks column by column. With one chunk the partials are the result.
 * The fuse pass's addend to dx (an `add` input) is added where dx is stored.
 */
import { sharedLoadLanes } from "../caps.js";
import { input, kernel, load, mapKernel, output, RED_VAR, rowWorkgroup, scratch, store, wgSum, type BindingDecl } from "../kernels/common.js";
import { f32 } from "../render.js";
import { registerLowerings } from "./registry.js";
import type { LowerContext, Lowered, Lowering, TensorArg } from "./types.js";

type Kind = "rms" | "ln";

function eps(ctx: LowerContext): number {
  const e = ctx.attrs["eps"];
  if (typeof e !== "number") throw new Error(`${ctx.op.op}: eps must be a number`);
  return e;
}

function rowsCols(x: TensorArg, w: TensorArg): { M: number; D: number } {
  const D = w.shape[0]!;
  return { M: x.shape.reduce((a, b) => a * b, 1) / D, D };
}

/**
 * How a row is shared: `lid`/`WG` threads of one workgroup (GPU), or one thread alone (CPU). `sum` totals a per-thread partial over the row's threads.
 */
interface RowMode {
  perThread: boolean;
  /**
   * A thread per row reading vec4s (CPU adapters, every tensor of the row kernel f32 and D % 4 ==
   * 0): `d` then counts vec4s, sums are vec4 until `sum` folds them, and the loops run to `DN`, a
   * bound Mesa cannot fold (with D / 4 it unrolled them: 1.4 s of JIT for a 64-wide rmsnorm).
   * On llvmpipe at 1024 x 64: 126-134 us a forward against 199-254 us in scalars.
   */
  vec4: boolean;
  sum: (v: string) => string;
}

function rowMode(ctx: LowerContext, tensors: readonly TensorArg[], D: number): RowMode {
  if (!ctx.caps.isCpu) return { perThread: false, vec4: false, sum: (v) => `wg_sum(${v}, lid)` };
  const vec4 = D % 4 === 0 && tensors.every((t) => t.dtype === "f32");
  return { perThread: true, vec4, sum: vec4 ? (v) => `(${v}.x + ${v}.y + ${v}.z + ${v}.w)` : (v) => v };
}

/** A zero of the type the row's partial sums have. */
const zero = (m: RowMode): string => (m.vec4 ? "vec4<f32>(0.0)" : "0.0");

/** A loop over the row's columns this thread visits. */
function cols(m: RowMode, body: string): string {
  if (m.vec4) return `for (var d = 0u; d < DN; d = d + 1u) { ${body} }`;
  return m.perThread ? `for (var d = 0u; d < D; d = d + 1u) { ${body} }` : `for (var d = lid; d < D; d = d + WG) { ${body} }`;
}

/** WGSL computing `mean` and `r` (rstd) of row `base` of in0, as the reference does. */
function statsBody(m: RowMode, kind: Kind, x: TensorArg): string {
  const X = (i: string) => load("in0", x.dtype, i);
  if (kind === "rms")
    return `var ss = ${zero(m)};
${cols(m, `let v = ${X("base + d")}; ss = ss + v * v;`)}
let mean = 0.0;
let r = 1.0 / sqrt(${m.sum("ss")} / f32(D) + EPS);`;
  return `var s = ${zero(m)};
${cols(m, `s = s + ${X("base + d")};`)}
let mean = ${m.sum("s")} / f32(D);
var ss = ${zero(m)};
${cols(m, `let v = ${X("base + d")} - mean; ss = ss + v * v;`)}
let r = 1.0 / sqrt(${m.sum("ss")} / f32(D) + EPS);`;
}

function rowKernel(ctx: LowerContext, m: RowMode, label: string, M: number, D: number, bindings: BindingDecl[], body: string): ReturnType<typeof kernel> {
  const consts = { M, D, EPS: f32(eps(ctx)) };
  const flops = 8 * M * D;
  if (m.vec4) {
    // The bound comes from a binding's length: uniform, and never 0 where the kernel runs.
    const dn = `let DN = select(D / 4u, 0u, arrayLength(&${bindings.find((b) => b.access === "read_write")!.name}) == 0u);`;
    // Tensors are read by column; the scratch (mean, rstd) pairs stay scalars.
    const vb = bindings.map((b) => (b.name.startsWith("tmp") ? b : { ...b, vec4: true }));
    return mapKernel({ label: `${label}_${M}x${D}_rows_v4`, caps: ctx.caps, n: M, bindings: vb, consts, body: `let row = i;\nlet base = row * (D / 4u);\n${dn}\n${body}`, flops });
  }
  if (m.perThread) return mapKernel({ label: `${label}_${M}x${D}_rows`, caps: ctx.caps, n: M, bindings, consts, body: `let row = i;\nlet base = row * D;\n${body}`, flops });
  return kernel({
    label: `${label}_${M}x${D}`,
    caps: ctx.caps,
    bindings,
    workgroupSize: rowWorkgroup(D),
    groups: M,
    consts,
    workgroupVars: [RED_VAR],
    helpers: wgSum(bindings[0]!.name),
    body: `let row = group;\nif (row >= M) { return; }\nlet base = row * D;\n${body}`,
    flops,
  });
}

/**
 * The CPU lane mode: L neighbouring invocations share a row, each holding P vec4s of it (columns
 * c + j·L, c its lane in the row) in registers from one read, with its norm weights read once for
 * every row; row totals by subgroupShuffleXor across the L lanes. On llvmpipe, measured interleaved
 * at 1024 x 64 with 16 dispatches a pass: 88-94 us a forward against 136-145 us for a thread per
 * row (which reads each element twice and the weights once a row); 2 and 8 lanes a row were
 * 106-118 us. Only for f32 tensors and rows of at most 4·4·L values with L ≤ the subgroup size.
 */
interface LaneSplit {
  /** Invocations sharing a row. */
  L: number;
  /** vec4s each of them holds. */
  P: number;
}

const LANE_WG = 64;

function laneSplit(ctx: LowerContext, tensors: readonly TensorArg[], D: number): LaneSplit | undefined {
  const sg = sharedLoadLanes(ctx.caps);
  if (!sg || D % 4 !== 0 || !tensors.every((t) => t.dtype === "f32")) return undefined;
  for (const L of [2, 4, 8]) if (L <= sg && (D / 4) % L === 0 && D / 4 / L <= 4) return { L, P: D / 4 / L };
  return undefined;
}

/**
 * A lane-mode row kernel. `body` runs once a row pass with `row` (maybe ≥ M: its loads read the
 * last row, and stores must test `live`), `base` (the row's first vec4), `c` (the lane's place in
 * the row, its j-th vec4 at laneAt(j, L)) and `row_sum(v)` totalling an f32 over the row's lanes;
 * `pre` runs once before the passes (the weights). Every lane runs every pass, so the shuffles stay
 * in uniform control flow.
 */
function laneKernel(ctx: LowerContext, ls: LaneSplit, label: string, M: number, D: number, bindings: BindingDecl[], pre: string, body: string): ReturnType<typeof kernel> {
  const rpp = LANE_WG / ls.L;
  const passesAll = Math.ceil(M / rpp);
  const groups = Math.max(1, Math.min(16, Math.max(Math.min(4, passesAll), Math.ceil(passesAll / 16))));
  const passes = Math.ceil(passesAll / groups);
  const steps = Array.from({ length: Math.log2(ls.L) }, (_, k) => `t = t + subgroupShuffleXor(t, ${1 << k}u);`);
  return kernel({
    label: `${label}_${M}x${D}_lanes${ls.L}`,
    caps: ctx.caps,
    bindings: bindings.map((b) => (b.name.startsWith("tmp") ? b : { ...b, vec4: true })),
    workgroupSize: LANE_WG,
    groups,
    consts: { M, D, EPS: f32(eps(ctx)), L: ls.L, RPP: rpp, PASSES: passes },
    helpers: `fn row_sum(v: f32) -> f32 {\n  var t = v;\n  ${steps.join("\n  ")}\n  return t;\n}`,
    subgroups: true,
    // The pass count is read at run time (from a binding's length, never 0 where the kernel runs),
    // so Mesa does not unroll the passes: unrolled, a 306 x 64 forward took 1.2 s to compile.
    body: `let c = lid % L;
let sub = lid / L;
${pre}
let passes = select(PASSES, 0u, arrayLength(&${bindings[0]!.name}) == 0u);
for (var k = 0u; k < passes; k++) {
  let row = (group * PASSES + k) * RPP + sub;
  let live = row < M;
  let base = min(row, M - 1u) * (D / 4u);
${body.split("\n").map((l) => (l ? "  " + l : l)).join("\n")}
}`,
    flops: 8 * M * D,
  });
}

/** Lane-mode helpers: j's vec4 of a row, declarations of P values, and a sum over them. */
const laneAt = (j: number, L: number): string => `base + c + ${j * L}u`;
const laneLets = (ls: LaneSplit, name: string, val: (j: number) => string): string =>
  Array.from({ length: ls.P }, (_, j) => `let ${name}${j} = ${val(j)};`).join("\n");
/** The lane's P vec4s of `buf` as name0..: of the pass's row, or of a per-column vector (`row` false). */
const laneRead = (ls: LaneSplit, name: string, buf: string, row = true): string =>
  laneLets(ls, name, (j) => `${buf}[${row ? laneAt(j, ls.L) : `c + ${j * ls.L}u`}]`);
/** Statements storing vals(j) to the lane's P vec4s of `buf` in the pass's row, when it exists. */
const laneStore = (ls: LaneSplit, buf: string, val: (j: number) => string): string =>
  `if (live) {\n${Array.from({ length: ls.P }, (_, j) => `  ${buf}[${laneAt(j, ls.L)}] = ${val(j)};`).join("\n")}\n}`;
const laneTotal = (ls: LaneSplit, term: (j: number) => string): string => Array.from({ length: ls.P }, (_, j) => term(j)).join(" + ");
const hsum = (v: string): string => `dot(${v}, vec4<f32>(1.0))`;

/** Lane-mode statistics of the row held in x0.., as statsBody: `mean` and `r`. */
function laneStats(ls: LaneSplit, kind: Kind): string {
  if (kind === "rms") return `let mean = 0.0;\nlet r = 1.0 / sqrt(row_sum(${laneTotal(ls, (j) => `dot(x${j}, x${j})`)}) / f32(D) + EPS);`;
  return `let mean = row_sum(${laneTotal(ls, (j) => hsum(`x${j}`))}) / f32(D);
${laneLets(ls, "xc", (j) => `x${j} - mean`)}
let r = 1.0 / sqrt(row_sum(${laneTotal(ls, (j) => `dot(xc${j}, xc${j})`)}) / f32(D) + EPS);`;
}

const forward =
  (kind: Kind): Lowering =>
  (ctx) => {
    const [x, w, b] = ctx.inputs as [TensorArg, TensorArg, TensorArg | undefined];
    const y = ctx.outputs[0]!;
    const { M, D } = rowsCols(x, w);
    const name = kind === "rms" ? "rmsnorm" : "layernorm";
    const bindings = [...ctx.inputs.map((t, i) => input(i, t.dtype)), output(0, y.dtype)];
    const ls = laneSplit(ctx, [...ctx.inputs, y], D);
    if (ls) {
      const pre = [laneRead(ls, "w", "in1", false), ...(kind === "ln" ? [laneRead(ls, "bb", "in2", false)] : [])].join("\n");
      const val = (j: number): string => (kind === "rms" ? `x${j} * r * w${j}` : `(x${j} - mean) * r * w${j} + bb${j}`);
      const body = `${laneRead(ls, "x", "in0")}\n${laneStats(ls, kind)}\n${laneStore(ls, "out0", val)}`;
      return { kernels: [laneKernel(ctx, ls, name, M, D, bindings, pre, body)] };
    }
    const xhat = `(${load("in0", x.dtype, "base + d")} - mean) * r`;
    const val = kind === "rms" ? `${xhat} * ${load("in1", w.dtype, "d")}` : `${xhat} * ${load("in1", w.dtype, "d")} + ${load("in2", b!.dtype, "d")}`;
    const m = rowMode(ctx, [...ctx.inputs, y], D);
    const body = `${statsBody(m, kind, x)}
${cols(m, store("out0", y.dtype, "base + d", val))}`;
    return { kernels: [rowKernel(ctx, m, name, M, D, bindings, body)] };
  };

/** Rows summed per thread in the column kernel: at most 128 chunks, at least 32 rows each. */
export function rowChunk(M: number): { rows: number; chunks: number } {
  const rows = Math.max(32, Math.ceil(M / 128));
  return { rows, chunks: Math.ceil(M / rows) };
}

const backward =
  (kind: Kind): Lowering =>
  (ctx) => {
    const [x, w, dy, add] = ctx.inputs as [TensorArg, TensorArg, TensorArg, TensorArg | undefined];
    const { M, D } = rowsCols(x, w);
    const want = { dx: ctx.attrs["dx"] === true, dw: ctx.attrs["dw"] === true, db: kind === "ln" && ctx.attrs["db"] === true };
    let next = 0;
    const outIdx = { dx: want.dx ? next++ : -1, dw: want.dw ? next++ : -1, db: want.db ? next++ : -1 };
    const label = kind === "rms" ? "rmsnorm_bwd" : "layernorm_bwd";
    const ins = [input(0, x.dtype), input(1, w.dtype), input(2, dy.dtype)];
    const X = (i: string) => load("in0", x.dtype, i);
    const W = (i: string) => load("in1", w.dtype, i);
    const G = (i: string) => load("in2", dy.dtype, i);
    const columns = want.dw || want.db;
    const kernels = [];
    const scratchBytes: number[] = [];

    // Row kernel: statistics, dx, and (mean, rstd) for the column kernels.
    // The fuse pass's addend (x's other gradients) joins dx as it is stored.
    const rowTensors = add ? [x, w, dy, add] : [x, w, dy];
    const rowBindings: BindingDecl[] = [...ins, ...(add ? [input(3, add.dtype)] : []), ...(want.dx ? [output(outIdx.dx, "f32")] : []), ...(columns ? [scratch(0)] : [])];
    if (columns) scratchBytes.push(8 * M);
    const rowLabel = add ? `${label}_add` : label;
    // dx is stored as f32 in either mode.
    const ls = laneSplit(ctx, rowTensors, D);
    if (ls) {
      // dx = r·(g·w − ΣG/D − x̂·Σ(g·w·x̂)/D) (+ add), the statistics from the row in registers.
      const lines = [laneRead(ls, "x", "in0"), laneStats(ls, kind)];
      if (want.dx) {
        lines.push(
          laneLets(ls, "gh", (j) => `in2[${laneAt(j, ls.L)}] * w${j}`),
          laneLets(ls, "xh", (j) => `(x${j} - mean) * r`),
          `let sumG = ${kind === "ln" ? `row_sum(${laneTotal(ls, (j) => hsum(`gh${j}`))})` : "0.0"};`,
          `let dotG = row_sum(${laneTotal(ls, (j) => `dot(gh${j}, xh${j})`)});`,
          laneStore(ls, `out${outIdx.dx}`, (j) => `r * (gh${j} - sumG / f32(D) - xh${j} * dotG / f32(D))${add ? ` + in3[${laneAt(j, ls.L)}]` : ""}`),
        );
      }
      if (columns) lines.push(`if (live && c == 0u) { tmp0[2u * row] = mean; tmp0[2u * row + 1u] = r; }`);
      kernels.push(laneKernel(ctx, ls, rowLabel, M, D, rowBindings, laneRead(ls, "w", "in1", false), lines.join("\n")));
    } else {
      const m = rowMode(ctx, rowTensors, D);
      const plus = add ? ` + ${load("in3", add.dtype, "base + d")}` : "";
      const lines = [statsBody(m, kind, x)];
      if (want.dx) {
        lines.push(`var sg = ${zero(m)};
var dot = ${zero(m)};
${cols(m, `let gh = ${G("base + d")} * ${W("d")};
  sg = sg + gh;
  dot = dot + gh * (${X("base + d")} - mean) * r;`)}
let sumG = ${kind === "ln" ? m.sum("sg") : "0.0"};
let dotG = ${m.sum("dot")};
${cols(m, `let xh = (${X("base + d")} - mean) * r;
  out${outIdx.dx}[base + d] = r * (${G("base + d")} * ${W("d")} - sumG / f32(D) - xh * dotG / f32(D))${plus};`)}`);
      }
      if (columns) lines.push(`${m.perThread ? "" : "if (lid == 0u) "}{ tmp0[2u * row] = mean; tmp0[2u * row + 1u] = r; }`);
      kernels.push(rowKernel(ctx, m, rowLabel, M, D, rowBindings, lines.join("\n")));
    }

    if (columns) {
      const { rows, chunks } = rowChunk(M);
      const grads = (["dw", "db"] as const).filter((g) => want[g]);
      // With one chunk the column kernel writes the outputs; else partials [chunks, D] in tmp1.., then a sum.
      const partial = grads.map((g, k) => (chunks === 1 ? `out${outIdx[g]}` : `tmp${1 + k}`));
      const colBindings: BindingDecl[] = [input(0, x.dtype), input(2, dy.dtype), scratch(0)];
      grads.forEach((g, k) => {
        if (chunks === 1) colBindings.push(output(outIdx[g], "f32"));
        else {
          colBindings.push(scratch(1 + k));
          scratchBytes.push(4 * chunks * D);
        }
      });
      const acc = grads.map((g) => `var a_${g} = 0.0;`).join("\n");
      const add = grads
        .map((g) => (g === "dw" ? `a_dw = a_dw + g * (${X("m * D + c")} - tmp0[2u * m]) * tmp0[2u * m + 1u];` : "a_db = a_db + g;"))
        .join("\n  ");
      const put = grads.map((g, k) => `${partial[k]}[chunk * D + c] = a_${g};`).join("\n");
      kernels.push(
        mapKernel({
          label: `${label}_cols_${M}x${D}`,
          caps: ctx.caps,
          n: chunks * D,
          bindings: colBindings,
          consts: { M, D, ROWS: rows },
          body: `let chunk = i / D;
let c = i % D;
${acc}
let end = min(M, (chunk + 1u) * ROWS);
for (var m = chunk * ROWS; m < end; m = m + 1u) {
  let g = ${G("m * D + c")};
  ${add}
}
${put}`,
          flops: 3 * M * D * grads.length,
        }),
      );
      if (chunks > 1) {
        const sumBindings: BindingDecl[] = [];
        grads.forEach((g, k) => sumBindings.push(scratch(1 + k), output(outIdx[g], "f32")));
        const body = grads
          .map((g, k) => `var s_${g} = 0.0;\nfor (var k = 0u; k < CHUNKS; k = k + 1u) { s_${g} = s_${g} + tmp${1 + k}[k * D + i]; }\nout${outIdx[g]}[i] = s_${g};`)
          .join("\n");
        kernels.push(
          mapKernel({ label: `${label}_sum_${chunks}x${D}`, caps: ctx.caps, n: D, bindings: sumBindings, consts: { D, CHUNKS: chunks }, body, flops: chunks * D * grads.length }),
        );
      }
    }
    const lowered: Lowered = { kernels };
    if (scratchBytes.length) lowered.scratch = scratchBytes;
    return lowered;
  };

registerLowerings({
  rmsnorm: forward("rms"),
  layernorm: forward("ln"),
  rmsnorm_backward: backward("rms"),
  layernorm_backward: backward("ln"),
});
