// Every matmul variant computes torch.nn.Linear (w [N,K]) and GPT-2 Conv1D (w [K,N]) forward as
// the CPU reference does, on odd sizes that hit every bounds check (M, N, K not multiples of the
// tile, of 4, or of the workgroup), with bias, batched rows and an epilogue.

import { beforeAll, describe, expect, it } from "vitest";
import { linearForwardKernel, MATMUL_VARIANTS, matmulKernel, type MatmulVariant } from "../../src/codegen/wgsl/index.js";
import type { Device } from "../../src/runtime/device/index.js";
import { linearForward } from "../../src/runtime/reference/linear.js";
import { expectClose, F32_TOL, randomF32, runKernel, testDevice, toF64 } from "./helpers.js";

// [M, K, N]: each odd size of each dimension appears at least once against both layouts.
const SHAPES: [number, number, number][] = [
  [1, 5, 7],
  [3, 64, 129],
  [17, 67, 64],
  [130, 64, 7],
  [130, 67, 129],
  [17, 5, 64],
  // A LoRA down-projection's shape: few output columns, many rows split across each workgroup's threads.
  [1301, 16, 8],
];

let dev: Device;
beforeAll(async () => {
  dev = await testDevice();
});

async function checkForward(variant: MatmulVariant, M: number, K: number, N: number, transposed: boolean, bias: boolean, seed: number) {
  const x = randomF32(M * K, seed);
  const w = randomF32(N * K, seed + 1);
  const b = bias ? randomF32(N, seed + 2) : undefined;
  const spec = linearForwardKernel({ rows: M, K, N, transposed, bias }, variant, dev.caps);
  const inputs: Record<string, Float32Array> = { x, w };
  if (b) inputs["bias"] = b;
  const got = await runKernel(dev, spec, inputs, { name: "y", count: M * N });
  const want = linearForward(toF64(x), toF64(w), b && toF64(b), { M, K, N, transposed });
  expectClose(`${spec.label} bias=${bias}`, got, want, F32_TOL, N);
}

describe.each(MATMUL_VARIANTS.map((v) => [v]))("linear forward, %s variant", (variant) => {
  for (const [M, K, N] of SHAPES) {
    for (const transposed of [false, true]) {
      it(`M=${M} K=${K} N=${N} w ${transposed ? "[K,N]" : "[N,K]"}`, async () => {
        await checkForward(variant, M, K, N, transposed, M % 2 === 1, M * 7 + K * 3 + N + (transposed ? 1000 : 0));
      });
    }
  }

  it("flattens batched leading dims [B, T] into rows", async () => {
    const [B, T, K, N] = [3, 5, 12, 20];
    const x = randomF32(B * T * K, 41);
    const w = randomF32(N * K, 42);
    const spec = linearForwardKernel({ rows: [B, T], K, N }, variant, dev.caps);
    expect(spec.flops).toBe(2 * B * T * K * N);
    const got = await runKernel(dev, spec, { x, w }, { name: "y", count: B * T * N });
    expectClose("batched", got, linearForward(toF64(x), toF64(w), undefined, { M: B * T, K, N }), F32_TOL, N);
  });

  it("applies alpha, bias and an epilogue with its own binding (scaled residual + relu)", async () => {
    const [M, K, N] = [9, 20, 13];
    const x = randomF32(M * K, 51);
    const w = randomF32(N * K, 52);
    const bias = randomF32(N, 53);
    const res = randomF32(M * N, 54);
    const spec = matmulKernel(
      {
        M,
        N,
        K,
        aLayout: "mk",
        bLayout: "nk",
        alpha: 0.5,
        bias: true,
        epilogue: {
          bindings: [{ name: "res", type: "array<f32>", access: "read", elem: "f32" }],
          helpers: "fn relu(v: f32) -> f32 { return max(v, 0.0); }",
          apply: (v, m, n) => `relu(${v} + res[${m} * N + ${n}])`,
        },
      },
      variant,
      dev.caps,
    );
    const got = await runKernel(dev, spec, { a: x, b: w, bias, res }, { name: "c", count: M * N });
    const lin = linearForward(toF64(x), toF64(w), undefined, { M, K, N });
    const want = lin.map((v, i) => Math.max(0.5 * v + bias[i % N]! + res[i]!, 0));
    expectClose("epilogue", got, want, F32_TOL, N);
    expect(want.some((v) => v === 0) && want.some((v) => v > 0)).toBe(true);
  });
});
