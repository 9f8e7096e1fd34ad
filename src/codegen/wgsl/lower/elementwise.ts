/**
 * Lowerings of the elementwise family (see types.ts for the contract). Every kernel body is printed
 * from the expression table the CPU reference evaluates (runtime/reference/elementwise.ts); this
 * file only says which expression each IR op uses and where its variables come from. Dropout is
 * the one op outside the table: its mask is rng.ts's counter hash, keyed by the `rng` binding.
 */
import { ELEMENTWISE, SILU_MUL, type ElementwiseName } from "../../../runtime/reference/elementwise.js";
import type { Expr } from "../../../runtime/reference/expr.js";
import { dropThreshold } from "../../../runtime/reference/rng.js";
import { broadcastIndex, input, load, mapKernel, numel, output, store, type BindingDecl } from "../kernels/common.js";
import { printExpr } from "../kernels/expr-wgsl.js";
import { f32, u32 } from "../render.js";
import { registerLowerings } from "./registry.js";
import type { LowerContext, Lowered, Lowering } from "./types.js";

function num(ctx: LowerContext, key: string): number {
  const v = ctx.attrs[key];
  if (typeof v !== "number") throw new Error(`${ctx.op.op}: attribute '${key}' must be a number`);
  return v;
}

/**
 * One kernel computing, per element, `expr` into out0 (or each of several exprs into out0, out1,
 * ...: all outputs have the same shape); `vars` binds the table's variable names.
 */
function exprKernel(ctx: LowerContext, label: string, expr: Expr | readonly Expr[], vars: (i: string) => Record<string, string>, extra: BindingDecl[] = []): Lowered {
  const exprs = Array.isArray(expr) ? (expr as readonly Expr[]) : [expr as Expr];
  const out = ctx.outputs[0]!;
  const n = numel(out.shape);
  const outputs = ctx.outputs.map((o, k) => output(k, o.dtype));
  const vec = vec4Body(ctx, exprs, vars, extra);
  if (vec) {
    return {
      kernels: [
        mapKernel({
          label: `${label}_${n}_v4`,
          caps: ctx.caps,
          n: n / 4,
          bindings: [...ctx.inputs.map((t, k) => ({ ...input(k, t.dtype), vec4: true })), ...outputs.map((o) => ({ ...o, vec4: true }))],
          helpers: vec.helpers,
          body: vec.body,
          flops: vec.ops * n,
        }),
      ],
    };
  }
  // Each variable is loaded once into a let; the printed expressions read the lets.
  const bound = Object.entries(vars("i"));
  const names = Object.fromEntries(bound.map(([k]) => [k, `v_${k}`]));
  const printed = exprs.map((e, k) => printExpr(e, names, `t${k}_`));
  const ins = ctx.inputs.map((t, k) => input(k, t.dtype));
  const body = [...bound.map(([k, w]) => `let v_${k} = ${w};`), ...printed.flatMap((e, k) => [...e.lets, store(`out${k}`, ctx.outputs[k]!.dtype, "i", e.value)])].join("\n");
  return {
    kernels: [
      mapKernel({
        label: `${label}_${n}`,
        caps: ctx.caps,
        n,
        bindings: [...ins, ...extra, ...outputs],
        helpers: helpersOf(printed),
        body,
        flops: printed.reduce((a, e) => a + e.ops, 0) * n,
      }),
    ],
  };
}

/** The helper functions several printed expressions need, each once. */
function helpersOf(printed: readonly { helpers: string }[]): string {
  return [...new Set(printed.map((e) => e.helpers).filter((h) => h))].join("\n");
}

/**
 * The body of the four-elements-a-thread form, when every tensor is f32 of the output's size (no
 * broadcasting) and n is a multiple of 4: each input is loaded as one vec4 and the scalar
 * expressions run once per lane (8x faster than a thread per element on llvmpipe at 176K values,
 * and wider loads on GPUs). The per-lane arithmetic is the scalar form's, so results are the same.
 */
function vec4Body(ctx: LowerContext, exprs: readonly Expr[], vars: (i: string) => Record<string, string>, extra: BindingDecl[]): { body: string; helpers: string; ops: number } | undefined {
  const n = numel(ctx.outputs[0]!.shape);
  const tensors = [...ctx.inputs, ...ctx.outputs];
  if (n % 4 !== 0 || extra.length || tensors.some((t) => t.dtype !== "f32" || numel(t.shape) !== n)) return undefined;
  const bound = Object.entries(vars("IDX")).map(([k, w]) => [k, w.replace(/\b(in\d+)\[IDX\]/g, "$1_4[LANE]")] as const);
  if (bound.some(([, w]) => w.includes("IDX"))) return undefined;
  const names = Object.fromEntries(bound.map(([k]) => [k, `v_${k}`]));
  const printed = exprs.map((e, k) => printExpr(e, names, `t${k}_`));
  const lanes = [0, 1, 2, 3].map((c) =>
    [
      "{",
      ...bound.map(([k, w]) => `let v_${k} = ${w.replaceAll("LANE", String(c))};`),
      ...printed.flatMap((e, k) => [...e.lets, `r${k}[${c}] = ${e.value};`]),
      "}",
    ].join("\n"),
  );
  const loads = ctx.inputs.map((_, k) => `let in${k}_4 = in${k}[i];`);
  const results = printed.map((_, k) => `var r${k}: vec4<f32>;`);
  const stores = printed.map((_, k) => `out${k}[i] = r${k};`);
  return { body: [...loads, ...results, ...lanes, ...stores].join("\n"), helpers: helpersOf(printed), ops: printed.reduce((a, e) => a + e.ops, 0) };
}

/** A forward activation: y = f(a). */
const activation =
  (name: ElementwiseName): Lowering =>
  (ctx) =>
    exprKernel(ctx, name, ELEMENTWISE[name].forward, (i) => ({ a: load("in0", ctx.inputs[0]!.dtype, i) }));

/** dx from the kept input (or output) in0 and dy in1, by the table's derivative. */
const activationBackward =
  (name: ElementwiseName): Lowering =>
  (ctx) => {
    const op = ELEMENTWISE[name];
    const kept = op.keeps[0] ?? "a";
    return exprKernel(ctx, `${name}_backward`, op.gradA, (i) => ({
      [kept]: load("in0", ctx.inputs[0]!.dtype, i),
      dy: load("in1", ctx.inputs[1]!.dtype, i),
    }));
  };

/** a ∘ b with NumPy broadcasting of both operands to the output shape. */
const binary =
  (name: "add" | "mul"): Lowering =>
  (ctx) => {
    const to = ctx.outputs[0]!.shape;
    const [a, b] = ctx.inputs as [LowerContext["inputs"][0], LowerContext["inputs"][0]];
    return exprKernel(ctx, name, ELEMENTWISE[name].forward, (i) => ({
      a: load("in0", a.dtype, broadcastIndex(i, a.shape, to)),
      b: load("in1", b.dtype, broadcastIndex(i, b.shape, to)),
    }));
  };

const scale: Lowering = (ctx) =>
  exprKernel(ctx, "scale", ELEMENTWISE.scale.forward, (i) => ({ a: load("in0", ctx.inputs[0]!.dtype, i), s: f32(num(ctx, "factor")) }));

/** AdaLoRA's scale reads ranknum at run time: s = factor / (ranknum[0] + eps). */
const rankScale: Lowering = (ctx) =>
  exprKernel(ctx, "rank_scale", ELEMENTWISE.scale.forward, (i) => ({
    a: load("in0", ctx.inputs[0]!.dtype, i),
    s: `${f32(num(ctx, "factor"))} / (${load("in1", ctx.inputs[1]!.dtype, "0u")} + ${f32(num(ctx, "eps"))})`,
  }));

/** rng.ts's mix32, on WGSL's wrapping u32 arithmetic. */
const MIX32 = `
fn mix32(v: u32) -> u32 {
  var x = v;
  x = x ^ (x >> 16u);
  x = x * 0x21f0aaadu;
  x = x ^ (x >> 15u);
  x = x * 0x735a2d97u;
  x = x ^ (x >> 15u);
  return x;
}`;

/**
 * Inverted dropout with the reference mask: element i survives iff (bits(key, i) >> 8) ≥
 * round(p·2^24), key = rng[slot] (the runtime writes streamKey(seed, streamId(stream@step))).
 */
const dropout: Lowering = (ctx) => {
  if (ctx.rngSlot === undefined) throw new Error("dropout lowering needs ctx.rngSlot");
  const p = num(ctx, "p");
  const x = ctx.inputs[0]!;
  const out = ctx.outputs[0]!;
  const n = numel(out.shape);
  const keep = p >= 1 ? "0.0" : `select(0.0, ${load("in0", x.dtype, "i")} * ${f32(1 / (1 - p))}, (bits >> 8u) >= ${u32(dropThreshold(p))})`;
  const body = [`let key = rng[${u32(ctx.rngSlot)}];`, "let bits = mix32(mix32(i ^ key) + key);", store("out0", out.dtype, "i", keep)].join("\n");
  return {
    kernels: [
      mapKernel({
        label: `dropout_${n}`,
        caps: ctx.caps,
        n,
        bindings: [input(0, x.dtype), { name: "rng", dtype: "u32", access: "read" }, output(0, out.dtype)],
        helpers: MIX32,
        body,
        flops: n,
      }),
    ],
  };
};

/** silu(gate) ⊙ up: llama's MLP in one pass (the fuse pass makes it). */
const siluMul: Lowering = (ctx) =>
  exprKernel(ctx, "silu_mul", SILU_MUL.forward, (i) => ({ a: load("in0", ctx.inputs[0]!.dtype, i), b: load("in1", ctx.inputs[1]!.dtype, i) }));

/** (dgate, dup) from gate, up and dy, by SILU_MUL's gradients. */
const siluMulBackward: Lowering = (ctx) =>
  exprKernel(ctx, "silu_mul_backward", [SILU_MUL.gradGate, SILU_MUL.gradUp], (i) => ({
    a: load("in0", ctx.inputs[0]!.dtype, i),
    b: load("in1", ctx.inputs[1]!.dtype, i),
    dy: load("in2", ctx.inputs[2]!.dtype, i),
  }));

registerLowerings({
  silu_mul: siluMul,
  silu_mul_backward: siluMulBackward,
  silu: activation("silu"),
  gelu_tanh: activation("gelu_tanh"),
  gelu: activation("gelu"),
  relu: activation("relu"),
  tanh: activation("tanh"),
  sigmoid: activation("sigmoid"),
  add: binary("add"),
  mul: binary("mul"),
  scale,
  rank_scale: rankScale,
  dropout,
  silu_backward: activationBackward("silu"),
  gelu_tanh_backward: activationBackward("gelu_tanh"),
  gelu_backward: activationBackward("gelu"),
  relu_backward: activationBackward("relu"),
  tanh_backward: activationBackward("tanh"),
  sigmoid_backward: activationBackward("sigmoid"),
});
