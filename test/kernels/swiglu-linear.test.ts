// SwiGLU inside llama's MLP projections (the fuse pass), against the reference executor's kernels:
// gate_up_silu_mul computes gate, up and silu(gate)·up in one matmul on CPU adapters (reference:
// both linears, then silu_mul), and as two matmuls and the activation elsewhere; silu_mul_linear
// reads silu(gate)·up where the matmul reads its A on a GPU, and through scratch on CPU adapters
// (reference: silu_mul, the linear, the residual), in vec4 (K % 4 == 0) and scalar form;
// linear_grad_silu_mul stores both of SwiGLU's gradients from the dX accumulators (reference:
// linear_grad_input, then silu_mul_backward), including a GPU's unrolled stores. All: 32-row
// blocks, both weight layouts, an f16 weight, and the tiled variant.

import { beforeAll, describe, expect, it } from "vitest";
import type { MatmulVariant } from "../../src/codegen/wgsl/index.js";
import type { Attrs } from "../../src/ir/index.js";
import type { Device } from "../../src/runtime/device/index.js";
import { randomF32, testDevice } from "./helpers.js";
import { checkOp, f32t, type TestTensor } from "./lowered.js";

let dev: Device;
beforeAll(async () => {
  dev = await testDevice();
});

const TOL = { atol: 1e-4, rtol: 1e-4 };
const weight = (shape: number[], f16: boolean | undefined, data: Float32Array): TestTensor => ({ dtype: f16 ? "f16" : "f32", shape, data });

/** How a case runs: weight layout and dtype, matmul variant, GPU form, and the kernels it lowers to. */
interface Form {
  transposed?: boolean;
  f16?: boolean;
  variant?: MatmulVariant;
  /** Run as a GPU would (no shared rows, stores written out, no pair of products). */
  gpu?: boolean;
  kernels: number;
}

/** `op` against the reference, lowered to `c.kernels` kernels by `c.variant` (an f16 case needs shader-f16). */
async function check(op: string, ins: TestTensor[], attrs: Attrs, c: Form): Promise<void> {
  if (c.f16) expect(dev.caps.f16).toBe(true);
  const { lowered } = await checkOp(dev, op, ins, attrs, TOL, undefined, c.gpu ? { isCpu: false } : {}, c.variant);
  expect(lowered.kernels).toHaveLength(c.kernels);
}

const formName = (c: Form) => `${c.f16 ? " f16 weight" : ""}${c.gpu ? " GPU form" : ""} (${c.variant ?? "register"})`;

/** A forward case: rows, the input's width and the output's. */
interface GateUpCase extends Form {
  M: number;
  K: number;
  N: number;
}

const GATE_UP: GateUpCase[] = [
  { M: 40, K: 44, N: 36, kernels: 1 },
  { M: 13, K: 9, N: 10, transposed: true, kernels: 1 },
  { M: 520, K: 64, N: 172, f16: true, kernels: 1 },
  { M: 70, K: 24, N: 17, kernels: 1 },
  { M: 21, K: 16, N: 12, gpu: true, kernels: 3 },
  { M: 11, K: 20, N: 17, variant: "tiled", kernels: 3 },
];

const gateUpName = (c: GateUpCase) => `M=${c.M} K=${c.K} N=${c.N}${c.transposed ? " w [K,N]" : ""}${formName(c)}`;

describe.each(GATE_UP.map((c) => [gateUpName(c), c] as const))("gate_up_silu_mul %s", (_, c) => {
  it("matches the reference", async () => {
    const seed = 2 * c.M + 3 * c.N + 5 * c.K;
    const w = (s: number) => weight(c.transposed ? [c.K, c.N] : [c.N, c.K], c.f16, randomF32(c.N * c.K, s).map((x) => 2 * x));
    const ins: TestTensor[] = [f32t([c.M, c.K], randomF32(c.M * c.K, seed)), w(seed + 1), w(seed + 2)];
    await check("gate_up_silu_mul", ins, c.transposed ? { transposed: true } : {}, c);
  });
});

interface ForwardCase extends GateUpCase {
  residual: boolean;
}

const FORWARD: ForwardCase[] = [
  { M: 40, K: 44, N: 36, residual: true, kernels: 2 },
  { M: 13, K: 9, N: 10, residual: false, transposed: true, kernels: 2 },
  { M: 520, K: 24, N: 64, residual: true, f16: true, kernels: 2 },
  { M: 40, K: 44, N: 36, residual: true, gpu: true, kernels: 1 },
  { M: 13, K: 9, N: 10, residual: false, transposed: true, gpu: true, kernels: 1 },
  { M: 11, K: 20, N: 17, residual: true, variant: "tiled", kernels: 2 },
];

const forwardName = (c: ForwardCase) => `M=${c.M} K=${c.K} N=${c.N}${c.transposed ? " w [K,N]" : ""}${c.residual ? " residual" : ""}${formName(c)}`;

describe.each(FORWARD.map((c) => [forwardName(c), c] as const))("silu_mul_linear %s", (_, c) => {
  it("matches the reference", async () => {
    const seed = c.M + 3 * c.N + 7 * c.K;
    const ins: TestTensor[] = [
      f32t([c.M, c.K], randomF32(c.M * c.K, seed).map((x) => 4 * x)),
      weight(c.transposed ? [c.K, c.N] : [c.N, c.K], c.f16, randomF32(c.N * c.K, seed + 1)),
      f32t([c.M, c.K], randomF32(c.M * c.K, seed + 2)),
    ];
    if (c.residual) ins.push(f32t([c.M, c.N], randomF32(c.M * c.N, seed + 3)));
    await check("silu_mul_linear", ins, { residual: c.residual, ...(c.transposed ? { transposed: true } : {}) }, c);
  });
});

interface BackwardCase extends Form {
  /** Rows, the activation's width (dX's columns) and dy's width. */
  M: number;
  F: number;
  D: number;
}

const BACKWARD: BackwardCase[] = [
  { M: 40, F: 44, D: 36, kernels: 1 },
  { M: 13, F: 9, D: 10, transposed: true, kernels: 1 },
  { M: 520, F: 172, D: 64, f16: true, kernels: 1 },
  { M: 21, F: 36, D: 12, gpu: true, kernels: 1 },
  { M: 11, F: 17, D: 20, variant: "tiled", kernels: 2 },
];

const backwardName = (c: BackwardCase) => `M=${c.M} F=${c.F} D=${c.D}${c.transposed ? " w [F,D]" : ""}${formName(c)}`;

describe.each(BACKWARD.map((c) => [backwardName(c), c] as const))("linear_grad_silu_mul %s", (_, c) => {
  it("matches the reference", async () => {
    const seed = c.M + 5 * c.F + 11 * c.D;
    const ins: TestTensor[] = [
      f32t([c.M, c.D], randomF32(c.M * c.D, seed)),
      weight(c.transposed ? [c.F, c.D] : [c.D, c.F], c.f16, randomF32(c.F * c.D, seed + 1)),
      f32t([c.M, c.F], randomF32(c.M * c.F, seed + 2).map((x) => 4 * x)),
      f32t([c.M, c.F], randomF32(c.M * c.F, seed + 3)),
    ];
    await check("linear_grad_silu_mul", ins, c.transposed ? { transposed: true } : {}, c);
  });
});
