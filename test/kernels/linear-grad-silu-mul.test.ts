// linear_grad_silu_mul (the fuse pass's down-projection dX with SwiGLU's backward in its epilogue)
// against the reference executor's kernel (linear_grad_input, then silu_mul_backward): both
// gradients on vec4 rows and odd rows, 32-row blocks, both weight layouts, an f16 weight, the
// unrolled stores of a GPU's form and the tiled variant's dh through scratch.

import { beforeAll, describe, expect, it } from "vitest";
import type { DeviceCaps } from "../../src/codegen/wgsl/caps.js";
import type { MatmulVariant } from "../../src/codegen/wgsl/index.js";
import { lowering, type TensorArg } from "../../src/codegen/wgsl/lower/index.js";
import { inferOp, type Attrs } from "../../src/ir/index.js";
import type { Device } from "../../src/runtime/device/index.js";
import { f16ArrayToF32, f32ArrayToF16 } from "../../src/runtime/io/half.js";
import { FUSED_KERNELS } from "../../src/runtime/reference/exec/fused.js";
import { expectClose, randomF32, testDevice } from "./helpers.js";

let dev: Device;
beforeAll(async () => {
  dev = await testDevice();
});

interface Case {
  /** Rows, the activation's width (dX's columns) and dy's width. */
  M: number;
  F: number;
  D: number;
  transposed?: boolean;
  f16?: boolean;
  variant?: MatmulVariant;
  /** Run as a GPU would (no shared rows, stores written out). */
  gpu?: boolean;
  kernels: number;
}

const CASES: Case[] = [
  { M: 40, F: 44, D: 36, kernels: 1 },
  { M: 13, F: 9, D: 10, transposed: true, kernels: 1 },
  { M: 520, F: 172, D: 64, f16: true, kernels: 1 },
  { M: 21, F: 36, D: 12, gpu: true, kernels: 1 },
  { M: 11, F: 17, D: 20, variant: "tiled", kernels: 2 },
];

const name = (c: Case) => `M=${c.M} F=${c.F} D=${c.D}${c.transposed ? " w [F,D]" : ""}${c.f16 ? " f16 weight" : ""}${c.gpu ? " GPU form" : ""} (${c.variant ?? "register"})`;

describe.each(CASES.map((c) => [name(c), c] as const))("linear_grad_silu_mul %s", (_, c) => {
  it("matches the reference", async () => {
    if (c.f16) expect(dev.caps.f16).toBe(true);
    const seed = c.M + 5 * c.F + 11 * c.D;
    const ins: { t: TensorArg; data: Float32Array }[] = [
      { t: { dtype: "f32", shape: [c.M, c.D] }, data: randomF32(c.M * c.D, seed) },
      { t: { dtype: c.f16 ? "f16" : "f32", shape: c.transposed ? [c.F, c.D] : [c.D, c.F] }, data: randomF32(c.F * c.D, seed + 1) },
      { t: { dtype: "f32", shape: [c.M, c.F] }, data: randomF32(c.M * c.F, seed + 2).map((x) => 4 * x) },
      { t: { dtype: "f32", shape: [c.M, c.F] }, data: randomF32(c.M * c.F, seed + 3) },
    ];
    const attrs: Attrs = c.transposed ? { transposed: true } : {};
    const types = inferOp("linear_grad_silu_mul", ins.map((i) => i.t), attrs);
    if (typeof types === "string") throw new Error(types);
    const outShape = types[0]!.shape.map(Number);
    const caps: DeviceCaps = c.gpu ? { ...dev.caps, isCpu: false } : dev.caps;
    const lowered = lowering("linear_grad_silu_mul")!({
      op: { op: "linear_grad_silu_mul", module: "test", inputs: ins.map((_, i) => `x${i}`), outputs: [{ name: "dg", dtype: "f32", shape: outShape }, { name: "du", dtype: "f32", shape: outShape }], attrs },
      inputs: ins.map((i) => i.t),
      outputs: [{ dtype: "f32", shape: outShape }, { dtype: "f32", shape: outShape }],
      attrs,
      caps,
      matmul: c.variant ?? "register",
    });
    expect(lowered.kernels).toHaveLength(c.kernels);

    await dev.prepare(...lowered.kernels);
    const bufs: Record<string, GPUBuffer> = {};
    ins.forEach((i, n) => (bufs[`in${n}`] = dev.bufferFrom(i.t.dtype === "f16" ? f32ArrayToF16(i.data) : i.data, `in${n}`)));
    for (const o of ["out0", "out1"]) bufs[o] = dev.bufferFrom(new Float32Array(c.M * c.F).fill(NaN), o);
    (lowered.scratch ?? []).forEach((bytes, i) => (bufs[`tmp${i}`] = dev.bufferFrom(new Float32Array(bytes / 4).fill(NaN), `tmp${i}`)));
    let got: Float32Array[];
    try {
      const rec = dev.recorder("linear_grad_silu_mul");
      for (const k of lowered.kernels) rec.dispatch(k, bufs);
      rec.submit();
      got = [await dev.readF32(bufs["out0"]!, c.M * c.F), await dev.readF32(bufs["out1"]!, c.M * c.F)];
    } finally {
      for (const b of Object.values(bufs)) b.destroy();
    }
    const refIns = ins.map((i) => ({ shape: i.t.shape, data: Float64Array.from(i.t.dtype === "f16" ? f16ArrayToF32(f32ArrayToF16(i.data)) : i.data) }));
    const want = FUSED_KERNELS["linear_grad_silu_mul"]!(refIns, attrs, [outShape, outShape], { f64: true, seed: 0, step: 0 });
    expectClose(`dgate ${name(c)}`, got[0]!, want[0] as Float64Array, { atol: 1e-4, rtol: 1e-4 }, c.F);
    expectClose(`dup ${name(c)}`, got[1]!, want[1] as Float64Array, { atol: 1e-4, rtol: 1e-4 }, c.F);
  });
});
