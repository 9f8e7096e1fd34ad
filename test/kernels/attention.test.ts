// Attention on the GPU against the reference executor's kernels (exec/forward.ts, exec/backward.ts,
// computed in float64 from the same f32 inputs): the fused forward, and the backward's dq, dk, dv,
// dprefix_k, dprefix_v, through the lowerings the executor will call. Odd sizes, grouped and
// multi-query heads, batched and shared prefixes, causal and not, rows that see no key, a size
// that spans several key blocks and query tiles, and the small models' head shapes.

import type { AttentionShape } from "../../src/codegen/wgsl/kernels/attention/shape.js";
import { beforeAll, describe, expect, it } from "vitest";
import { BASELINE_CAPS } from "../../src/codegen/wgsl/caps.js";
import { lowering, type Lowered, type TensorArg } from "../../src/codegen/wgsl/lower/index.js";
import { attentionBackwardKernels, keyRowGeometry, queryRowGeometry } from "../../src/codegen/wgsl/kernels/attention/index.js";
import type { Op } from "../../src/ir/index.js";
import type { Device } from "../../src/runtime/device/index.js";
import { FORWARD_KERNELS } from "../../src/runtime/reference/exec/forward.js";
import { BACKWARD_KERNELS } from "../../src/runtime/reference/exec/backward.js";
import type { Tensor } from "../../src/runtime/reference/exec/tensor.js";
import { expectClose, randomF32, testDevice, runKernels } from "./helpers.js";

let dev: Device;
beforeAll(async () => {
  dev = await testDevice();
});

/** A case is exactly the shape the kernels take; `cpu`: also check the CPU dk/dv geometry. */
type Case = AttentionShape & { cpu?: boolean };

const CASES: Case[] = [
  { B: 2, T: 5, S: 7, Hq: 4, Hkv: 2, hd: 6, P: 3, prefixBatched: true, causal: true, scale: 1 / Math.sqrt(6), cpu: true },
  { B: 2, T: 5, S: 7, Hq: 4, Hkv: 2, hd: 8, P: 3, prefixBatched: false, causal: false, scale: 0.7 },
  // Multi-query heads; S < T, so the first T − S query rows see no key and must come out 0.
  { B: 2, T: 7, S: 5, Hq: 4, Hkv: 1, hd: 8, P: 0, prefixBatched: false, causal: true, scale: 0.5, cpu: true },
  // Several key blocks, query tiles and key tiles.
  { B: 1, T: 70, S: 70, Hq: 4, Hkv: 2, hd: 8, P: 3, prefixBatched: true, causal: true, scale: 1 / Math.sqrt(8) },
  // The small models' shapes at small sizes: stories260K (Hq 8, Hkv 4, hd 8) and the built-in tiny
  // ChatGLM2 (Hq 4, Hkv 2, hd 16), causal, without a prefix (the one-pass statistics + dq kernel).
  { B: 3, T: 11, S: 11, Hq: 8, Hkv: 4, hd: 8, P: 0, prefixBatched: false, causal: true, scale: 1 / Math.sqrt(8), cpu: true },
  { B: 1, T: 37, S: 37, Hq: 4, Hkv: 2, hd: 16, P: 0, prefixBatched: false, causal: true, scale: 0.25, cpu: true },
  // Wider heads take 16-row blocks in the CPU dk/dv kernel: rows past the last, a row count that is
  // not a multiple of the block, grouped heads and a prefix.
  { B: 2, T: 21, S: 21, Hq: 2, Hkv: 1, hd: 24, P: 2, prefixBatched: true, causal: true, scale: 1 / Math.sqrt(24), cpu: true },
  { B: 1, T: 19, S: 19, Hq: 3, Hkv: 3, hd: 32, P: 0, prefixBatched: false, causal: false, scale: 0.2, cpu: true },
];

const FWD_TOL = { atol: 2e-5, rtol: 1e-4 };
const BWD_TOL = { atol: 1e-4, rtol: 1e-3 };

const tensor = (data: Float32Array, shape: number[]): Tensor => ({ data: Float64Array.from(data), shape });
const f32Arg = (shape: number[]): TensorArg => ({ dtype: "f32", shape });
const opOf = (name: string, c: Case): Op => ({ op: name, module: "test", inputs: [], outputs: [], attrs: { causal: c.causal, scale: c.scale } });

function label(c: Case): string {
  const pre = c.P ? ` prefix P=${c.P} ${c.prefixBatched ? "[B,P,Hkv,hd]" : "[P,Hkv,hd]"}` : "";
  return `B=${c.B} T=${c.T} S=${c.S} Hq=${c.Hq} Hkv=${c.Hkv} hd=${c.hd}${pre}${c.causal ? " causal" : ""} scale=${c.scale.toFixed(3)}`;
}

describe.each(CASES.map((c) => [label(c), c] as const))("attention %s", (_, c) => {
  const qShape = [c.B, c.T, c.Hq, c.hd];
  const kShape = [c.B, c.S, c.Hkv, c.hd];
  const pShape = c.prefixBatched ? [c.B, c.P, c.Hkv, c.hd] : [c.P, c.Hkv, c.hd];
  const n = (s: number[]): number => s.reduce((a, b) => a * b, 1);
  const seed = c.T * 31 + c.S * 7 + c.hd + (c.causal ? 1 : 0);
  // q spans [-3, 3] so score rows are peaked and the running max really moves.
  const q = randomF32(n(qShape), seed).map((x) => 3 * x);
  const k = randomF32(n(kShape), seed + 1);
  const v = randomF32(n(kShape), seed + 2);
  const pk = c.P ? randomF32(n(pShape), seed + 3) : undefined;
  const pv = c.P ? randomF32(n(pShape), seed + 4) : undefined;
  const dout = randomF32(n(qShape), seed + 5);
  const refIns = [tensor(q, qShape), tensor(k, kShape), tensor(v, kShape)];
  const prefixIns = pk && pv ? [tensor(pk, pShape), tensor(pv, pShape)] : [];
  const ctxBase = { caps: BASELINE_CAPS, matmul: "register" as never };
  /** A CPU adapter's caps with the test device's subgroup size (llvmpipe's: 8). */
  const cpuCaps = () => {
    expect(dev.caps.subgroupSize).toBeGreaterThan(0);
    return { ...BASELINE_CAPS, isCpu: true, subgroups: true, subgroupSize: dev.caps.subgroupSize };
  };
  const refOut = FORWARD_KERNELS["attention"]!([...refIns, ...prefixIns], { causal: c.causal, scale: c.scale }, [qShape], { f64: true, seed: 0, step: 0 })[0]!;
  const outF32 = Float32Array.from(refOut as Float64Array);

  // Forward on a GPU's caps and on a CPU adapter's with its subgroup size (keys shared across lanes).
  it.each([["GPU", false], ["CPU", true]] as [string, boolean][])("forward, %s caps", async (_, isCpu) => {
    const inputs = [q, k, v, ...(pk && pv ? [pk, pv] : [])];
    const lowered = lowering("attention")!({
      ...ctxBase,
      caps: isCpu ? cpuCaps() : BASELINE_CAPS,
      op: opOf("attention", c),
      inputs: [qShape, kShape, kShape, ...(c.P ? [pShape, pShape] : [])].map(f32Arg),
      outputs: [f32Arg(qShape)],
      attrs: { causal: c.causal, scale: c.scale },
    });
    expect(lowered.kernels).toHaveLength(1);
    expect(lowered.kernels[0]!.wgsl.includes("subgroupBroadcast")).toBe(isCpu);
    const [got] = await runKernels(dev, lowered, inputs, [n(qShape)]);
    expectClose(`attention out (${label(c)})`, got!, refOut, FWD_TOL, c.hd);
    if (c.causal && c.S < c.T && !c.P) {
      // Query rows t < T − S see nothing: exactly 0, as the reference.
      const dead = (c.T - c.S) * c.Hq * c.hd;
      expect(Array.from(got!.slice(0, dead)).every((x) => x === 0)).toBe(true);
    }
  });

  // The dk/dv kernels' geometry is chosen per device kind (key-rows.ts), and on CPU adapters the
  // query-row kernels share key loads across the subgroup. The GPU one is checked on
  // every case; the CPU one (unrolled at hd ≤ 8, slow to compile) on the cases marked cpu: a batched
  // prefix, T > S, and both small models' shapes, and through every whole-step test on llvmpipe.
  it.each([["GPU", false], ...(c.cpu ? [["CPU", true]] : [])] as [string, boolean][])("backward, %s geometry", async (_, isCpu) => {
    const inputs = [q, k, v, outF32, dout, ...(pk && pv ? [pk, pv] : [])];
    const shapes = [qShape, kShape, kShape, qShape, qShape, ...(c.P ? [pShape, pShape] : [])];
    const outShapes = [qShape, kShape, kShape, ...(c.P ? [pShape, pShape] : [])];
    const lowered = lowering("attention_backward")!({
      ...ctxBase,
      caps: isCpu ? cpuCaps() : BASELINE_CAPS,
      op: opOf("attention_backward", c),
      inputs: shapes.map(f32Arg),
      outputs: outShapes.map(f32Arg),
      attrs: { causal: c.causal, scale: c.scale },
    });
    expect(lowered.kernels).toHaveLength(c.P ? 4 : 2);
    const got = await runKernels(dev, lowered, inputs, outShapes.map(n));
    const refInputs = [...refIns, tensor(outF32, qShape), tensor(dout, qShape), ...prefixIns];
    const want = BACKWARD_KERNELS["attention_backward"]!(refInputs, { causal: c.causal, scale: c.scale }, outShapes, { f64: true, seed: 0, step: 0 });
    const names = ["dq", "dk", "dv", "dprefix_k", "dprefix_v"];
    want.forEach((w, i) => expectClose(`attention ${names[i]} (${label(c)})`, got[i]!, w, BWD_TOL, c.hd));
  });
});

describe("attention launch geometry", () => {
  it("covers every query row and key once, within the device's workgroup and binding limits", () => {
    const s = { B: 2, T: 1000, S: 1000, Hq: 32, Hkv: 8, hd: 128, P: 0, prefixBatched: false, causal: true, scale: 1 };
    const g = queryRowGeometry(s, BASELINE_CAPS);
    // The G = 4 heads of a kv head share a workgroup; RQ rows per invocation cover its TQ·G rows.
    expect(g.threads * g.RQ).toBeGreaterThanOrEqual(g.TQ * 4);
    expect((g.threads - 1) * g.RQ).toBeLessThan(g.TQ * 4);
    expect(g.threads).toBeLessThanOrEqual(BASELINE_CAPS.maxInvocationsPerWorkgroup);
    expect(g.groups).toBe(2 * 8 * Math.ceil(1000 / g.TQ));
    // On a CPU adapter: tiles of whole subgroups that still cover every row of the tile.
    const cpu = { ...BASELINE_CAPS, isCpu: true, subgroups: true, subgroupSize: 8 };
    for (const shape of [s, { ...s, Hq: 8, Hkv: 4, hd: 8, T: 128, S: 128 }]) {
      const c = queryRowGeometry(shape, cpu);
      expect(c.threads % 8).toBe(0);
      expect(c.threads * c.RQ).toBeGreaterThanOrEqual(c.TQ * (shape.Hq / shape.Hkv));
      expect(c.groups).toBe(shape.B * shape.Hkv * Math.ceil(shape.T / c.TQ));
    }
    const k = keyRowGeometry(s, "seq", BASELINE_CAPS);
    expect(k.KT).toBe(k.threads * k.KR);
    expect(k.groups).toBe(2 * 8 * Math.ceil(1000 / k.KT));
    // A shared prefix has one owner for all batch rows.
    expect(keyRowGeometry({ ...s, P: 5 }, "prefix", BASELINE_CAPS).groups).toBe(8);
    for (const P of [0, 3]) {
      const { kernels } = attentionBackwardKernels({ ...s, P }, BASELINE_CAPS);
      for (const kern of kernels) expect(kern.bindings.length).toBeLessThanOrEqual(8);
    }
  });
});
