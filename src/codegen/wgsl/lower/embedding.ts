/**
 * Lowerings of the embedding family (see types.ts for the contract). The lookup is a gather, one
 * thread per output element; ids outside [0, V) read as zeros (the reference rejects them).
 * The gradient is a scatter-add without atomics: a link kernel gives every position the next
 * position holding the same id and marks the first one (the head); a fill zeroes the table; then
 * one thread per (head, column) walks its chain in position order and writes the row's sum, so
 * each table element has one writer and sums come out in the reference's order.
 */
import { input, load, mapKernel, output, scratch, store } from "../kernels/common.js";
import { registerLowerings } from "./registry.js";
import type { Lowering, TensorArg } from "./types.js";

const embedding: Lowering = (ctx) => {
  const [ids, table] = ctx.inputs as [TensorArg, TensorArg];
  const out = ctx.outputs[0]!;
  const tr = ctx.attrs["transposed"] === true;
  const [r, c] = table.shape as [number, number];
  const [V, D] = tr ? [c, r] : [r, c];
  const n = out.shape.reduce((a, b) => a * b, 1);
  const src = tr ? "u32(id) + d * V" : "u32(id) * D + d";
  const body = `let id = in0[i / D];
let d = i % D;
var v = 0.0;
if (id >= 0 && id < i32(V)) { v = ${load("in1", table.dtype, src)}; }
${store("out0", out.dtype, "i", "v")}`;
  return {
    kernels: [
      mapKernel({
        label: `embedding_${n / D}x${V}x${D}${tr ? "_t" : ""}`,
        caps: ctx.caps,
        n,
        bindings: [input(0, "i32"), input(1, table.dtype), output(0, out.dtype)],
        consts: { V, D },
        body,
      }),
    ],
  };
};

/** One row block [start, start + rows) of a table split by rows (program/split.ts); other ids read zeros. */
const embeddingRows: Lowering = (ctx) => {
  const table = ctx.inputs[1]!;
  const out = ctx.outputs[0]!;
  const [R, D] = table.shape as [number, number];
  const start = ctx.attrs["start"];
  if (typeof start !== "number") throw new Error("embedding_rows: start must be a number");
  const n = out.shape.reduce((a, b) => a * b, 1);
  const body = `let r = in0[i / D] - START;
var v = 0.0;
if (r >= 0 && r < i32(R)) { v = ${load("in1", table.dtype, "u32(r) * D + i % D")}; }
${store("out0", out.dtype, "i", "v")}`;
  return {
    kernels: [
      mapKernel({
        label: `embedding_rows_${n / D}x${R}x${D}_at${start}`,
        caps: ctx.caps,
        n,
        bindings: [input(0, "i32"), input(1, table.dtype), output(0, out.dtype)],
        consts: { R, D, START: `${start}i` },
        body,
      }),
    ],
  };
};

const embeddingGrad: Lowering = (ctx) => {
  const [ids, dy] = ctx.inputs as [TensorArg, TensorArg];
  const out = ctx.outputs[0]!;
  const V = ctx.attrs["rows"];
  if (typeof V !== "number") throw new Error("embedding_grad: rows must be a number");
  const tr = ctx.attrs["transposed"] === true;
  const P = ids.shape.reduce((a, b) => a * b, 1);
  const D = dy.shape[dy.shape.length - 1]!;
  const consts = { V, D, P };
  // tmp0[p] = next position with the same id (P at the end); tmp0[P + p] = 1 when p is a head.
  const link = mapKernel({
    label: `embedding_grad_link_${P}`,
    caps: ctx.caps,
    n: P,
    bindings: [input(0, "i32"), scratch(0, "u32")],
    consts,
    body: `let id = in0[i];
var next = P;
for (var j = i + 1u; j < P; j = j + 1u) { if (in0[j] == id) { next = j; break; } }
var head = 1u;
if (id < 0 || id >= i32(V)) { head = 0u; }
for (var j = 0u; j < i; j = j + 1u) { if (in0[j] == id) { head = 0u; break; } }
tmp0[i] = next;
tmp0[P + i] = head;`,
  });
  const zero = mapKernel({
    label: `embedding_grad_zero_${V * D}`,
    caps: ctx.caps,
    n: V * D,
    bindings: [output(0, out.dtype)],
    body: store("out0", out.dtype, "i", "0.0"),
  });
  const dst = tr ? "u32(in0[p]) + d * V" : "u32(in0[p]) * D + d";
  const gather = mapKernel({
    label: `embedding_grad_sum_${P}x${V}x${D}${tr ? "_t" : ""}`,
    caps: ctx.caps,
    n: P * D,
    bindings: [input(0, "i32"), input(1, dy.dtype), scratch(0, "u32"), output(0, out.dtype)],
    consts,
    body: `let p = i / D;
let d = i % D;
if (tmp0[P + p] == 0u) { return; }
var s = 0.0;
var q = p;
loop {
  if (q >= P) { break; }
  s = s + ${load("in1", dy.dtype, "q * D + d")};
  q = tmp0[q];
}
${store("out0", out.dtype, dst, "s")}`,
    flops: P * D,
  });
  return { kernels: [link, zero, gather], scratch: [8 * P] };
};

registerLowerings({ embedding, embedding_rows: embeddingRows, embedding_grad: embeddingGrad });
