// The elementwise lowerings (printed from the reference's expression table) against the reference
// executor's kernels on random inputs of odd sizes: activations and their backward ops over a wide
// input range, add/mul under broadcasting, scale, rank_scale, dropout's exact mask, an f16 input;
// and the registry holds a lowering for every op of the kernel families.

import { beforeAll, describe, expect, it } from "vitest";
import { cpuMapGeometry } from "../../src/codegen/wgsl/kernels/common.js";
import { loweredOps } from "../../src/codegen/wgsl/lower/index.js";
import { OPS } from "../../src/ir/index.js";
import type { Device } from "../../src/runtime/device/index.js";
import { randomF32, testDevice } from "./helpers.js";
import { checkOp, f32t, runLowered, type RunResult, type TestTensor } from "./lowered.js";

// exp/tanh in f32 (a few ulp each) and erf by A&S 7.1.26 (|error| ≤ 1.5e-7).
const TOL = { atol: 2e-6, rtol: 2e-5 };

let dev: Device;
beforeAll(async () => {
  dev = await testDevice();
});

const SHAPE = [3, 7, 13];
const N = 3 * 7 * 13;
const numelOf = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);
const scaled = (n: number, seed: number, k: number): Float32Array => randomF32(n, seed).map((v) => v * k);

/** Every kernel of the op ran in the four-lanes-a-thread form. */
const allVec4 = (r: RunResult): void => expect(r.lowered.kernels.every((k) => k.label.endsWith("_v4"))).toBe(true);

describe("four elements a thread (f32, no broadcasting, size a multiple of 4)", () => {
  const S4 = [4, 6, 10];
  it("silu, gelu_tanh, sigmoid forward and backward", async () => {
    for (const [i, op] of ["silu", "gelu_tanh", "sigmoid"].entries()) {
      const x = f32t(S4, scaled(240, 40 + i, op === "sigmoid" ? 0.999 : 9).map((v) => (op === "sigmoid" ? 0.5 + 0.5 * v : v)));
      allVec4(await checkOp(dev, op, [x], {}, TOL));
      allVec4(await checkOp(dev, `${op}_backward`, [x, f32t(S4, randomF32(240, 50 + i))], {}, TOL));
    }
  });
  it("add, mul and scale", async () => {
    const [a, b] = [f32t(S4, randomF32(240, 61)), f32t(S4, randomF32(240, 62))];
    allVec4(await checkOp(dev, "add", [a, b], {}, TOL));
    allVec4(await checkOp(dev, "mul", [a, b], {}, TOL));
    allVec4(await checkOp(dev, "scale", [a], { factor: -1.5 }, TOL));
  });
});

// On CPU adapters a map kernel's threads loop over runs of elements (common.ts): sizes where every
// thread takes several, the last run partly past the end, in both the scalar and the vec4 form,
// and on the GPU form (one element a thread) for comparison.
describe("map kernels whose threads loop (CPU adapters)", () => {
  it("the geometry covers every element once", () => {
    for (const n of [1, 63, 64, 257, 4097, 70001, 393216, 5_000_000]) {
      const g = cpuMapGeometry(n);
      expect(g.groups * 64 * g.perThread).toBeGreaterThanOrEqual(n);
      // The last workgroup starts before the end.
      expect((g.groups - 1) * 64 * g.perThread).toBeLessThan(n);
      expect(g.groups).toBeGreaterThanOrEqual(Math.min(2, Math.ceil(n / 64)));
      expect(g.groups).toBeLessThanOrEqual(16);
    }
  });
  for (const [shape, what] of [[[7, 10001], "scalar"], [[4, 25003], "vec4"]] as const) {
    it.each([["CPU", true], ["GPU", false]] as const)(`silu_backward and add on ${JSON.stringify(shape)} (${what}), %s form`, async (_, isCpu) => {
      const n = numelOf([...shape]);
      const x = f32t([...shape], scaled(n, 81, 6));
      const dy = f32t([...shape], randomF32(n, 82));
      const r = await checkOp(dev, "silu_backward", [x, dy], {}, TOL, undefined, { isCpu });
      expect(r.lowered.kernels[0]!.wgsl.includes("map_item")).toBe(isCpu);
      await checkOp(dev, "add", [x, dy], {}, TOL, undefined, { isCpu });
    });
  }
});

describe("silu_mul (llama's fused SwiGLU)", () => {
  for (const shape of [[3, 7, 13], [4, 6, 10]]) {
    it(`forward and backward on ${JSON.stringify(shape)}${numelOf(shape) % 4 === 0 ? " (four a thread)" : ""}`, async () => {
      const n = numelOf(shape);
      const [gate, up, dy] = [f32t(shape, scaled(n, 71, 6)), f32t(shape, randomF32(n, 72)), f32t(shape, randomF32(n, 73))];
      const fwd = await checkOp(dev, "silu_mul", [gate, up], {}, TOL);
      const bwd = await checkOp(dev, "silu_mul_backward", [gate, up, dy], {}, TOL);
      for (const r of [fwd, bwd]) expect(r.lowered.kernels.every((k) => k.label.endsWith("_v4"))).toBe(n % 4 === 0);
    });
  }
});

describe("activations", () => {
  for (const [i, op] of ["silu", "gelu_tanh", "gelu", "relu", "tanh", "sigmoid"].entries()) {
    it(`${op} forward and ${op}_backward`, async () => {
      const x = f32t(SHAPE, scaled(N, 10 + i, 9));
      await checkOp(dev, op, [x], {}, TOL);
      // tanh and sigmoid keep their output: feed values in their range.
      const kept = op === "tanh" ? f32t(SHAPE, scaled(N, 20 + i, 0.999)) : op === "sigmoid" ? f32t(SHAPE, randomF32(N, 20 + i).map((v) => 0.5 + 0.499 * v)) : x;
      const dy = f32t(SHAPE, randomF32(N, 30 + i));
      await checkOp(dev, `${op}_backward`, [kept, dy], {}, TOL);
    });
  }

  it("silu reads and writes f16 tensors", async () => {
    expect(dev.caps.f16).toBe(true);
    const x: TestTensor = { dtype: "f16", shape: [5, 9], data: scaled(45, 3, 4) };
    await checkOp(dev, "silu", [x], {}, { atol: 1e-3, rtol: 1e-3 });
  });
});

describe("binary ops with broadcasting", () => {
  const cases: [string, number[], number[]][] = [
    ["add", [3, 1, 5], [4, 1]],
    ["add", [7, 9], [7, 9]],
    ["mul", [2, 3, 5], [5]],
    ["mul", [1], [3, 1, 7]],
  ];
  for (const [op, sa, sb] of cases) {
    it(`${op} ${JSON.stringify(sa)} ∘ ${JSON.stringify(sb)}`, async () => {
      const a = f32t(sa, randomF32(sa.reduce((p, q) => p * q, 1), 41));
      const b = f32t(sb, randomF32(sb.reduce((p, q) => p * q, 1), 42));
      await checkOp(dev, op, [a, b], {}, TOL);
    });
  }
});

describe("scales and dropout", () => {
  it("scale by a constant", async () => {
    await checkOp(dev, "scale", [f32t([11, 3], randomF32(33, 5))], { factor: 0.37 }, TOL);
  });

  it("rank_scale reads ranknum at run time", async () => {
    const x = f32t([5, 13], randomF32(65, 6));
    await checkOp(dev, "rank_scale", [x, f32t([1], new Float32Array([6]))], { factor: 12, eps: 1e-5 }, TOL);
  });

  // The mask must match exactly (atol 0); kept values within the ulp of scaling by 1/(1 - p) in f32.
  it("dropout reproduces the reference mask exactly (p = 0.3)", async () => {
    const x = f32t([5, 67], randomF32(335, 7).map((v) => v + 2));
    const { outputs } = await checkOp(dev, "dropout", [x], { p: 0.3, stream: "layers.0.attn" }, { atol: 0, rtol: 3e-7 }, 2);
    const dropped = Array.from(outputs[0]!).filter((v) => v === 0).length;
    expect(dropped).toBeGreaterThan(335 * 0.2);
    expect(dropped).toBeLessThan(335 * 0.4);
  });

  it("dropout with p = 0 is the identity", async () => {
    const x = f32t([9], randomF32(9, 8));
    const { outputs } = await runLowered(dev, "dropout", [x], { p: 0, stream: "s" }, 0);
    expect(Array.from(outputs[0]!)).toEqual(Array.from(x.data));
  });
});

// Every op these lowering families own, listed by hand so that a new op in the IR table without
// a lowering, or a lowering lost from the registry, fails here.
const FAMILY_OPS = [
  // elementwise
  "silu", "gelu_tanh", "gelu", "relu", "tanh", "sigmoid", "add", "mul", "scale", "rank_scale", "dropout",
  "silu_backward", "gelu_tanh_backward", "gelu_backward", "relu_backward", "tanh_backward", "sigmoid_backward",
  // norm
  "rmsnorm", "layernorm", "rmsnorm_backward", "layernorm_backward",
  // rope
  "rope", "rope_backward",
  // embedding
  "embedding", "embedding_grad",
  // loss
  "cross_entropy", "cross_entropy_backward",
  // movement
  "reshape", "split_heads", "merge_heads", "split", "slice", "slice_backward", "concat", "broadcast", "full", "offset",
  // reduce
  "sum_to_shape", "add_grad", "mean_seq", "mean_seq_backward", "swiglu", "swiglu_backward",
];

describe("registry", () => {
  it("has a lowering for every op of the elementwise, norm, rope, embedding, loss, movement and reduce families", () => {
    const registered = new Set(loweredOps());
    const missing = FAMILY_OPS.filter((op) => !registered.has(op));
    expect(missing).toEqual([]);
    const unknown = FAMILY_OPS.filter((op) => !(op in OPS));
    expect(unknown).toEqual([]);
  });
});
