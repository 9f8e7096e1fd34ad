/**
 * Lowerings of the movement family (see types.ts for the contract). Row-major layouts make
 * reshape, split_heads and merge_heads pure reinterpretations, and so is a broadcast that only
 * adds size-1 axes: those are aliases of the input, no kernel. A piece of split or slice is a
 * contiguous view when every axis before the split axis has size 1; it becomes an alias when its
 * byte offset also meets WebGPU's storage binding offset alignment (256 bytes, the default
 * minStorageBufferOffsetAlignment). Everything else is a copy kernel, one thread per element.
 */
import { broadcastIndex, elemBytes, input, mapKernel, numel, output, type DType } from "../kernels/common.js";
import { f32 } from "../render.js";
import { registerLowerings } from "./registry.js";
import type { LowerContext, Lowered, Lowering, TensorArg } from "./types.js";

export const BINDING_OFFSET_ALIGNMENT = 256;

const view: Lowering = () => ({ kernels: [], aliases: [{ out: 0, input: 0, offsetBytes: 0 }] });

function axisOf(ctx: LowerContext, rank: number): number {
  const a = ctx.attrs["axis"];
  if (typeof a !== "number") throw new Error(`${ctx.op.op}: axis must be a number`);
  return a < 0 ? a + rank : a;
}

function around(shape: readonly number[], ax: number): { outer: number; len: number; inner: number } {
  return { outer: numel(shape.slice(0, ax)), len: shape[ax]!, inner: numel(shape.slice(ax + 1)) };
}

/**
 * Copies `count` slices along an axis: dst[o, dstAt + j, k] = src[o, srcAt + j, k] for the
 * (outer, length, inner) views of src (`in<src>`) and dst (`out<dst>`).
 */
function copyAlong(
  ctx: LowerContext,
  label: string,
  p: { src: number; dst: number; dtype: DType; outer: number; inner: number; srcLen: number; srcAt: number; dstLen: number; dstAt: number; count: number },
) {
  const n = p.outer * p.count * p.inner;
  return mapKernel({
    label: `${label}_${p.outer}x${p.count}x${p.inner}_${p.srcLen}@${p.srcAt}_${p.dstLen}@${p.dstAt}`,
    caps: ctx.caps,
    n,
    bindings: [input(p.src, p.dtype), output(p.dst, p.dtype)],
    consts: { INNER: p.inner, COUNT: p.count, SRC_LEN: p.srcLen, SRC_AT: p.srcAt, DST_LEN: p.dstLen, DST_AT: p.dstAt },
    body: `let o = i / (COUNT * INNER);
let j = (i / INNER) % COUNT;
let k = i % INNER;
out${p.dst}[(o * DST_LEN + DST_AT + j) * INNER + k] = in${p.src}[(o * SRC_LEN + SRC_AT + j) * INNER + k];`,
  });
}

/** A contiguous piece of input 0 starting `at` along the axis: an alias when it may be one. */
function piece(ctx: LowerContext, out: number, at: number, x: TensorArg, ax: number, lowered: Lowered): void {
  const o = ctx.outputs[out]!;
  const { outer, len, inner } = around(x.shape, ax);
  const count = o.shape[ax]!;
  const offsetBytes = at * inner * elemBytes(x.dtype);
  if (outer === 1 && offsetBytes % BINDING_OFFSET_ALIGNMENT === 0) {
    (lowered.aliases ??= []).push({ out, input: 0, offsetBytes });
    return;
  }
  lowered.kernels.push(
    copyAlong(ctx, ctx.op.op, { src: 0, dst: out, dtype: o.dtype, outer, inner, srcLen: len, srcAt: at, dstLen: count, dstAt: 0, count }),
  );
}

const split: Lowering = (ctx) => {
  const x = ctx.inputs[0]!;
  const ax = axisOf(ctx, x.shape.length);
  const lowered: Lowered = { kernels: [] };
  let at = 0;
  ctx.outputs.forEach((o, k) => {
    piece(ctx, k, at, x, ax, lowered);
    at += o.shape[ax]!;
  });
  return lowered;
};

const slice: Lowering = (ctx) => {
  const x = ctx.inputs[0]!;
  const start = ctx.attrs["start"];
  if (typeof start !== "number") throw new Error("slice: start must be evaluated to a number");
  const lowered: Lowered = { kernels: [] };
  piece(ctx, 0, start, x, axisOf(ctx, x.shape.length), lowered);
  return lowered;
};

/** dy placed at [start, start + len) of a zero tensor along the axis: one pass writes every element. */
const sliceBackward: Lowering = (ctx) => {
  const dy = ctx.inputs[0]!;
  const out = ctx.outputs[0]!;
  const ax = axisOf(ctx, out.shape.length);
  const start = ctx.attrs["start"];
  if (typeof start !== "number") throw new Error("slice_backward: start must be evaluated to a number");
  const { len, inner } = around(out.shape, ax);
  const count = dy.shape[ax]!;
  const n = numel(out.shape);
  return {
    kernels: [
      mapKernel({
        label: `slice_backward_${n}_${len}@${start}x${count}x${inner}`,
        caps: ctx.caps,
        n,
        bindings: [input(0, dy.dtype), output(0, out.dtype)],
        consts: { INNER: inner, LEN: len, START: start, COUNT: count },
        body: `let o = i / (LEN * INNER);
let j = (i / INNER) % LEN;
let k = i % INNER;
var v = ${out.dtype}(0);
if (j >= START && j < START + COUNT) { v = ${dy.dtype === out.dtype ? "" : out.dtype}(in0[(o * COUNT + j - START) * INNER + k]); }
out0[i] = v;`,
      }),
    ],
  };
};

/** One copy kernel per input, each into its range of the output along the axis. */
const concat: Lowering = (ctx) => {
  const out = ctx.outputs[0]!;
  const ax = axisOf(ctx, out.shape.length);
  const { outer, len, inner } = around(out.shape, ax);
  let at = 0;
  const kernels = ctx.inputs.map((x, k) => {
    const count = x.shape[ax]!;
    const kern = copyAlong(ctx, "concat", { src: k, dst: 0, dtype: out.dtype, outer, inner, srcLen: count, srcAt: 0, dstLen: len, dstAt: at, count });
    at += count;
    return kern;
  });
  return { kernels };
};

const broadcast: Lowering = (ctx) => {
  const x = ctx.inputs[0]!;
  const out = ctx.outputs[0]!;
  const n = numel(out.shape);
  if (numel(x.shape) === n) return view(ctx);
  return {
    kernels: [
      mapKernel({
        label: `broadcast_${x.shape.join("x")}_to_${out.shape.join("x")}`,
        caps: ctx.caps,
        n,
        bindings: [input(0, x.dtype), output(0, out.dtype)],
        body: `out0[i] = in0[${broadcastIndex("i", x.shape, out.shape)}];`,
      }),
    ],
  };
};

const full: Lowering = (ctx) => {
  const out = ctx.outputs[0]!;
  const value = ctx.attrs["value"];
  if (typeof value !== "number") throw new Error("full: value must be a number");
  const n = numel(out.shape);
  const literal = out.dtype === "i32" ? `${value}i` : out.dtype === "f16" ? `f16(${f32(value)})` : f32(value);
  return {
    kernels: [
      mapKernel({
        label: `full_${out.dtype}_${n}`,
        caps: ctx.caps,
        n,
        bindings: [output(0, out.dtype)],
        body: `out0[i] = ${literal};`,
      }),
    ],
  };
};

const offset: Lowering = (ctx) => {
  const by = ctx.attrs["by"];
  if (typeof by !== "number" || !Number.isInteger(by)) throw new Error("offset: by must be an integer");
  const n = numel(ctx.outputs[0]!.shape);
  return {
    kernels: [
      mapKernel({
        label: `offset_${n}_${by}`,
        caps: ctx.caps,
        n,
        bindings: [input(0, "i32"), output(0, "i32")],
        body: `out0[i] = in0[i] + ${by}i;`,
      }),
    ],
  };
};

registerLowerings({
  reshape: view,
  split_heads: view,
  merge_heads: view,
  split,
  slice,
  slice_backward: sliceBackward,
  concat,
  broadcast,
  full,
  offset,
});
