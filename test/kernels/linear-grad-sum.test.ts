// linear_grad_input_sum (the fuse pass's sum of several dX = dy_t·W_t and plain gradients) against
// the reference executor's kernel, which computes each term and adds them as add_grad does: the
// register variant's one matmul over every term's K (and its split into accumulating kernels when
// the device binds fewer storage buffers), the tiled variant's kernel per term, both weight layouts
// in one sum, odd K, f16 weights, 32-row blocks and the narrow form (N under 32 columns).

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

interface Term {
  /** dy_t's features (the term's reduction). */
  K: number;
  /** W_t stored [N,K] (GPT-2 Conv1D) instead of [K,N]. */
  transposed?: boolean;
  f16?: boolean;
}

interface Case {
  name: string;
  M: number;
  N: number;
  terms: Term[];
  addends: number;
  variant?: MatmulVariant;
  /** The device's storage-buffer limit, lowered to split the sum. */
  limit?: number;
  kernels: number;
}

const CASES: Case[] = [
  { name: "llama attention input: q, k, v and two LoRA A's", M: 40, N: 36, terms: [{ K: 36 }, { K: 20 }, { K: 20 }, { K: 8 }, { K: 8 }], addends: 0, kernels: 1 },
  { name: "the same on 8 storage buffers: 3 terms, then 2 accumulated", M: 40, N: 36, terms: [{ K: 36 }, { K: 20 }, { K: 20 }, { K: 8 }, { K: 8 }], addends: 0, limit: 8, kernels: 2 },
  { name: "both weight layouts, odd K, two addends", M: 45, N: 37, terms: [{ K: 29, transposed: true }, { K: 5 }], addends: 2, kernels: 1 },
  { name: "an f16 weight beside an f32 one", M: 19, N: 24, terms: [{ K: 16, f16: true }, { K: 12, transposed: true }], addends: 1, kernels: 1 },
  { name: "32-row blocks", M: 520, N: 64, terms: [{ K: 64 }, { K: 8 }], addends: 1, kernels: 1 },
  { name: "narrow output", M: 70, N: 8, terms: [{ K: 12 }, { K: 4, transposed: true }], addends: 0, kernels: 1 },
  { name: "tiled: a kernel per term", M: 13, N: 20, terms: [{ K: 9 }, { K: 7, transposed: true }], addends: 1, variant: "tiled", kernels: 2 },
];

describe.each(CASES.map((c) => [c.name, c] as const))("linear_grad_input_sum, %s", (_, c) => {
  it("matches the reference", async () => {
    if (c.terms.some((t) => t.f16)) expect(dev.caps.f16).toBe(true);
    const ins: TestTensor[] = [];
    c.terms.forEach((t, i) => {
      const seed = 31 * i + c.M + c.N;
      ins.push(f32t([c.M, t.K], randomF32(c.M * t.K, seed)));
      ins.push({ dtype: t.f16 ? "f16" : "f32", shape: t.transposed ? [c.N, t.K] : [t.K, c.N], data: randomF32(t.K * c.N, seed + 1) });
    });
    for (let i = 0; i < c.addends; i++) ins.push(f32t([c.M, c.N], randomF32(c.M * c.N, 977 + i)));
    const transposed = c.terms.map((t) => (t.transposed ? 1 : 0));
    const attrs: Attrs = { terms: c.terms.length, ...(transposed.some((t) => t === 1) ? { transposed } : {}) };
    const { lowered } = await checkOp(dev, "linear_grad_input_sum", ins, attrs, { atol: 1e-4, rtol: 1e-4 }, undefined, c.limit ? { maxStorageBuffersPerStage: c.limit } : {}, c.variant);
    expect(lowered.kernels).toHaveLength(c.kernels);
    for (const k of lowered.kernels) expect(k.bindings.length).toBeLessThanOrEqual(c.limit ?? 16);
  });
});
