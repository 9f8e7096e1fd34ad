// RMSNorm and LayerNorm lowerings against the reference executor: forward on odd row widths (one
// narrower and one wider than the workgroup), an f16 weight, and backward with every combination
// of requested gradients, on row counts that give one chunk and several chunks of dw/db partials,
// and with the fuse pass's addend to dx.
// Each case runs every row variant: a workgroup per row (GPUs), and on CPU adapters a few lanes
// of a subgroup per row where the row is narrow and all f32 (64 wide: 4 lanes; 32: 2; 128: 8;
// row counts that leave the last pass part-empty), else a thread per row; and a thread per row
// again without subgroups, so the vec4 rows of that mode run too.

import { beforeAll, describe, it } from "vitest";
import type { Device } from "../../src/runtime/device/index.js";
import { randomF32, ROW_VARIANTS, testDevice } from "./helpers.js";

const VARIANTS = [...ROW_VARIANTS, ["thread per row without subgroups", { isCpu: true, subgroups: false }]] as const;
import { checkOp, f32t, type TestTensor } from "./lowered.js";

// Row statistics in f32 over up to 300 values; dw/db sum up to 130 rows.
const FWD_TOL = { atol: 1e-5, rtol: 1e-5 };
const BWD_TOL = { atol: 1e-4, rtol: 1e-4 };

let dev: Device;
beforeAll(async () => {
  dev = await testDevice();
});

const inputs = (shape: number[], seed: number): { x: TestTensor; w: TestTensor; b: TestTensor; dy: TestTensor } => {
  const D = shape[shape.length - 1]!;
  const n = shape.reduce((a, c) => a * c, 1);
  return {
    x: f32t(shape, randomF32(n, seed).map((v) => 3 * v + 0.5)),
    w: f32t([D], randomF32(D, seed + 1).map((v) => 1 + 0.5 * v)),
    b: f32t([D], randomF32(D, seed + 2)),
    dy: f32t(shape, randomF32(n, seed + 3)),
  };
};

describe.each(VARIANTS)("%s", (_, caps) => {
  describe("forward", () => {
    for (const shape of [[3, 5, 67], [130, 300], [9, 64], [37, 32], [3, 7, 128]]) {
      it(`rmsnorm and layernorm on ${JSON.stringify(shape)}`, async () => {
        const { x, w, b } = inputs(shape, shape[0]!);
        await checkOp(dev, "rmsnorm", [x, w], { eps: 1e-5 }, FWD_TOL, undefined, caps);
        await checkOp(dev, "layernorm", [x, w, b], { eps: 1e-5 }, FWD_TOL, undefined, caps);
      });
    }

    it("rmsnorm with an f16 weight", async () => {
      const { x, w } = inputs([7, 67], 9);
      await checkOp(dev, "rmsnorm", [x, { ...w, dtype: "f16" }], { eps: 1e-6 }, FWD_TOL, undefined, caps);
    });
  });

  describe("backward", () => {
    it("rmsnorm_backward dx+dw on 15 rows (one chunk), dw alone on 130 rows (five chunks)", async () => {
      const s = inputs([3, 5, 67], 21);
      await checkOp(dev, "rmsnorm_backward", [s.x, s.w, s.dy], { eps: 1e-5, dx: true, dw: true }, BWD_TOL, undefined, caps);
      const l = inputs([130, 300], 22);
      await checkOp(dev, "rmsnorm_backward", [l.x, l.w, l.dy], { eps: 1e-5, dx: false, dw: true }, BWD_TOL, undefined, caps);
      await checkOp(dev, "rmsnorm_backward", [l.x, l.w, l.dy], { eps: 1e-5, dx: true, dw: false }, BWD_TOL, undefined, caps);
    });

    it("rmsnorm_backward and layernorm_backward on rows of 64: dx+dw, dx alone, dw alone", async () => {
      const s = inputs([150, 64], 51);
      for (const [op, db] of [["rmsnorm_backward", {}], ["layernorm_backward", { db: true }]] as const) {
        await checkOp(dev, op, [s.x, s.w, s.dy], { eps: 1e-5, dx: true, dw: true, ...db }, BWD_TOL, undefined, caps);
        await checkOp(dev, op, [s.x, s.w, s.dy], { eps: 1e-5, dx: true, dw: false, ...db }, BWD_TOL, undefined, caps);
        await checkOp(dev, op, [s.x, s.w, s.dy], { eps: 1e-5, dx: false, dw: true, ...db }, BWD_TOL, undefined, caps);
      }
    });

    it("layernorm_backward dx+dw+db, dw+db alone on several chunks, db alone", async () => {
      const s = inputs([3, 5, 67], 31);
      await checkOp(dev, "layernorm_backward", [s.x, s.w, s.dy], { eps: 1e-5, dx: true, dw: true, db: true }, BWD_TOL, undefined, caps);
      const l = inputs([130, 300], 32);
      await checkOp(dev, "layernorm_backward", [l.x, l.w, l.dy], { eps: 1e-5, dx: false, dw: true, db: true }, BWD_TOL, undefined, caps);
      await checkOp(dev, "layernorm_backward", [l.x, l.w, l.dy], { eps: 1e-5, dx: true, dw: false, db: true }, BWD_TOL, undefined, caps);
    });

    // The fuse pass's residual gradient added to dx: odd rows, and rows of vec4s on CPU adapters.
    for (const shape of [[3, 5, 67], [9, 64], [37, 32], [3, 7, 128]]) {
      it(`rmsnorm_backward and layernorm_backward adding to dx on ${JSON.stringify(shape)}`, async () => {
        const s = inputs(shape, 41 + shape[0]!);
        const add = f32t(shape, randomF32(s.x.data.length, 43 + shape[0]!));
        await checkOp(dev, "rmsnorm_backward", [s.x, s.w, s.dy, add], { eps: 1e-5, dx: true, dw: true }, BWD_TOL, undefined, caps);
        await checkOp(dev, "layernorm_backward", [s.x, s.w, s.dy, add], { eps: 1e-5, dx: true, dw: false, db: true }, BWD_TOL, undefined, caps);
      });
    }
  });
});
