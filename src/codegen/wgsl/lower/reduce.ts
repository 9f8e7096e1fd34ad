/**
 * Lowerings of the reduce family (see types.ts for the contract). Each output element has one
 * thread that loops over what it sums, in the reference's order (so sum_to_shape and add_grad
 * match the f32 reference bit for bit): no atomics, no scratch. add_grad takes at most 7 inputs per
 * kernel (8 storage bindings per stage is WebGPU's default) and carries the running sum in out0.
 * SwiGLU's kernels are printed from the silu entry of the elementwise table.
 */
import { ELEMENTWISE } from "../../../runtime/reference/elementwise.js";
import { mul, v } from "../../../runtime/reference/expr.js";
import { input, load, mapKernel, numel, output, store, strides, type BindingDecl } from "../kernels/common.js";
import { printExpr } from "../kernels/expr-wgsl.js";
import { u32 } from "../render.js";
import { registerLowerings } from "./registry.js";
import type { Lowering, TensorArg } from "./types.js";

/** Sum of x over the axes broadcasting added or stretched, in x's flat order per output. */
const sumToShape: Lowering = (ctx) => {
  const x = ctx.inputs[0]!;
  const out = ctx.outputs[0]!;
  const from = x.shape;
  const to = out.shape;
  const pad = from.length - to.length;
  const fs = strides(from);
  const ts = strides(to);
  const kept: string[] = [];
  const reduced: { axis: number; extent: number }[] = [];
  for (let a = 0; a < from.length; a++) {
    const t = a - pad;
    if (t >= 0 && to[t] === from[a]) {
      if (from[a] !== 1) kept.push(`((i / ${u32(ts[t]!)}) % ${u32(to[t]!)}) * ${u32(fs[a]!)}`);
    } else reduced.push({ axis: a, extent: from[a]! });
  }
  const R = numel(reduced.map((r) => r.extent));
  let rs = 1;
  const terms: string[] = [];
  for (let k = reduced.length - 1; k >= 0; k--) {
    const { axis, extent } = reduced[k]!;
    terms.push(`((r / ${u32(rs)}) % ${u32(extent)}) * ${u32(fs[axis]!)}`);
    rs *= extent;
  }
  const n = numel(to);
  return {
    kernels: [
      mapKernel({
        label: `sum_to_shape_${from.join("x")}_to_${to.join("x") || "scalar"}`,
        caps: ctx.caps,
        n,
        bindings: [input(0, x.dtype), output(0, out.dtype)],
        consts: { R },
        body: `let base = ${kept.length ? kept.join(" + ") : "0u"};
var s = 0.0;
for (var r = 0u; r < R; r = r + 1u) { s = s + ${load("in0", x.dtype, terms.length ? `base + ${terms.join(" + ")}` : "base")}; }
${store("out0", out.dtype, "i", "s")}`,
        flops: numel(from),
      }),
    ],
  };
};

const PER_KERNEL = 7;

const addGrad: Lowering = (ctx) => {
  const out = ctx.outputs[0]!;
  const n = numel(out.shape);
  const kernels = [];
  for (let first = 0; first < ctx.inputs.length; first += PER_KERNEL) {
    const group = ctx.inputs.slice(first, first + PER_KERNEL);
    const terms = group.map((t, k) => load(`in${first + k}`, t.dtype, "i"));
    if (first > 0) terms.unshift("out0[i]");
    // f32 sums four elements a thread (same order per element, so the same bits).
    const vec4 = n % 4 === 0 && out.dtype === "f32" && group.every((t) => t.dtype === "f32");
    const bindings: BindingDecl[] = [...group.map((t, k) => input(first + k, t.dtype)), output(0, out.dtype)].map((b) => (vec4 ? { ...b, vec4 } : b));
    kernels.push(
      mapKernel({
        label: `add_grad_${n}_${first}+${group.length}${vec4 ? "_v4" : ""}`,
        caps: ctx.caps,
        n: vec4 ? n / 4 : n,
        bindings,
        body: store("out0", out.dtype, "i", terms.join(" + ")),
        flops: n * group.length,
      }),
    );
  }
  return { kernels };
};

const meanSeq: Lowering = (ctx) => {
  const x = ctx.inputs[0]!;
  const out = ctx.outputs[0]!;
  const [B, T] = x.shape as [number, number];
  const inner = numel(x.shape.slice(2));
  return {
    kernels: [
      mapKernel({
        label: `mean_seq_${B}x${T}x${inner}`,
        caps: ctx.caps,
        n: B * inner,
        bindings: [input(0, x.dtype), output(0, out.dtype)],
        consts: { T, INNER: inner },
        body: `let b = i / INNER;
let k = i % INNER;
var s = 0.0;
for (var t = 0u; t < T; t = t + 1u) { s = s + ${load("in0", x.dtype, "(b * T + t) * INNER + k")}; }
${store("out0", out.dtype, "i", "s / f32(T)")}`,
        flops: B * T * inner,
      }),
    ],
  };
};

const meanSeqBackward: Lowering = (ctx) => {
  const dy = ctx.inputs[0]!;
  const out = ctx.outputs[0]!;
  const [B, L] = out.shape as [number, number];
  const inner = numel(out.shape.slice(2));
  return {
    kernels: [
      mapKernel({
        label: `mean_seq_backward_${B}x${L}x${inner}`,
        caps: ctx.caps,
        n: B * L * inner,
        bindings: [input(0, dy.dtype), output(0, out.dtype)],
        consts: { L, INNER: inner },
        body: store("out0", out.dtype, "i", `${load("in0", dy.dtype, "(i / (L * INNER)) * INNER + i % INNER")} / f32(L)`),
        flops: B * L * inner,
      }),
    ],
  };
};

/** x [..., 2F] → rows of gate g = x[:, :F] and up u = x[:, F:]. */
function swigluShape(x: TensorArg): { M: number; F: number } {
  const F = x.shape[x.shape.length - 1]! / 2;
  return { M: numel(x.shape) / (2 * F), F };
}

const swiglu: Lowering = (ctx) => {
  const x = ctx.inputs[0]!;
  const out = ctx.outputs[0]!;
  const { M, F } = swigluShape(x);
  const e = printExpr(mul(ELEMENTWISE.silu.forward, v("b")), {
    a: load("in0", x.dtype, "m * 2u * F + f"),
    b: load("in0", x.dtype, "m * 2u * F + F + f"),
  });
  return {
    kernels: [
      mapKernel({
        label: `swiglu_${M}x${F}`,
        caps: ctx.caps,
        n: M * F,
        bindings: [input(0, x.dtype), output(0, out.dtype)],
        consts: { F },
        helpers: e.helpers,
        body: ["let m = i / F;", "let f = i % F;", ...e.lets, store("out0", out.dtype, "i", e.value)].join("\n"),
        flops: e.ops * M * F,
      }),
    ],
  };
};

/** d/dg = silu'(g)·(dy·u) by the table's silu derivative; d/du = dy·silu(g). */
const swigluBackward: Lowering = (ctx) => {
  const [x, dy] = ctx.inputs as [TensorArg, TensorArg];
  const out = ctx.outputs[0]!;
  const { M, F } = swigluShape(x);
  const vars = { a: "g", b: "u", dy: "d" };
  const dg = printExpr(ELEMENTWISE.silu.gradA, { ...vars, dy: "d * u" }, "p");
  const du = printExpr(mul(v("dy"), ELEMENTWISE.silu.forward), vars, "q");
  return {
    kernels: [
      mapKernel({
        label: `swiglu_backward_${M}x${F}`,
        caps: ctx.caps,
        n: M * 2 * F,
        bindings: [input(0, x.dtype), input(1, dy.dtype), output(0, out.dtype)],
        consts: { F },
        helpers: dg.helpers || du.helpers,
        body: [
          "let m = i / (2u * F);",
          "let f = i % F;",
          `let g = ${load("in0", x.dtype, "m * 2u * F + f")};`,
          `let u = ${load("in0", x.dtype, "m * 2u * F + F + f")};`,
          `let d = ${load("in1", dy.dtype, "m * F + f")};`,
          "if ((i % (2u * F)) < F) {",
          ...dg.lets.map((l) => `  ${l}`),
          `  ${store("out0", out.dtype, "i", dg.value)}`,
          "} else {",
          ...du.lets.map((l) => `  ${l}`),
          `  ${store("out0", out.dtype, "i", du.value)}`,
          "}",
        ].join("\n"),
        flops: (dg.ops + du.ops) * M * F,
      }),
    ],
  };
};

registerLowerings({
  sum_to_shape: sumToShape,
  add_grad: addGrad,
  mean_seq: meanSeq,
  mean_seq_backward: meanSeqBackward,
  swiglu,
  swiglu_backward: swigluBackward,
});
