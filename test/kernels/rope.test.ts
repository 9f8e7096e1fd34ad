// RoPE forward and backward lowerings against the reference (float64 angles) in both modes, with a
// partial rotary_dim, odd head counts, per-batch positions and positions up to 40000, where a
// plain f32 angle (f32 ω times the position) is off by up to 3e-4.

import { beforeAll, describe, expect, it } from "vitest";
import { split3 } from "../../src/codegen/wgsl/kernels/turns.js";
import type { Device } from "../../src/runtime/device/index.js";
import { randomF32, testDevice } from "./helpers.js";
import { checkOp, f32t, i32t } from "./lowered.js";

// Angles good to about 4e-7 rad, outputs of magnitude ≤ 2.
const TOL = { atol: 3e-6, rtol: 1e-5 };

let dev: Device;
beforeAll(async () => {
  dev = await testDevice();
});

function positions(B: number, T: number, seed: number, max: number): Int32Array {
  return Int32Array.from(randomF32(B * T, seed), (v) => Math.floor(((v + 1) / 2) * max));
}

describe("rope", () => {
  const cases = [
    { mode: "half", B: 2, T: 5, H: 3, hd: 10, rd: 10, max: 40000, theta: 10000 },
    { mode: "interleaved", B: 3, T: 7, H: 1, hd: 10, rd: 6, max: 300, theta: 10000 },
    { mode: "half", B: 1, T: 9, H: 5, hd: 6, rd: 4, max: 9, theta: 500000 },
  ];
  for (const c of cases) {
    it(`${c.mode} B=${c.B} T=${c.T} H=${c.H} hd=${c.hd} rotary_dim=${c.rd} positions < ${c.max}`, async () => {
      const n = c.B * c.T * c.H * c.hd;
      const x = f32t([c.B, c.T, c.H, c.hd], randomF32(n, c.hd + c.T));
      const pos = i32t([c.B, c.T], positions(c.B, c.T, c.B + c.H, c.max));
      const attrs = { mode: c.mode, rotary_dim: c.rd, theta: c.theta };
      await checkOp(dev, "rope", [x, pos], attrs, TOL);
      await checkOp(dev, "rope_backward", [x, pos], attrs, TOL);
    });
  }

  it("splits ω/2π into parts whose products with 16-bit positions are exact", () => {
    for (const w of [1, 0.1333521432163324, 1e-4 / (2 * Math.PI), 0.7]) {
      const [h, m, l] = split3(w);
      expect(Math.abs(h + m + l - w)).toBeLessThan(w * 2 ** -38);
      for (const part of [h, m]) expect(part === 0 || Number.isInteger(part * 2 ** (7 - Math.floor(Math.log2(Math.abs(part)))))).toBe(true);
    }
  });
});
