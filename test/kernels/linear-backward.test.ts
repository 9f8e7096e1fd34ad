// Linear backward on the GPU against the CPU reference: dX = dY·W and dW (summed over all rows,
// in w's own layout) for both weight layouts and every variant, on odd sizes; dW accumulates
// into what the buffer already holds.

import { beforeAll, describe, it } from "vitest";
import { linearBackwardInputKernel, linearBackwardWeightKernel, MATMUL_VARIANTS } from "../../src/codegen/wgsl/index.js";
import type { Device } from "../../src/runtime/device/index.js";
import { linearBackward } from "../../src/runtime/reference/linear.js";
import { expectClose, F32_TOL, randomF32, runKernel, testDevice, toF64 } from "./helpers.js";

const SHAPES: [number, number, number][] = [
  [1, 5, 7],
  [17, 67, 64],
  [130, 64, 129],
];

let dev: Device;
beforeAll(async () => {
  dev = await testDevice();
});

describe.each(MATMUL_VARIANTS.map((v) => [v]))("linear backward, %s variant", (variant) => {
  for (const [M, K, N] of SHAPES) {
    for (const transposed of [false, true]) {
      const layout = transposed ? "[K,N]" : "[N,K]";
      it(`dX, M=${M} K=${K} N=${N} w ${layout}`, async () => {
        const w = randomF32(N * K, M + K + N);
        const dy = randomF32(M * N, M * K + 1);
        const spec = linearBackwardInputKernel({ rows: M, K, N, transposed }, variant, dev.caps);
        const got = await runKernel(dev, spec, { dy, w }, { name: "dx", count: M * K });
        const want = linearBackward(new Float64Array(M * K), toF64(w), toF64(dy), { M, K, N, transposed }, { dx: true }).dx!;
        expectClose(spec.label, got, want, F32_TOL, K);
      });

      it(`dW accumulated, M=${M} K=${K} N=${N} w ${layout}`, async () => {
        const x = randomF32(M * K, 2 * M + K);
        const dy = randomF32(M * N, 3 * N + M);
        const before = randomF32(N * K, 99);
        const spec = linearBackwardWeightKernel({ rows: M, K, N, transposed, accumulate: true }, variant, dev.caps);
        const got = await runKernel(dev, spec, { x, dy }, { name: "dw", count: N * K, init: before });
        const dw = linearBackward(toF64(x), new Float64Array(N * K), toF64(dy), { M, K, N, transposed }, { dw: true }).dw!;
        const want = dw.map((v, i) => v + before[i]!);
        expectClose(spec.label, got, want, { atol: 1e-4 * Math.max(1, Math.sqrt(M)), rtol: 1e-4 }, transposed ? N : K);
      });
    }
  }
});
