// The register matmul with its rows shared across a subgroup (each lane loads some rows once,
// subgroupBroadcast hands them to every lane): every layout, the vec4 and the scalar K paths,
// row blocks of one to four subgroups, row counts that leave a partial block, f16 weights and the
// accumulate/alpha/bias/epilogue stores, against an f64 product computed here.

import { beforeAll, describe, expect, it } from "vitest";
import { defaultRegisterTuning, registerMatmul, type ALayout, type BLayout, type MatmulProblem } from "../../src/codegen/wgsl/index.js";
import { BASELINE_CAPS } from "../../src/codegen/wgsl/caps.js";
import type { Device } from "../../src/runtime/device/index.js";
import { f16ArrayToF32, f32ArrayToF16 } from "../../src/runtime/io/half.js";
import { expectClose, F32_TOL, randomF32, runKernel, testDevice } from "./helpers.js";

let dev: Device;
beforeAll(async () => {
  dev = await testDevice();
});

/** C[m,n] = Σ_k A(m,k)·B(k,n) in f64 for the stored layouts. */
function product(a: Float32Array, b: Float32Array, p: MatmulProblem): Float64Array {
  const { M, N, K } = p;
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        const av = p.aLayout === "mk" ? a[m * K + k]! : a[k * M + m]!;
        const bv = p.bLayout === "nk" ? b[n * K + k]! : b[k * N + n]!;
        s += av * bv;
      }
      out[m * N + n] = s;
    }
  return out;
}

// [M, N, K]: all aligned (vec4 loads, K unrolled by 4), K odd (one k a step, scalar loads), and
// everything odd with M leaving a partial row block.
const SHAPES: [number, number, number][] = [
  [72, 36, 68],
  [40, 64, 29],
  [45, 37, 30],
];
const LAYOUTS: [ALayout, BLayout][] = [
  ["mk", "nk"],
  ["mk", "kn"],
  ["km", "kn"],
  ["km", "nk"],
];

describe("register matmul, rows shared across the subgroup", () => {
  it("is what the device gets by default on a CPU adapter with a fixed subgroup size", () => {
    const p: MatmulProblem = { M: 512, N: 768, K: 768, aLayout: "mk", bLayout: "nk" };
    if (dev.caps.isCpu) {
      expect(dev.caps.subgroupSize).toBeGreaterThan(0);
      expect(defaultRegisterTuning(p, dev.caps)).toEqual({ tm: 32, tn: 4, wg: 64, sg: dev.caps.subgroupSize });
      expect(registerMatmul(p, dev.caps).wgsl).toContain("subgroupBroadcast");
    }
    // Short M (decoding one token) and devices without one subgroup size keep rows per thread.
    expect(defaultRegisterTuning({ ...p, M: 1 }, dev.caps).sg ?? 0).toBe(0);
    expect(defaultRegisterTuning(p, { ...dev.caps, subgroupSize: 0 }).sg ?? 0).toBe(0);
    expect(defaultRegisterTuning(p, { ...dev.caps, isCpu: false }).sg ?? 0).toBe(0);
  });

  it("refuses a subgroup size the device does not run, and row blocks that do not split into it", () => {
    const p: MatmulProblem = { M: 64, N: 64, K: 64, aLayout: "mk", bLayout: "nk" };
    expect(() => registerMatmul(p, { ...BASELINE_CAPS, subgroups: true, subgroupSize: 16 }, { tm: 16, tn: 4, wg: 64, sg: 8 })).toThrow(/exactly 8 lanes/);
    expect(() => registerMatmul(p, { ...BASELINE_CAPS, subgroups: true, subgroupSize: 8 }, { tm: 12, tn: 4, wg: 64, sg: 8 })).toThrow(/multiples of sg/);
  });

  // Each layout meets each shape once; the row block rotates through 1, 2 and 4 subgroups so each
  // size meets every layout and every K path. The first shape also runs with rows per thread
  // (what devices without one subgroup size get), as the other half of the comparison.
  LAYOUTS.forEach(([aLayout, bLayout], li) =>
    SHAPES.forEach(([M, N, K], si) => {
      const blocks = [1, 2, 4][(li + si) % 3]!;
      it(`A ${aLayout}, B ${bLayout}, M=${M} N=${N} K=${K}, row blocks of ${blocks} subgroup(s)`, async () => {
        const sg = dev.caps.subgroupSize;
        expect(sg).toBeGreaterThan(0);
        const p: MatmulProblem = { M, N, K, aLayout, bLayout };
        const a = randomF32(M * K, M + K);
        const b = randomF32(N * K, N + 7 * K);
        const want = product(a, b, p);
        const spec = registerMatmul(p, dev.caps, { tm: blocks * sg, tn: 4, wg: 2 * sg, sg });
        expect(spec.wgsl).toContain("subgroupBroadcast");
        expectClose(spec.label, await runKernel(dev, spec, { a, b }, { name: "c", count: M * N }), want, F32_TOL, N);
        if (si === 0) {
          const plain = registerMatmul(p, { ...dev.caps, subgroupSize: 0 }, { tm: 8, tn: 4, wg: 16 });
          expect(plain.wgsl).not.toContain("subgroupBroadcast");
          expectClose(`${plain.label} rows per thread`, await runKernel(dev, plain, { a, b }, { name: "c", count: M * N }), want, F32_TOL, N);
        }
      });
    }),
  );

  it("f16 weights, alpha, bias, an epilogue and accumulation into C", async () => {
    const sg = dev.caps.subgroupSize;
    expect(sg).toBeGreaterThan(0);
    const [M, N, K] = [45, 36, 68];
    const a = randomF32(M * K, 3);
    const bHalf = f32ArrayToF16(randomF32(N * K, 4));
    const bRounded = f16ArrayToF32(bHalf);
    const bias = randomF32(N, 5);
    const before = randomF32(M * N, 6);
    const p: MatmulProblem = {
      M,
      N,
      K,
      aLayout: "mk",
      bLayout: "nk",
      bF16: true,
      alpha: 0.5,
      bias: true,
      accumulate: true,
      epilogue: { helpers: "fn clampv(v: f32) -> f32 { return clamp(v, -2.0, 2.0); }", apply: (v) => `clampv(${v})` },
    };
    const spec = registerMatmul(p, dev.caps, { tm: 2 * sg, tn: 4, wg: 2 * sg, sg });
    const got = await runKernel(dev, spec, { a, b: bHalf, bias }, { name: "c", count: M * N, init: before });
    const prod = product(a, bRounded, p);
    const want = prod.map((v, i) => before[i]! + Math.min(2, Math.max(-2, 0.5 * v + bias[i % N]!)));
    expectClose(spec.label, got, want, F32_TOL, N);
  });
});
