// Frozen weights stored as f16 (shader-f16). The kernel must read exactly the rounded weights: it
// matches the reference run on those rounded values within f32 tolerance, and the unrounded
// reference within the f16 bound 2^-11·Σ|x||w| (each weight's relative rounding error ≤ 2^-11).

import { beforeAll, describe, expect, it } from "vitest";
import { linearBackwardInputKernel, linearForwardKernel, MATMUL_VARIANTS } from "../../src/codegen/wgsl/index.js";
import type { Device } from "../../src/runtime/device/index.js";
import { f16ArrayToF32, f32ArrayToF16 } from "../../src/runtime/io/half.js";
import { linearBackward, linearForward } from "../../src/runtime/reference/linear.js";
import { expectClose, F32_TOL, randomF32, runKernel, testDevice, toF64 } from "./helpers.js";

let dev: Device;
beforeAll(async () => {
  dev = await testDevice();
});

describe.each(MATMUL_VARIANTS.map((v) => [v]))("f16 weights, %s variant", (variant) => {
  for (const [M, K, N] of [[19, 68, 36], [5, 7, 9]] as const)
  for (const transposed of [false, true]) {
    it(`forward and dX, M=${M} K=${K} N=${N} w ${transposed ? "[K,N]" : "[N,K]"}`, async () => {
      expect(dev.caps.f16).toBe(true);
      const x = randomF32(M * K, 5);
      const w = randomF32(N * K, 6);
      const wHalf = f32ArrayToF16(w);
      const wRounded = f16ArrayToF32(wHalf);
      const shape = { M, K, N, transposed };

      const fwd = linearForwardKernel({ rows: M, K, N, transposed, weightF16: true }, variant, dev.caps);
      const y = await runKernel(dev, fwd, { x, w: wHalf }, { name: "y", count: M * N });
      expectClose(`${fwd.label} vs rounded`, y, linearForward(toF64(x), toF64(wRounded), undefined, shape), F32_TOL, N);
      const absX = toF64(x).map(Math.abs);
      const absW = toF64(w).map(Math.abs);
      const bound = linearForward(absX, absW, undefined, shape).map((v) => v * 2 ** -11);
      expectClose(`${fwd.label} vs f32 weights`, y, linearForward(toF64(x), toF64(w), undefined, shape), { ...F32_TOL, bound }, N);

      const dy = randomF32(M * N, 7);
      const dxSpec = linearBackwardInputKernel({ rows: M, K, N, transposed, weightF16: true }, variant, dev.caps);
      const dx = await runKernel(dev, dxSpec, { dy, w: wHalf }, { name: "dx", count: M * K });
      const want = linearBackward(new Float64Array(M * K), toF64(wRounded), toF64(dy), shape, { dx: true }).dx!;
      expectClose(`${dxSpec.label} vs rounded`, dx, want, F32_TOL, K);
    });
  }
});
