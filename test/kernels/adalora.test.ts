// AdaLoRA's rank allocation on the device (GpuRankAllocator and its kernels) against the reference
// RankAllocator, step by step over a whole schedule: EMA-only steps, masking steps, the final
// masking step (where the EMAs reset) and the steps after it (the stored mask re-applied). Four
// matrices of odd sizes share one parameter buffer and one gradient buffer, as the trainable arena
// holds them; one matrix has no gradient for E (the reference then sees zeros). Each step writes
// fresh random A, E, B and gradients, the gradients of triplet t scaled by 2^(p_t − 7) for a fixed
// permutation p, so the scores spread over orders of magnitude and no two sit near the threshold
// (checked at every masking step). EMAs agree within f32 rounding (the reference adds in float64),
// keep-masks and masked E exactly. Then: state exported mid-run and imported into a second
// allocator continues bit for bit, and a budget above the total rank masks nothing.

import { beforeAll, describe, expect, it } from "vitest";
import type { Device } from "../../src/runtime/device/index.js";
import { GpuRankAllocator, type DeviceAllocMatrix, type DeviceSlice } from "../../src/runtime/gpu/rank-allocator.js";
import { RankAllocator, type AdaloraMatrix, type AllocatorConfig } from "../../src/runtime/reference/rank-allocator.js";
import { expectClose, randomF32, testDevice } from "./helpers.js";

let dev: Device;
beforeAll(async () => {
  dev = await testDevice();
});

const SHAPES = [
  { name: "m0", r: 3, inF: 7, outF: 11 },
  { name: "m1", r: 5, inF: 7, outF: 11 },
  { name: "m2", r: 4, inF: 9, outF: 6 },
  { name: "m3", r: 3, inF: 13, outF: 5 },
];
const TRIPLETS = SHAPES.reduce((n, m) => n + m.r, 0);
/** Triplet t's gradients are scaled by 2^(PERM[t] − 7). */
const PERM = [9, 2, 14, 5, 0, 11, 7, 3, 12, 1, 8, 13, 4, 10, 6];
/** m2 has no gradient for E. */
const NO_GRAD = { name: "m2", part: "E" };
// init_bgt 15, target 8: masks at steps 2, 4, 6 (k = 3, 7, 7), the final masking at step 7, then
// the stored mask at steps 8 and 9.
const CONFIG: AllocatorConfig = { targetR: 2, tinit: 1, tfinal: 2, deltaT: 2, totalStep: 9, beta1: 0.85, beta2: 0.85 };

type Part = "A" | "E" | "B";
const PARTS: Part[] = ["A", "E", "B"];
const count = (m: (typeof SHAPES)[number], p: Part): number => (p === "A" ? m.r * m.inF : p === "E" ? m.r : m.outF * m.r);

interface Packed {
  buffer: GPUBuffer;
  at: Map<string, DeviceSlice>;
}

/** Every part of every matrix at a 256-byte aligned offset of one buffer. */
function packed(label: string): Packed {
  const at = new Map<string, { offset: number; size: number }>();
  let bytes = 0;
  for (const m of SHAPES) for (const p of PARTS) {
    at.set(`${m.name}.${p}`, { offset: bytes, size: 4 * count(m, p) });
    bytes = Math.ceil((bytes + 4 * count(m, p)) / 256) * 256;
  }
  const buffer = dev.createBuffer(bytes, label);
  return { buffer, at: new Map([...at].map(([k, v]) => [k, { buffer, ...v }])) };
}

interface StepInputs {
  values: Map<string, Float32Array>;
  grads: Map<string, Float32Array>;
}

function inputsAt(step: number): StepInputs {
  const values = new Map<string, Float32Array>();
  const grads = new Map<string, Float32Array>();
  let t0 = 0;
  SHAPES.forEach((m, k) => {
    for (const [j, p] of PARTS.entries()) {
      const seed = 1000 * step + 10 * k + j;
      values.set(`${m.name}.${p}`, randomF32(count(m, p), seed));
      const g = randomF32(count(m, p), seed + 500);
      for (let i = 0; i < g.length; i++) {
        const triplet = p === "A" ? Math.floor(i / m.inF) : p === "E" ? i : i % m.r;
        g[i] = g[i]! * 2 ** (PERM[t0 + triplet]! - 7);
      }
      if (!(m.name === NO_GRAD.name && p === NO_GRAD.part)) grads.set(`${m.name}.${p}`, g);
    }
    t0 += m.r;
  });
  return { values, grads };
}

class Harness {
  readonly params = packed("params");
  readonly grads = packed("grads");

  matrices(): DeviceAllocMatrix[] {
    return SHAPES.map((m) => {
      const slice = (b: Packed, p: Part) => b.at.get(`${m.name}.${p}`)!;
      const grads: DeviceAllocMatrix["grads"] = {};
      for (const p of PARTS) if (!(m.name === NO_GRAD.name && p === NO_GRAD.part)) grads[p] = slice(this.grads, p);
      return { ...m, params: { A: slice(this.params, "A"), E: slice(this.params, "E"), B: slice(this.params, "B") }, grads };
    });
  }

  upload(x: StepInputs): void {
    for (const [k, v] of x.values) dev.upload(this.params.buffer, v, this.params.at.get(k)!.offset);
    for (const [k, v] of x.grads) dev.upload(this.grads.buffer, v, this.grads.at.get(k)!.offset);
  }

  async run(a: GpuRankAllocator, step: number): Promise<void> {
    const enc = dev.gpu.createCommandEncoder({ label: `adalora test ${step}` });
    a.record(enc, step);
    dev.gpu.queue.submit([enc.finish()]);
    await dev.flush();
  }

  async E(name: string): Promise<Float32Array> {
    const s = this.params.at.get(`${name}.E`)!;
    return new Float32Array(await dev.read(s.buffer, s.size, s.offset));
  }

  destroy(): void {
    this.params.buffer.destroy();
    this.grads.buffer.destroy();
  }
}

/** The reference's matrices over copies of the step's inputs (E is masked in place). */
function referenceMatrices(x: StepInputs): AdaloraMatrix[] {
  return SHAPES.map((m) => {
    const v = (p: Part) => x.values.get(`${m.name}.${p}`)!.slice();
    const g = (p: Part) => x.grads.get(`${m.name}.${p}`)?.slice() ?? new Float32Array(count(m, p));
    return { ...m, A: v("A"), E: v("E"), B: v("B"), gradA: g("A"), gradE: g("E"), gradB: g("B") };
  });
}

/** Fails when the k-th and (k+1)-th smallest scores are close enough for f32 to swap them. */
function expectNoNearTie(scores: Map<string, Float64Array>, k: number, step: number): void {
  const all = [...scores.values()].flatMap((s) => [...s]).sort((x, y) => x - y);
  if (k < 1 || k >= all.length) return;
  const gap = (all[k]! - all[k - 1]!) / all[k]!;
  expect(gap, `step ${step}: scores near a tie at the threshold; choose other inputs`).toBeGreaterThan(1e-3);
}

describe("adalora rank allocation on the device", () => {
  it("matches the reference RankAllocator over a whole schedule", async () => {
    const h = new Harness();
    const alloc = await GpuRankAllocator.create(dev, CONFIG, h.matrices());
    const ref = new RankAllocator(CONFIG, SHAPES);
    const end = CONFIG.totalStep - CONFIG.tfinal;
    expect(await alloc.exportState()).toBeUndefined();
    let masked = 0;
    try {
      for (let step = 1; step <= CONFIG.totalStep; step++) {
        const x = inputsAt(step);
        h.upload(x);
        await h.run(alloc, step);
        const mats = referenceMatrices(x);
        const { budget, mask } = ref.schedule(step);
        // The scores a masking step uses: at the final one, of the EMAs before it (then reset).
        let scored = step === end ? ref.tripletScores(mats) : undefined;
        ref.updateAndAllocate(mats, step);
        if (step < end && mask) scored = ref.tripletScores(mats);
        if (scored) expectNoNearTie(scored, ref.initBgt - budget, step);

        // The EMAs, by the reference's names: none after the reset.
        const want = ref.exportState();
        const got = await alloc.exportState();
        expect([...(got?.tensors.keys() ?? [])].sort(), `step ${step}`).toEqual([...want.tensors.keys()].sort());
        for (const [name, w] of want.tensors) {
          const g = got!.tensors.get(name)!;
          if (name.startsWith("ipt.")) expectClose(`step ${step} ${name}`, g, w, { atol: 0, rtol: 1e-5 });
          // |I − Ī| cancels: its error is relative to Ī, not to Ū.
          else expectClose(`step ${step} ${name}`, g, w, { atol: 0, rtol: 1e-5, bound: want.tensors.get(`ipt.${name.slice(4)}`)!.map((v) => 2e-5 * v) });
        }
        if (scored) {
          const s = await alloc.readScores();
          for (const [name, w] of scored) expectClose(`step ${step} scores of ${name}`, s.get(name)!, w, { atol: 0, rtol: 1e-5 });
        }
        expect(await alloc.rankPattern(), `step ${step} rank pattern`).toEqual(ref.rankPattern);
        expect(got?.rankPattern, `step ${step} exported rank pattern`).toEqual(ref.rankPattern);
        for (const m of mats) expect(Array.from(await h.E(m.name)), `step ${step} ${m.name}.E`).toEqual(Array.from(m.E));
        if (ref.rankPattern) masked = Object.values(ref.rankPattern).flat().filter((v) => !v).length;
      }
    } finally {
      alloc.destroy();
      h.destroy();
    }
    // The final budget of 8 of 15 triplets holds at the end.
    expect(masked).toBe(TRIPLETS - 8);
  });

  it("continues bit for bit from exported state, across the final masking", async () => {
    const h = new Harness();
    const a = await GpuRankAllocator.create(dev, CONFIG, h.matrices());
    const b = await GpuRankAllocator.create(dev, CONFIG, h.matrices());
    try {
      for (let step = 1; step <= 4; step++) {
        h.upload(inputsAt(step));
        await h.run(a, step);
      }
      b.importState(await a.exportState());
      for (let step = 5; step <= CONFIG.totalStep; step++) {
        const out: unknown[] = [];
        for (const alloc of [a, b]) {
          h.upload(inputsAt(step));
          await h.run(alloc, step);
          const s = await alloc.exportState();
          out.push({ tensors: [...(s?.tensors ?? [])].map(([k, v]) => [k, Array.from(v)]), pattern: s?.rankPattern, E: await Promise.all(SHAPES.map(async (m) => Array.from(await h.E(m.name)))) });
        }
        expect(out[1], `step ${step}`).toEqual(out[0]);
      }
    } finally {
      a.destroy();
      b.destroy();
      h.destroy();
    }
  });

  it("masks nothing when the budget is above the total rank", async () => {
    const h = new Harness();
    const config = { ...CONFIG, targetR: 5 };
    const alloc = await GpuRankAllocator.create(dev, config, h.matrices());
    const ref = new RankAllocator(config, SHAPES);
    try {
      for (let step = 1; step <= 3; step++) {
        const x = inputsAt(step);
        h.upload(x);
        await h.run(alloc, step);
        const mats = referenceMatrices(x);
        ref.updateAndAllocate(mats, step);
        for (const m of mats) expect(Array.from(await h.E(m.name))).toEqual(Array.from(x.values.get(`${m.name}.E`)!));
      }
      expect(await alloc.rankPattern()).toEqual(ref.rankPattern);
      expect(Object.values((await alloc.rankPattern())!).flat()).not.toContain(false);
    } finally {
      alloc.destroy();
      h.destroy();
    }
  });
});
