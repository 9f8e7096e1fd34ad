// Embedding lookup and its scatter-add gradient against the reference, in both table layouts,
// with repeated ids (which must accumulate), table rows no id touches (which must be zero) and an
// f16 table; and the row-block lookup a table split over several bindings uses.

import { beforeAll, describe, expect, it } from "vitest";
import type { Device } from "../../src/runtime/device/index.js";
import { randomF32, testDevice } from "./helpers.js";
import { checkOp, f32t, i32t } from "./lowered.js";

// The lookup copies; the gradient adds in the reference's order, so both are exact up to f32 order.
const TOL = { atol: 1e-6, rtol: 1e-6 };

let dev: Device;
beforeAll(async () => {
  dev = await testDevice();
});

const ids = (n: number, V: number, seed: number, used = V): Int32Array =>
  Int32Array.from(randomF32(n, seed), (v) => Math.min(used - 1, Math.floor(((v + 1) / 2) * used)));

describe("embedding", () => {
  for (const transposed of [false, true]) {
    it(`lookup and gradient, table ${transposed ? "[D,V]" : "[V,D]"}`, async () => {
      const [V, D] = [11, 13];
      const id = i32t([3, 7], ids(21, V, 3));
      const table = f32t(transposed ? [D, V] : [V, D], randomF32(V * D, 4));
      await checkOp(dev, "embedding", [id, table], { transposed }, TOL);
      // Only ids < 7 occur: rows 7..10 of the gradient must come out zero.
      const gid = i32t([4, 9], ids(36, V, 5, 7));
      const dy = f32t([4, 9, D], randomF32(36 * D, 6));
      await checkOp(dev, "embedding_grad", [gid, dy], { rows: V, transposed }, TOL);
    });
  }

  it("looks up rows of an f16 table", async () => {
    const [V, D] = [9, 6];
    const table = { ...f32t([V, D], randomF32(V * D, 8)), dtype: "f16" as const };
    await checkOp(dev, "embedding", [i32t([5], ids(5, V, 9)), table], {}, TOL);
  });

  it("embedding_rows: one row block of a split table, zeros for ids outside it (f32 and f16)", async () => {
    const [V, D, start, rows] = [23, 5, 8, 7];
    const id = i32t([4, 6], ids(24, V, 10));
    const block = f32t([rows, D], randomF32(rows * D, 11));
    const r = await checkOp(dev, "embedding_rows", [id, block], { start }, TOL);
    // Both kinds of id occur: inside the block (a copied row) and outside it (zeros).
    const inside = Array.from(id.data as Int32Array, (v) => v >= start && v < start + rows);
    expect(inside).toContain(true);
    expect(inside).toContain(false);
    expect(Array.from(r.outputs[0]!.subarray(inside.indexOf(false) * D, inside.indexOf(false) * D + D))).toEqual([0, 0, 0, 0, 0]);
    await checkOp(dev, "embedding_rows", [id, { ...block, dtype: "f16" }], { start }, TOL);
  });
});
