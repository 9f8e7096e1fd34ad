// linear_fused (the fuse pass's linear + bias + LoRA + residual) as ONE matmul kernel whose
// epilogue adds lora_scale·u·Bᵀ and the residual, against the reference executor's kernel
// (src/runtime/reference/exec/fused.ts). Every combination of the extras, odd sizes that hit the
// bounds checks (M, N, K, r not multiples of 4 or of the tile), both weight layouts, f16 weights
// (compared with the reference on the rounded weights), a larger odd rank, and both matmul
// variants.

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
  transposed: boolean;
  bias: boolean;
  /** LoRA rank, 0 for none. */
  r: number;
  residual: boolean;
  f16?: boolean;
  variant?: MatmulVariant;
  /** AdaLoRA's scale: lora_scale / (ranknum + eps), ranknum read at run time. */
  ranknum?: number;
}

const CASES: Case[] = [
  { M: 7, K: 13, N: 9, transposed: false, bias: true, r: 0, residual: false },
  { M: 7, K: 13, N: 9, transposed: false, bias: true, r: 3, residual: true },
  { M: 5, K: 16, N: 12, transposed: true, bias: false, r: 4, residual: false },
  { M: 9, K: 11, N: 10, transposed: true, bias: true, r: 0, residual: true },
  { M: 19, K: 36, N: 68, transposed: false, bias: false, r: 8, residual: true, f16: true },
  { M: 6, K: 20, N: 17, transposed: true, bias: true, r: 5, residual: true, f16: true },
  { M: 11, K: 8, N: 20, transposed: false, bias: true, r: 23, residual: false },
  { M: 13, K: 9, N: 70, transposed: false, bias: true, r: 6, residual: true, variant: "tiled" },
  // Row blocks of 32 and 16 on CPU adapters: the LoRA rows shared across 4 and 2 groups of lanes.
  { M: 520, K: 24, N: 36, transposed: false, bias: false, r: 8, residual: true },
  { M: 45, K: 17, N: 40, transposed: true, bias: true, r: 5, residual: false },
  // AdaLoRA: all eight bindings (x, W, bias, out, u, B, ranknum, residual), shared rows and not.
  { M: 70, K: 24, N: 36, transposed: false, bias: true, r: 12, residual: true, ranknum: 7 },
  { M: 5, K: 10, N: 9, transposed: false, bias: true, r: 3, residual: true, ranknum: 2 },
  // Ranks a multiple of 4 read u and B as vec4: in the tiled form, per row below one subgroup
  // (M = 3), and shared rows with odd M, N and two vec4 per row (r = 8 over 4 + 4, r = 16).
  { M: 11, K: 9, N: 37, transposed: false, bias: true, r: 8, residual: true, variant: "tiled" },
  { M: 3, K: 12, N: 40, transposed: false, bias: true, r: 4, residual: true },
  { M: 27, K: 13, N: 41, transposed: true, bias: true, r: 16, residual: true, ranknum: 3 },
  // N % 4 == 0 binds the residual as vec4: shared rows load it per row, fewer rows index it.
  { M: 21, K: 12, N: 44, transposed: false, bias: true, r: 0, residual: true },
  { M: 3, K: 7, N: 36, transposed: true, bias: false, r: 0, residual: true },
];

function label(c: Case): string {
  const extras = [c.bias && "bias", c.r && `lora r=${c.r}`, c.ranknum && `ranknum ${c.ranknum}`, c.residual && "residual"].filter(Boolean).join("+") || "plain";
  return `M=${c.M} K=${c.K} N=${c.N} w ${c.transposed ? "[K,N]" : "[N,K]"} ${extras}${c.f16 ? " f16 weights" : ""} (${c.variant ?? "register"})`;
}

const TOL = { atol: 1e-4, rtol: 1e-4 };

describe.each(CASES.map((c) => [label(c), c] as const))("linear_fused %s", (_, c) => {
  it("matches the reference in one kernel", async () => {
    if (c.f16) expect(dev.caps.f16).toBe(true);
    const seed = c.M * 101 + c.N * 7 + c.K + c.r;
    const x = randomF32(c.M * c.K, seed);
    const w = randomF32(c.N * c.K, seed + 1);
    const ins: { t: TensorArg; data: Float32Array }[] = [
      { t: { dtype: "f32", shape: [c.M, c.K] }, data: x },
      { t: { dtype: c.f16 ? "f16" : "f32", shape: c.transposed ? [c.K, c.N] : [c.N, c.K] }, data: w },
    ];
    if (c.bias) ins.push({ t: { dtype: "f32", shape: [c.N] }, data: randomF32(c.N, seed + 2) });
    if (c.r) {
      ins.push({ t: { dtype: "f32", shape: [c.M, c.r] }, data: randomF32(c.M * c.r, seed + 3) });
      ins.push({ t: { dtype: "f32", shape: [c.N, c.r] }, data: randomF32(c.N * c.r, seed + 4) });
      if (c.ranknum) ins.push({ t: { dtype: "f32", shape: [1] }, data: Float32Array.of(c.ranknum) });
    }
    if (c.residual) ins.push({ t: { dtype: "f32", shape: [c.M, c.N] }, data: randomF32(c.M * c.N, seed + 5) });
    const attrs: Attrs = { bias: c.bias, residual: c.residual, ...(c.transposed ? { transposed: true } : {}), ...(c.r ? { lora_scale: 1.75 } : {}), ...(c.ranknum ? { lora_ranknum: true, lora_eps: 1e-5 } : {}) };
    const types = inferOp("linear_fused", ins.map((i) => i.t), attrs);
    if (typeof types === "string") throw new Error(types);
    const outShape = types[0]!.shape.map(Number);

    const lowered = lowering("linear_fused")!({
      op: { op: "linear_fused", module: "test", inputs: ins.map((_, i) => `x${i}`), outputs: [{ name: "y", dtype: "f32", shape: outShape }], attrs },
      inputs: ins.map((i) => i.t),
      outputs: [{ dtype: "f32", shape: outShape }],
      attrs,
      caps: dev.caps,
      matmul: c.variant ?? "register",
    });
    expect(lowered.kernels).toHaveLength(1);
    expect(lowered.scratch ?? []).toHaveLength(0);

    await dev.prepare(...lowered.kernels);
    const bufs: Record<string, GPUBuffer> = {};
    ins.forEach((i, n) => (bufs[`in${n}`] = dev.bufferFrom(i.t.dtype === "f16" ? f32ArrayToF16(i.data) : i.data, `in${n}`)));
    bufs["out0"] = dev.bufferFrom(new Float32Array(c.M * c.N).fill(NaN), "out0");
    let got: Float32Array;
    try {
      const rec = dev.recorder("linear_fused");
      rec.dispatch(lowered.kernels[0]!, bufs);
      rec.submit();
      got = await dev.readF32(bufs["out0"]!, c.M * c.N);
    } finally {
      for (const b of Object.values(bufs)) b.destroy();
    }

    // The reference on exactly what the kernel reads (f16 weights rounded), in float64.
    const refIns = ins.map((i) => ({
      shape: i.t.shape,
      data: Float64Array.from(i.t.dtype === "f16" ? f16ArrayToF32(f32ArrayToF16(i.data)) : i.data),
    }));
    const [want] = FUSED_KERNELS["linear_fused"]!(refIns, attrs, [outShape], { f64: true, seed: 0, step: 0 });
    expectClose(`linear_fused ${label(c)}`, got, want as Float64Array, TOL, c.N);
  });
});
