// silu_mul_linear (the fuse pass's down projection reading silu(gate)·up as it goes) against the
// reference executor's kernel (silu_mul, then the linear, then the residual): the register
// variant's mapped A reads in vec4 (K % 4 == 0) and scalar form, 32-row blocks, both weight
// layouts, an f16 weight, and the tiled variant's activation written to scratch first.

import { beforeAll, describe, expect, it } from "vitest";
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
  M: number;
  K: number;
  N: number;
  transposed?: boolean;
  residual: boolean;
  f16?: boolean;
  variant?: MatmulVariant;
  kernels: number;
}

const CASES: Case[] = [
  { M: 40, K: 44, N: 36, residual: true, kernels: 1 },
  { M: 13, K: 9, N: 10, residual: false, transposed: true, kernels: 1 },
  { M: 520, K: 24, N: 64, residual: true, f16: true, kernels: 1 },
  { M: 11, K: 20, N: 17, residual: true, variant: "tiled", kernels: 2 },
];

const name = (c: Case) => `M=${c.M} K=${c.K} N=${c.N}${c.transposed ? " w [K,N]" : ""}${c.residual ? " residual" : ""}${c.f16 ? " f16 weight" : ""} (${c.variant ?? "register"})`;

describe.each(CASES.map((c) => [name(c), c] as const))("silu_mul_linear %s", (_, c) => {
  it("matches the reference", async () => {
    if (c.f16) expect(dev.caps.f16).toBe(true);
    const seed = c.M + 3 * c.N + 7 * c.K;
    const ins: { t: TensorArg; data: Float32Array }[] = [
      { t: { dtype: "f32", shape: [c.M, c.K] }, data: randomF32(c.M * c.K, seed).map((x) => 4 * x) },
      { t: { dtype: c.f16 ? "f16" : "f32", shape: c.transposed ? [c.K, c.N] : [c.N, c.K] }, data: randomF32(c.N * c.K, seed + 1) },
      { t: { dtype: "f32", shape: [c.M, c.K] }, data: randomF32(c.M * c.K, seed + 2) },
    ];
    if (c.residual) ins.push({ t: { dtype: "f32", shape: [c.M, c.N] }, data: randomF32(c.M * c.N, seed + 3) });
    const attrs: Attrs = { residual: c.residual, ...(c.transposed ? { transposed: true } : {}) };
    const types = inferOp("silu_mul_linear", ins.map((i) => i.t), attrs);
    if (typeof types === "string") throw new Error(types);
    const outShape = types[0]!.shape.map(Number);
    const lowered = lowering("silu_mul_linear")!({
      op: { op: "silu_mul_linear", module: "test", inputs: ins.map((_, i) => `x${i}`), outputs: [{ name: "y", dtype: "f32", shape: outShape }], attrs },
      inputs: ins.map((i) => i.t),
      outputs: [{ dtype: "f32", shape: outShape }],
      attrs,
      caps: dev.caps,
      matmul: c.variant ?? "register",
    });
    expect(lowered.kernels).toHaveLength(c.kernels);

    await dev.prepare(...lowered.kernels);
    const bufs: Record<string, GPUBuffer> = {};
    ins.forEach((i, n) => (bufs[`in${n}`] = dev.bufferFrom(i.t.dtype === "f16" ? f32ArrayToF16(i.data) : i.data, `in${n}`)));
    bufs["out0"] = dev.bufferFrom(new Float32Array(c.M * c.N).fill(NaN), "out0");
    (lowered.scratch ?? []).forEach((bytes, i) => (bufs[`tmp${i}`] = dev.bufferFrom(new Float32Array(bytes / 4).fill(NaN), `tmp${i}`)));
    let got: Float32Array;
    try {
      const rec = dev.recorder("silu_mul_linear");
      for (const k of lowered.kernels) rec.dispatch(k, bufs);
      rec.submit();
      got = await dev.readF32(bufs["out0"]!, c.M * c.N);
    } finally {
      for (const b of Object.values(bufs)) b.destroy();
    }
    const refIns = ins.map((i) => ({ shape: i.t.shape, data: Float64Array.from(i.t.dtype === "f16" ? f16ArrayToF32(f32ArrayToF16(i.data)) : i.data) }));
    const [want] = FUSED_KERNELS["silu_mul_linear"]!(refIns, attrs, [outShape], { f64: true, seed: 0, step: 0 });
    expectClose(`silu_mul_linear ${name(c)}`, got, want as Float64Array, { atol: 1e-4, rtol: 1e-4 }, c.N);
  });
});
