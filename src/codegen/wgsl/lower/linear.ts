/**
 * Lowerings of the linear family (see types.ts for the contract): linear, linear_grad_input and
 * linear_grad_weight as one matmul each, with the operand layouts of src/codegen/wgsl/linear.ts
 * (torch [N,K] weights, or GPT-2 Conv1D [K,N] when `transposed`) and the contract's binding names
 * (`in<i>`, `out0`). A weight the program stores as f16 (frozen, precision f16) is read as f16.
 */
import { SILU_MUL } from "../../../runtime/reference/elementwise.js";
import { sharedLoadLanes, storageBufferLimit, type DeviceCaps } from "../caps.js";
import { printExpr } from "../kernels/expr-wgsl.js";
import { input, mapKernel, output, scratch, type BindingDecl } from "../kernels/common.js";
import type { KernelSpec } from "../kernel.js";
import { matmulKernel, type AMap, type BlockPos, type Epilogue, type EpilogueBinding, type LoopedIndex, type SharedRows } from "../matmul/index.js";
import { f32 } from "../render.js";
import { lowering, registerLowerings } from "./registry.js";
import { numel, type LowerContext, type Lowered } from "./types.js";

function rowsOf(shape: readonly number[]): number {
  return numel(shape.slice(0, -1));
}

function flag(ctx: LowerContext, key: string): boolean {
  return ctx.attrs[key] === true;
}

/** The fuse pass's folded scale on a gradient (attribute alpha, default 1). */
function alphaOf(ctx: LowerContext): number | undefined {
  const a = ctx.attrs["alpha"];
  return typeof a === "number" && a !== 1 ? a : undefined;
}

/**
 * The residual input of linear_fused (same shape as the output). Where rows are shared across a
 * subgroup (CPU adapters) and N % 4 == 0 it is bound as vec4 and each row's columns are loaded
 * as vec4 once, before that row's stores: four scalar loads per stored vec4, each done lane by lane
 * on llvmpipe, took seconds of JIT per kernel.
 */
interface Residual {
  binding: EpilogueBinding;
  /** Called from the epilogue's prepare. */
  begin(rows: string[], shared: SharedRows | undefined): void;
  /** Statements before row `row`'s stores (shared rows only). */
  row(row: number, cols: string[]): string[];
  /** The residual at element (m, n), element `pos` of the thread's block. */
  term(m: string, n: string, pos: BlockPos): string;
  /** For a store loop over rows: statements at the top of row `m`'s iteration, and the term at its column `col`. */
  loopRow(m: string, cols: string[]): string[];
  loopTerm(m: string, n: string, col: number): string;
}

function residualInput(name: string, N: number, caps: DeviceCaps, tag = "res"): Residual {
  const vec = sharedLoadLanes(caps) > 0 && N % 4 === 0;
  let rowExprs: string[] | undefined;
  return {
    binding: { name, type: vec ? "array<vec4<f32>>" : "array<f32>", access: "read", elem: "f32" },
    begin: (rows, shared) => {
      rowExprs = vec && shared ? rows : undefined;
    },
    row: (i, cols) => {
      if (!rowExprs) return [];
      const L: string[] = [];
      for (let q = 0; q < cols.length / 4; q++) L.push(`let ${tag}${i}_${q} = ${name}[min((min(${rowExprs[i]}, M - 1u) * N + ${cols[4 * q]}) / 4u, M * N / 4u - 1u)];`);
      return L;
    },
    term: (m, n, pos) => {
      if (rowExprs) return `${tag}${pos.row}_${Math.floor(pos.col / 4)}[${pos.col % 4}]`;
      return vec ? `${name}[(${m} * N + ${n}) / 4u][(${m} * N + ${n}) % 4u]` : `${name}[${m} * N + ${n}]`;
    },
    // Vec4 rows: one load per four columns of the row (clamped: a column block may pass N).
    loopRow: (m, cols) => {
      if (!vec || cols.length % 4 !== 0) return [];
      const L: string[] = [];
      for (let q = 0; q < cols.length / 4; q++) L.push(`let ${tag}_${q} = ${name}[min((${m} * N + ${cols[4 * q]}) / 4u, M * N / 4u - 1u)];`);
      return L;
    },
    loopTerm: (m, n, col) => (vec ? `${tag}_${Math.floor(col / 4)}[${col % 4}]` : `${name}[${m} * N + ${n}]`),
  };
}

/** An epilogue adding residual inputs elementwise, in order. */
function residualEpilogue(...res: Residual[]): Epilogue {
  return {
    bindings: res.map((r) => r.binding),
    prepare: (rows, _cols, shared) => {
      for (const r of res) r.begin(rows, shared);
      return "";
    },
    prepareRow: (i, cols) => res.flatMap((r) => r.row(i, cols)).join("\n"),
    apply: (v, m, n, pos) => res.reduce((e, r) => `${e} + ${r.term(m, n, pos)}`, v),
    looped: {
      row: (m, cols) => res.flatMap((r) => r.loopRow(m, cols)).join("\n"),
      apply: (v, m, n, col) => res.reduce((e, r) => `${e} + ${r.loopTerm(m, n, col)}`, v),
    },
  };
}

/** y = x·Wᵀ (+ bias): in0 x [..., K], in1 W, in2 bias [N]. */
function linear(ctx: LowerContext): Lowered {
  const x = ctx.inputs[0]!;
  const w = ctx.inputs[1]!;
  const t = flag(ctx, "transposed");
  const K = x.shape[x.shape.length - 1]!;
  const N = t ? w.shape[1]! : w.shape[0]!;
  const M = rowsOf(x.shape);
  const f16 = w.dtype === "f16";
  const bias = ctx.inputs.length > 2;
  const label = `linear_${M}x${N}x${K}${t ? "_t" : ""}${f16 ? "_f16" : ""}${bias ? "_b" : ""}`;
  const k = matmulKernel(
    { M, N, K, aLayout: "mk", bLayout: t ? "kn" : "nk", bF16: f16, bias, names: { a: "in0", b: "in1", bias: "in2", c: "out0" }, label },
    ctx.matmul,
    ctx.caps,
  );
  return { kernels: [k] };
}

/** dx = dy·W: in0 dy [..., N], in1 W; out0 [..., K]. */
function linearGradInput(ctx: LowerContext): Lowered {
  const dy = ctx.inputs[0]!;
  const w = ctx.inputs[1]!;
  const t = flag(ctx, "transposed");
  const N = dy.shape[dy.shape.length - 1]!;
  const K = t ? w.shape[0]! : w.shape[1]!;
  const M = rowsOf(dy.shape);
  const f16 = w.dtype === "f16";
  const alpha = alphaOf(ctx);
  const label = `linear_dx_${M}x${K}x${N}${t ? "_t" : ""}${f16 ? "_f16" : ""}${alpha !== undefined ? "_s" : ""}`;
  // The reduction runs over N: W [N,K] is B stored [reduction, out] ("kn"); W [K,N] is "nk".
  const k = matmulKernel(
    { M, N: K, K: N, aLayout: "mk", bLayout: t ? "nk" : "kn", bF16: f16, names: { a: "in0", b: "in1", c: "out0" }, label, ...(alpha !== undefined ? { alpha } : {}) },
    ctx.matmul,
    ctx.caps,
  );
  return { kernels: [k] };
}

/**
 * linear_grad_input_sum (the fuse pass): in0 dy_1, in1 W_1, …, then the addends. With the register
 * variant the terms are one matmul's products summed in its accumulators (as many per kernel as
 * the device's storage bindings allow, later kernels adding to what the first stored), and the
 * addends are added as the first kernel stores; the tiled variant runs one accumulating matmul a
 * term. In f32 the sum differs from the reference's (each term rounded, then added) by rounding.
 */
function linearGradInputSum(ctx: LowerContext): Lowered {
  const T = ctx.attrs["terms"] as number;
  const tr = (ctx.attrs["transposed"] as number[] | undefined) ?? [];
  const out = ctx.outputs[0]!;
  const N = out.shape[out.shape.length - 1]!;
  const M = rowsOf(out.shape);
  // Term t's reduction runs over dy_t's features: W [N_t,K] is B stored [reduction, out] ("kn"), W [K,N_t] "nk".
  const terms = Array.from({ length: T }, (_, t) => {
    const dy = ctx.inputs[2 * t]!;
    const w = ctx.inputs[2 * t + 1]!;
    return { a: `in${2 * t}`, b: `in${2 * t + 1}`, K: dy.shape[dy.shape.length - 1]!, bF16: w.dtype === "f16", bLayout: tr[t] === 1 ? ("nk" as const) : ("kn" as const) };
  });
  const addends = ctx.inputs.slice(2 * T).map((_, i) => residualInput(`in${2 * T + i}`, N, ctx.caps, `add${i}`));
  const limit = storageBufferLimit(ctx.caps);
  const first = ctx.matmul === "register" ? Math.floor((limit - 1 - addends.length) / 2) : 1;
  const later = ctx.matmul === "register" ? Math.floor((limit - 1) / 2) : 1;
  if (first < 1) throw new Error(`linear_grad_input_sum: ${addends.length} addends leave no storage binding for a term (device allows ${limit})`);
  const chunks = [terms.slice(0, first)];
  for (let i = first; i < T; i += later) chunks.push(terms.slice(i, i + later));
  const tag = `${tr.some((t) => t === 1) ? "_t" : ""}${terms.some((t) => t.bF16) ? "_f16" : ""}${addends.length ? `_add${addends.length}` : ""}`;
  const kernels = chunks.map((c, i) => {
    const [head, ...rest] = c;
    return matmulKernel(
      {
        M, N, K: head!.K, aLayout: "mk", bLayout: head!.bLayout, bF16: head!.bF16,
        names: { a: head!.a, b: head!.b, c: "out0" },
        label: `linear_dxs_${M}x${N}x${c.map((t) => t.K).join("+")}${tag}${i > 0 ? "_acc" : ""}`,
        ...(rest.length ? { terms: rest } : {}),
        ...(i > 0 ? { accumulate: true } : addends.length ? { epilogue: residualEpilogue(...addends) } : {}),
      },
      ctx.matmul,
      ctx.caps,
    );
  });
  return { kernels };
}

/** A WGSL function of f32 `params` returning the printed expression `e`. */
function exprFunction(name: string, params: readonly string[], e: ReturnType<typeof printExpr>): string {
  return [`fn ${name}(${params.map((q) => `${q}: f32`).join(", ")}) -> f32 {`, ...e.lets.map((l) => `  ${l}`), `  return ${e.value};`, `}`].join("\n");
}

/** silu(a)·b by SILU_MUL's forward, as functions of f32 and of vec4 (the silu_mul kernel's arithmetic). */
function siluMulHelpers(): { helpers: string; scalar: (a: string, b: string) => string; vec4: (a: string, b: string) => string } {
  const e = printExpr(SILU_MUL.forward, { a: "a", b: "b" }, "t");
  const fn4 = `fn silu_mul_f4(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {\n  return vec4<f32>(silu_mul_f(a.x, b.x), silu_mul_f(a.y, b.y), silu_mul_f(a.z, b.z), silu_mul_f(a.w, b.w));\n}`;
  return { helpers: [e.helpers, exprFunction("silu_mul_f", ["a", "b"], e), fn4].filter((h) => h).join("\n"), scalar: (a, b) => `silu_mul_f(${a}, ${b})`, vec4: (a, b) => `silu_mul_f4(${a}, ${b})` };
}

/**
 * silu(gate)·up over n f32 values, from bindings [gate, up] into [out], as one pass; four values a
 * thread where n divides evenly (the same arithmetic lane by lane).
 */
function siluMulPass(ctx: LowerContext, label: string, n: number, [gate, up, out]: [BindingDecl, BindingDecl, BindingDecl], sm: ReturnType<typeof siluMulHelpers>): KernelSpec {
  const v4 = n % 4 === 0;
  return mapKernel({
    label: `${label}${v4 ? "_v4" : ""}`,
    caps: ctx.caps,
    n: v4 ? n / 4 : n,
    bindings: [gate, up, out].map((b) => ({ ...b, vec4: v4 })),
    helpers: sm.helpers,
    body: `${out.name}[i] = ${(v4 ? sm.vec4 : sm.scalar)(`${gate.name}[i]`, `${up.name}[i]`)};`,
  });
}

/**
 * silu_mul_linear (the fuse pass): in0 gate, in1 W, in2 up, in3 residual. With the register
 * variant on a GPU the matmul reads silu(gate)·up where it would read its A, so the activation is
 * never stored. The tiled variant, and CPU adapters, write it to scratch first and multiply that:
 * on llvmpipe every lane computes the activation of each row it reads, once per column block of
 * the output, and loads up beside gate lane by lane, which cost more than a pass over the
 * activation (stories260K's down projection, 1024 x 64 x 172: 1.0-1.1 ms read through the map,
 * 0.6 ms plain plus 0.25 ms for the pass).
 */
function siluMulLinear(ctx: LowerContext): Lowered {
  const [g, w] = ctx.inputs as [LowerContext["inputs"][number], LowerContext["inputs"][number]];
  for (const i of [0, 2, 3]) if (ctx.inputs[i] && ctx.inputs[i]!.dtype !== "f32") throw new Error(`silu_mul_linear: input ${i} must be f32, got ${ctx.inputs[i]!.dtype}`);
  const t = flag(ctx, "transposed");
  const K = g.shape[g.shape.length - 1]!;
  const N = t ? w.shape[1]! : w.shape[0]!;
  const M = rowsOf(g.shape);
  const f16 = w.dtype === "f16";
  const res = flag(ctx, "residual") ? residualInput("in3", N, ctx.caps) : undefined;
  const sm = siluMulHelpers();
  const label = `silu_mul_linear_${M}x${N}x${K}${t ? "_t" : ""}${f16 ? "_f16" : ""}${res ? "_res" : ""}`;
  const base = { M, N, K, aLayout: "mk" as const, bLayout: t ? ("kn" as const) : ("nk" as const), bF16: f16, ...(res ? { epilogue: residualEpilogue(res) } : {}) };
  if (ctx.matmul === "register" && !ctx.caps.isCpu) {
    const aMap: AMap = { with: "in2", ...sm };
    return { kernels: [matmulKernel({ ...base, aMap, names: { a: "in0", b: "in1", c: "out0" }, label }, ctx.matmul, ctx.caps)] };
  }
  const act = siluMulPass(ctx, `silu_mul_${M * K}_to_scratch`, M * K, [input(0, "f32"), input(2, "f32"), scratch(0)], sm);
  return { kernels: [act, matmulKernel({ ...base, names: { a: "tmp0", b: "in1", c: "out0" }, label }, ctx.matmul, ctx.caps)], scratch: [4 * M * K] };
}

/**
 * gate_up_silu_mul (the fuse pass): in0 x, in1 Wg, in2 Wu; out0 gate, out1 up, out2
 * silu(gate)·up. With the register variant on CPU adapters one matmul computes each thread's
 * block of gate, then of up, and stores the three (MatmulPair): the activation costs no pass of
 * its own and x's rows are read by one kernel. Elsewhere: both matmuls, then the activation over
 * what they stored.
 */
function gateUpSiluMul(ctx: LowerContext): Lowered {
  const [x, wg, wu] = ctx.inputs as [LowerContext["inputs"][number], LowerContext["inputs"][number], LowerContext["inputs"][number]];
  const t = flag(ctx, "transposed");
  const K = x.shape[x.shape.length - 1]!;
  const N = t ? wg.shape[1]! : wg.shape[0]!;
  const M = rowsOf(x.shape);
  const sm = siluMulHelpers();
  const tag = `${t ? "_t" : ""}${wg.dtype === "f16" || wu.dtype === "f16" ? "_f16" : ""}`;
  const base = { M, N, K, aLayout: "mk" as const, bLayout: t ? ("kn" as const) : ("nk" as const) };
  if (ctx.matmul === "register" && ctx.caps.isCpu) {
    const pair = { b: "in2", bF16: wu.dtype === "f16", c: "out1", combined: "out2", ...sm };
    return { kernels: [matmulKernel({ ...base, bF16: wg.dtype === "f16", names: { a: "in0", b: "in1", c: "out0" }, pair, label: `gate_up_silu_mul_${M}x${N}x${K}${tag}` }, ctx.matmul, ctx.caps)] };
  }
  const proj = (w: string, c: string, f16: boolean) => matmulKernel({ ...base, bF16: f16, names: { a: "in0", b: w, c }, label: `linear_${M}x${N}x${K}${tag}` }, ctx.matmul, ctx.caps);
  const stored = (i: number): BindingDecl => ({ name: `out${i}`, dtype: "f32", access: "read" });
  const act = siluMulPass(ctx, `silu_mul_${M * N}`, M * N, [stored(0), stored(1), output(2, "f32")], sm);
  return { kernels: [proj("in1", "out0", wg.dtype === "f16"), proj("in2", "out1", wu.dtype === "f16"), act] };
}

/** SILU_MUL's gradients toward gate and up as f32 functions of (gate, up, dy). */
function siluMulGradHelpers(): string {
  const vars = { a: "a", b: "b", dy: "dy" };
  const dg = printExpr(SILU_MUL.gradGate, vars, "t");
  const du = printExpr(SILU_MUL.gradUp, vars, "t");
  const params = ["a", "b", "dy"];
  return [...new Set([dg.helpers, du.helpers].filter((h) => h)), exprFunction("silu_mul_dgate", params, dg), exprFunction("silu_mul_dup", params, du)].join("\n");
}

/**
 * linear_grad_silu_mul (the fuse pass): in0 dy, in1 W, in2 gate, in3 up; out0 dgate, out1 dup.
 * With the register variant dh = dy·W never leaves the accumulators: the epilogue loads gate and
 * up at each element and stores both gradients. The tiled variant writes dh to scratch and runs
 * the SwiGLU backward over it.
 */
function linearGradSiluMul(ctx: LowerContext): Lowered {
  const [dy, w] = ctx.inputs as [LowerContext["inputs"][number], LowerContext["inputs"][number]];
  for (const i of [0, 2, 3]) if (ctx.inputs[i]!.dtype !== "f32") throw new Error(`linear_grad_silu_mul: input ${i} must be f32, got ${ctx.inputs[i]!.dtype}`);
  const t = flag(ctx, "transposed");
  const N = dy.shape[dy.shape.length - 1]!;
  const K = t ? w.shape[0]! : w.shape[1]!;
  const M = rowsOf(dy.shape);
  const f16 = w.dtype === "f16";
  const helpers = siluMulGradHelpers();
  const label = `linear_dx_silu_mul_${M}x${K}x${N}${t ? "_t" : ""}${f16 ? "_f16" : ""}`;
  const base = { M, N: K, K: N, aLayout: "mk" as const, bLayout: t ? ("nk" as const) : ("kn" as const), bF16: f16, label };
  if (ctx.matmul !== "register") {
    const dh = matmulKernel({ ...base, names: { a: "in0", b: "in1", c: "tmp0" } }, ctx.matmul, ctx.caps);
    const bwd = mapKernel({
      label: `silu_mul_backward_${M * K}_from_scratch`,
      caps: ctx.caps,
      n: M * K,
      bindings: [input(2, "f32"), input(3, "f32"), scratch(0), output(0, "f32"), output(1, "f32")],
      helpers,
      body: `out0[i] = silu_mul_dgate(in2[i], in3[i], tmp0[i]);\nout1[i] = silu_mul_dup(in2[i], in3[i], tmp0[i]);`,
    });
    return { kernels: [dh, bwd], scratch: [4 * M * K] };
  }
  // gate and up are loaded as residuals are (per row where rows are shared), then combined with dh.
  const gate = residualInput("in2", K, ctx.caps, "gt");
  const up = residualInput("in3", K, ctx.caps, "up");
  const loads = residualEpilogue(gate, up);
  const epilogue: Epilogue = {
    ...loads,
    // out1 is stored at C's indices, so it takes C's view (vec4 when the row length allows).
    bindings: [...loads.bindings!, { name: "out1", type: K % 4 === 0 ? "array<vec4<f32>>" : "array<f32>", access: "read_write", elem: "f32" }],
    helpers,
    apply: (v, m, n, pos) => `silu_mul_dgate(${gate.term(m, n, pos)}, ${up.term(m, n, pos)}, ${v})`,
    second: { name: "out1", apply: (v, m, n, pos) => `silu_mul_dup(${gate.term(m, n, pos)}, ${up.term(m, n, pos)}, ${v})` },
    looped: {
      row: loads.looped!.row!,
      apply: (v, m, n, col) => `silu_mul_dgate(${gate.loopTerm(m, n, col)}, ${up.loopTerm(m, n, col)}, ${v})`,
      second: (v, m, n, col) => `silu_mul_dup(${gate.loopTerm(m, n, col)}, ${up.loopTerm(m, n, col)}, ${v})`,
    },
  };
  return { kernels: [matmulKernel({ ...base, names: { a: "in0", b: "in1", c: "out0" }, epilogue }, ctx.matmul, ctx.caps)] };
}

/** dW in W's layout summed over every row: in0 x [..., K], in1 dy [..., N]. */
function linearGradWeight(ctx: LowerContext): Lowered {
  const x = ctx.inputs[0]!;
  const dy = ctx.inputs[1]!;
  const t = flag(ctx, "transposed");
  const K = x.shape[x.shape.length - 1]!;
  const N = dy.shape[dy.shape.length - 1]!;
  const rows = rowsOf(x.shape);
  const alpha = alphaOf(ctx);
  const label = `linear_dw_${N}x${K}x${rows}${t ? "_t" : ""}${alpha !== undefined ? "_s" : ""}`;
  // torch: dW[N,K] = dYᵀ·X (A = dy stored [rows,N] "km", B = x stored [rows,K] "kn");
  // Conv1D: dW[K,N] = Xᵀ·dY (A = x, B = dy).
  const p = t ? { M: K, N, names: { a: "in0", b: "in1", c: "out0" } } : { M: N, N: K, names: { a: "in1", b: "in0", c: "out0" } };
  const k = matmulKernel({ ...p, K: rows, aLayout: "km", bLayout: "kn", label, ...(alpha !== undefined ? { alpha } : {}) }, ctx.matmul, ctx.caps);
  return { kernels: [k] };
}

/**
 * linear_fused (the fuse pass): in0 x, in1 W, then as the flags say bias, LoRA u and B, residual.
 * One matmul: the base x·Wᵀ (+ bias) accumulates over K, and its epilogue adds
 * lora_scale·Σ_j u[m,j]·B[n,j] and the residual at each output element while it is stored, so the
 * output is written once and nothing is read back. Same sums in the same order as the reference:
 * ((x·Wᵀ + b) + s·(u·Bᵀ)) + r.
 */
function linearFused(ctx: LowerContext): Lowered {
  const x = ctx.inputs[0]!;
  const w = ctx.inputs[1]!;
  const t = flag(ctx, "transposed");
  const K = x.shape[x.shape.length - 1]!;
  const N = t ? w.shape[1]! : w.shape[0]!;
  const M = rowsOf(x.shape);
  const f16 = w.dtype === "f16";
  let slot = 2;
  const bias = flag(ctx, "bias") ? slot++ : undefined;
  const scale = ctx.attrs["lora_scale"];
  const lora = typeof scale === "number" ? { u: slot++, b: slot++, scale } : undefined;
  const ranknum = lora && ctx.attrs["lora_ranknum"] === true ? { name: `in${slot++}`, eps: ctx.attrs["lora_eps"] as number } : undefined;
  const residual = flag(ctx, "residual") ? slot++ : undefined;
  for (let i = 0; i < ctx.inputs.length; i++)
    if (i !== 1 && ctx.inputs[i]!.dtype !== "f32") throw new Error(`linear_fused: input ${i} must be f32, got ${ctx.inputs[i]!.dtype}`);
  const rank = lora ? ctx.inputs[lora.u]!.shape[ctx.inputs[lora.u]!.shape.length - 1]! : 0;
  const res = residual !== undefined ? residualInput(`in${residual}`, N, ctx.caps) : undefined;
  const epilogue = lora ? loraEpilogue({ u: `in${lora.u}`, b: `in${lora.b}`, scale: lora.scale, rank, ranknum }, res) : res ? residualEpilogue(res) : undefined;
  const tag = `${t ? "_t" : ""}${f16 ? "_f16" : ""}${bias !== undefined ? "_b" : ""}${lora ? `_r${rank}` : ""}${residual !== undefined ? "_res" : ""}`;
  const k = matmulKernel(
    {
      M, N, K, aLayout: "mk", bLayout: t ? "kn" : "nk", bF16: f16, bias: bias !== undefined,
      names: { a: "in0", b: "in1", c: "out0", ...(bias !== undefined ? { bias: `in${bias}` } : {}) },
      label: `linear_fused_${M}x${N}x${K}${tag}`,
      ...(epilogue ? { epilogue } : {}),
    },
    ctx.matmul,
    ctx.caps,
  );
  if (lora) k.flops += 2 * M * N * rank;
  return { kernels: [k] };
}

/**
 * The epilogue adding s·u[m,:]·B[n,:] (u [M,r], B [N,r]) and then the residual, if given. Each
 * thread first sums the rank-r products of its whole block (tm rows × tn columns) in one loop
 * over j, loading each u and B value once, in the reference's order j = 0..r-1.
 */
function loraEpilogue(
  lora: { u: string; b: string; scale: number; rank: number; ranknum: { name: string; eps: number } | undefined },
  residual: Residual | undefined,
): Epilogue {
  const r = lora.rank;
  if (!Number.isInteger(r) || r < 1) throw new Error(`linear_fused: bad LoRA rank ${r}`);
  // With r a multiple of 4, u and B rows are read as vec4: a quarter of the loads, which on
  // llvmpipe are done lane by lane and dominated the JIT time of the whole kernel.
  const v4 = r % 4 === 0;
  const r4 = r / 4;
  const elemType = v4 ? "array<vec4<f32>>" : "array<f32>";
  const bindings: EpilogueBinding[] = [
    { name: lora.u, type: elemType, access: "read", elem: "f32" },
    { name: lora.b, type: elemType, access: "read", elem: "f32" },
  ];
  if (lora.ranknum) bindings.push({ name: lora.ranknum.name, type: "array<f32>", access: "read", elem: "f32" });
  // AdaLoRA's scale reads ranknum at run time, as rank_scale does: factor / (ranknum[0] + eps).
  const scaleDecl = lora.ranknum ? `let lora_s = ${f32(lora.scale)} / (${lora.ranknum.name}[0] + ${f32(lora.ranknum.eps)});` : "";
  if (residual) bindings.push(residual.binding);
  // Rows shared across a subgroup: B of the thread's columns and u of the lane's own rows are
  // loaded once, and each row's terms are summed just before its stores from broadcast u values.
  // With vec4 rows, a row's terms are vec4 over four of the thread's columns (`rowVec`).
  let rowVec = false;
  const prepareShared = (rows: string[], cols: string[], sh: SharedRows): string => {
    residual?.begin(rows, sh);
    const L: string[] = [scaleDecl];
    rowVec = v4 && cols.length % 4 === 0;
    if (rowVec) {
      cols.forEach((n, c) => L.push(`let lora_b${c} = min(${n}, N - 1u) * ${r4}u;`));
      for (let j = 0; j < r4; j++) cols.forEach((_, c) => L.push(`let lb${c}_${j} = ${lora.b}[lora_b${c} + ${j}u];`));
      sh.laneRows.forEach((row, g) => {
        for (let j = 0; j < r4; j++) L.push(`let lu${g}_${j} = ${lora.u}[${row} * ${r4}u + ${j}u];`);
      });
      return L.join("\n");
    }
    cols.forEach((n, c) => L.push(`let lora_b${c} = min(${n}, N - 1u) * ${r}u;`));
    for (let j = 0; j < r; j++) cols.forEach((_, c) => L.push(`let lb${c}_${j} = ${at(lora.b, `lora_b${c}`, j)};`));
    sh.laneRows.forEach((row, g) => {
      for (let j = 0; j < r; j++) L.push(`let lu${g}_${j} = ${at(lora.u, `${row} * ${r}u`, j)};`);
    });
    return L.join("\n");
  };
  // Element j of a row starting at scalar offset `base` (a multiple of r).
  const at = (buf: string, base: string, j: number | string): string =>
    v4 ? (typeof j === "number" ? `${buf}[(${base}) / 4u + ${Math.floor(j / 4)}u][${j % 4}]` : `${buf}[(${base} + ${j}) / 4u][(${j}) % 4u]`) : `${buf}[${base} + ${j}${typeof j === "number" ? "u" : ""}]`;
  const prepareRow = (i: number, cols: string[], sh: SharedRows): string => {
    const g = Math.floor(i / sh.sg);
    const L: string[] = residual ? residual.row(i, cols) : [];
    if (rowVec) {
      const Q = cols.length / 4;
      for (let q = 0; q < Q; q++) L.push(`var lora${i}_${q} = vec4<f32>(0.0);`);
      for (let j4 = 0; j4 < r4; j4++) {
        L.push(`let lu_${i}_${j4} = ${sh.broadcast(`lu${g}_${j4}`, i)};`);
        for (let t = 0; t < 4; t++)
          for (let q = 0; q < Q; q++) L.push(`lora${i}_${q} += lu_${i}_${j4}[${t}] * vec4<f32>(${[0, 1, 2, 3].map((c) => `lb${4 * q + c}_${j4}[${t}]`).join(", ")});`);
      }
      return L.join("\n");
    }
    cols.forEach((_, c) => L.push(`var lora${i}_${c} = 0.0;`));
    for (let j = 0; j < r; j++) {
      L.push(`let lu_${i}_${j} = ${sh.broadcast(`lu${g}_${j}`, i)};`);
      cols.forEach((_, c) => L.push(`lora${i}_${c} += lu_${i}_${j} * lb${c}_${j};`));
    }
    return L.join("\n");
  };
  const prepare = (rows: string[], cols: string[], sh?: SharedRows): string => {
    if (sh) return prepareShared(rows, cols, sh);
    rowVec = false;
    residual?.begin(rows, undefined);
    const L: string[] = [scaleDecl];
    rows.forEach((m, i) => L.push(`let lora_u${i} = min(${m}, M - 1u) * ${v4 ? r4 : r}u;`));
    cols.forEach((n, c) => L.push(`let lora_b${c} = min(${n}, N - 1u) * ${v4 ? r4 : r}u;`));
    rows.forEach((_, i) => cols.forEach((_, c) => L.push(`var lora${i}_${c} = 0.0;`)));
    if (v4) {
      // Four terms per iteration, still in the order j = 0..r-1.
      L.push(`for (var j = 0u; j < ${r4}u; j++) {`);
      rows.forEach((_, i) => L.push(`  let lu${i} = ${lora.u}[lora_u${i} + j];`));
      cols.forEach((_, c) => L.push(`  let lb${c} = ${lora.b}[lora_b${c} + j];`));
      for (let t = 0; t < 4; t++) rows.forEach((_, i) => cols.forEach((_, c) => L.push(`  lora${i}_${c} += lu${i}[${t}] * lb${c}[${t}];`)));
      L.push(`}`);
      return L.join("\n");
    }
    L.push(`for (var j = 0u; j < ${r}u; j++) {`);
    rows.forEach((_, i) => L.push(`  let lu${i} = ${lora.u}[lora_u${i} + j];`));
    cols.forEach((_, c) => L.push(`  let lb${c} = ${lora.b}[lora_b${c} + j];`));
    rows.forEach((_, i) => cols.forEach((_, c) => L.push(`  lora${i}_${c} += lu${i} * lb${c};`)));
    L.push(`}`);
    return L.join("\n");
  };
  const s = lora.ranknum ? "lora_s" : f32(lora.scale);
  const term = (row: number, col: number) => (rowVec ? `lora${row}_${Math.floor(col / 4)}[${col % 4}]` : `lora${row}_${col}`);
  // The store loop's form (Epilogue.looped): B of the thread's columns and, with shared rows, u
  // of the lane's own rows loaded once; each row's terms summed at the top of its iteration, in
  // the same order j = 0..r-1 as the unrolled form.
  const rr = v4 ? r4 : r;
  const looped = {
    // Each operand is loaded in a loop into a private array, one load written out instead of one
    // per value: half the JIT time of an AdaLoRA kernel on llvmpipe (1.08 against 0.49 s).
    prepare: (cols: string[], sh: SharedRows | undefined, at: LoopedIndex): string => {
      const elem = v4 ? "vec4<f32>" : "f32";
      const fill = (arr: string, buf: string, n: number, index: string): string[] => [
        `var ${arr}: array<${elem}, ${n}>;`,
        `for (var i = 0u; i < select(${n}u, 0u, arrayLength(&${buf}) == 0u); i++) { ${arr}[i] = ${buf}[${index}]; }`,
      ];
      const L: string[] = [scaleDecl];
      L.push(...fill("lbs", lora.b, cols.length * rr, `min(${at.col(`i / ${rr}u`)}, N - 1u) * ${rr}u + i % ${rr}u`));
      for (let j = 0; j < rr; j++) cols.forEach((_, c) => L.push(`let lb${c}_${j} = lbs[${c * rr + j}];`));
      if (sh) {
        L.push(...fill("lus", lora.u, sh.laneRows.length * rr, `${at.laneRow(`i / ${rr}u`)} * ${rr}u + i % ${rr}u`));
        sh.laneRows.forEach((_, g) => {
          for (let j = 0; j < rr; j++) L.push(`let lu${g}_${j} = lus[${g * rr + j}];`);
        });
      }
      return L.join("\n");
    },
    row: (m: string, cols: string[], shuffle?: (valueOf: (g: number) => string) => string): string => {
      const L: string[] = residual ? residual.loopRow(m, cols) : [];
      if (shuffle) for (let j = 0; j < rr; j++) L.push(`let lu_${j} = ${shuffle((g) => `lu${g}_${j}`)};`);
      else for (let j = 0; j < rr; j++) L.push(`let lu_${j} = ${lora.u}[${m} * ${rr}u + ${j}u];`);
      // The kernel's columns come in fours (tn % 4 == 0), so vec4 rows make vec4 terms.
      if (v4) {
        const Q = cols.length / 4;
        for (let q = 0; q < Q; q++) L.push(`var lora_${q} = vec4<f32>(0.0);`);
        for (let j4 = 0; j4 < r4; j4++)
          for (let t = 0; t < 4; t++)
            for (let q = 0; q < Q; q++) L.push(`lora_${q} += lu_${j4}[${t}] * vec4<f32>(${[0, 1, 2, 3].map((c) => `lb${4 * q + c}_${j4}[${t}]`).join(", ")});`);
        return L.join("\n");
      }
      cols.forEach((_, c) => L.push(`var lora_c${c} = 0.0;`));
      for (let j = 0; j < r; j++) cols.forEach((_, c) => L.push(`lora_c${c} += lu_${j} * lb${c}_${j};`));
      return L.join("\n");
    },
    apply: (v: string, m: string, n: string, col: number): string => {
      const t = v4 ? `lora_${Math.floor(col / 4)}[${col % 4}]` : `lora_c${col}`;
      return `${v} + ${s} * ${t}${residual ? ` + ${residual.loopTerm(m, n, col)}` : ""}`;
    },
  };
  return {
    bindings,
    prepare,
    prepareRow,
    apply: (v, m, n, pos) => `${v} + ${s} * ${term(pos.row, pos.col)}${residual ? ` + ${residual.term(m, n, pos)}` : ""}`,
    looped,
  };
}

registerLowerings({ linear, linear_grad_input: linearGradInput, linear_grad_input_sum: linearGradInputSum, linear_grad_weight: linearGradWeight, silu_mul_linear: siluMulLinear, gate_up_silu_mul: gateUpSiluMul, linear_grad_silu_mul: linearGradSiluMul });
// The fuse pass's op may get its lowering elsewhere; this one stands in only while none exists.
if (!lowering("linear_fused")) registerLowerings({ linear_fused: linearFused });
