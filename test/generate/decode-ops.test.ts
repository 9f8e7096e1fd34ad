/**
 * The decode-step ops: their reference kernels against independent oracles (the cache write by
 * hand; one query's attention over cache rows 0..pos against the last row of the full causal
 * attention of the sequence), and their WGSL lowerings against the reference kernels on random
 * inputs with odd sizes, grouped heads, 3-D and 4-D prefixes, positions past one workgroup's
 * width, and NaN in the cache rows past pos (which must never be read).
 */
import { describe, expect, it } from "vitest";
import { lowering } from "../../src/codegen/wgsl/lower/index.js";
import { inferOp, type Attrs, type Op } from "../../src/ir/index.js";
import { attentionForward } from "../../src/runtime/reference/attention.js";
import { DECODE_KERNELS } from "../../src/runtime/reference/exec/decode.js";
import type { Tensor } from "../../src/runtime/reference/exec/tensor.js";
import { uniformFill } from "../../src/runtime/reference/rng.js";
import { expectClose, testDevice } from "./helpers.js";

const rand = (n: number, seed: number): Float32Array => uniformFill(new Float32Array(n), seed, 1, -1, 1);
const ctx = { f64: false, seed: 0, step: 0 };

function outShapes(op: string, ins: Tensor[], attrs: Attrs): number[][] {
  const r = inferOp(op, ins.map((t) => ({ dtype: t.data instanceof Int32Array ? "i32" : "f32", shape: t.shape })), attrs);
  if (typeof r === "string") throw new Error(`${op}: ${r}`);
  return r.map((t) => t.shape as number[]);
}

function reference(op: string, ins: Tensor[], attrs: Attrs): Float32Array {
  return DECODE_KERNELS[op]!(ins, attrs, outShapes(op, ins, attrs), ctx)[0] as Float32Array;
}

/** Runs the op's lowering on the device; an output aliased to an input is that input's buffer. */
async function onDevice(op: string, ins: Tensor[], attrs: Attrs): Promise<Float32Array> {
  const dev = await testDevice();
  const shapes = outShapes(op, ins, attrs);
  const types = ins.map((t) => ({ dtype: (t.data instanceof Int32Array ? "i32" : "f32") as "i32" | "f32", shape: t.shape }));
  const irOp: Op = { op, module: "test", inputs: ins.map((_, i) => `x${i}`), outputs: [{ name: "y", dtype: "f32", shape: shapes[0]! }], attrs };
  const lowered = lowering(op)!({ op: irOp, inputs: types, outputs: [{ dtype: "f32", shape: shapes[0]! }], attrs, caps: dev.caps, matmul: "register" });
  await dev.prepare(...lowered.kernels);
  const bufs: Record<string, GPUBuffer> = {};
  ins.forEach((t, i) => (bufs[`in${i}`] = dev.bufferFrom(t.data, `in${i}`)));
  const n = shapes[0]!.reduce((a, b) => a * b, 1);
  const alias = lowered.aliases?.find((a) => a.out === 0);
  bufs["out0"] = alias ? bufs[`in${alias.input}`]! : dev.bufferFrom(new Float32Array(n).fill(NaN), "out0");
  (lowered.scratch ?? []).forEach((bytes, i) => (bufs[`tmp${i}`] = dev.bufferFrom(new Float32Array(bytes / 4).fill(NaN), `tmp${i}`)));
  try {
    const rec = dev.recorder(op);
    for (const k of lowered.kernels) rec.dispatch(k, bufs);
    rec.submit();
    return await dev.readF32(bufs["out0"]!, n);
  } finally {
    for (const b of new Set(Object.values(bufs))) b.destroy();
  }
}

const pos = (p: number): Tensor => ({ data: Int32Array.of(p), shape: [1, 1] });

describe("kv_cache_write", () => {
  it("reference: replaces row pos and keeps every other row", () => {
    const cache = { data: rand(5 * 2 * 3, 1), shape: [5, 2, 3] };
    const x = { data: rand(6, 2), shape: [1, 1, 2, 3] };
    const got = reference("kv_cache_write", [cache, x, pos(3)], {});
    const want = Float32Array.from(cache.data);
    want.set(x.data, 3 * 6);
    expect(Array.from(got)).toEqual(Array.from(want));
  });

  for (const [L, H, hd, p] of [[7, 2, 5, 0], [9, 3, 16, 8], [300, 1, 130, 171]] as const) {
    it(`WGSL writes in place: L=${L} H=${H} hd=${hd} pos=${p}`, async () => {
      const cache = { data: rand(L * H * hd, 3 + p), shape: [L, H, hd] };
      const x = { data: rand(H * hd, 4 + p), shape: [1, 1, H, hd] };
      const got = await onDevice("kv_cache_write", [cache, x, pos(p)], {});
      expect(Array.from(got)).toEqual(Array.from(reference("kv_cache_write", [cache, x, pos(p)], {})));
    });
  }
});

interface Case {
  Hq: number;
  Hkv: number;
  hd: number;
  L: number;
  P: number;
  /** Prefix as [1,P,Hkv,hd] rather than [P,Hkv,hd]. */
  batched: boolean;
  pos: number;
}

const CASES: Case[] = [
  { Hq: 4, Hkv: 2, hd: 16, L: 10, P: 0, batched: false, pos: 0 },
  { Hq: 6, Hkv: 2, hd: 13, L: 77, P: 3, batched: false, pos: 70 },
  { Hq: 2, Hkv: 2, hd: 80, L: 5, P: 2, batched: true, pos: 4 },
  { Hq: 3, Hkv: 1, hd: 8, L: 140, P: 0, batched: false, pos: 139 },
];

function inputs(c: Case): Tensor[] {
  const rows = c.L * c.Hkv * c.hd;
  const seen = (c.pos + 1) * c.Hkv * c.hd;
  // Rows past pos hold NaN: a kernel that reads them poisons its output.
  const kc = rand(rows, 11).fill(NaN, seen);
  const vc = rand(rows, 12).fill(NaN, seen);
  const ins: Tensor[] = [
    { data: rand(c.Hq * c.hd, 10), shape: [1, 1, c.Hq, c.hd] },
    { data: kc, shape: [c.L, c.Hkv, c.hd] },
    { data: vc, shape: [c.L, c.Hkv, c.hd] },
    pos(c.pos),
  ];
  if (c.P) {
    const shape = c.batched ? [1, c.P, c.Hkv, c.hd] : [c.P, c.Hkv, c.hd];
    ins.push({ data: rand(c.P * c.Hkv * c.hd, 13), shape }, { data: rand(c.P * c.Hkv * c.hd, 14), shape });
  }
  return ins;
}

const label = (c: Case) => `Hq=${c.Hq} Hkv=${c.Hkv} hd=${c.hd} L=${c.L} P=${c.P}${c.batched ? " (batched)" : ""} pos=${c.pos}`;

describe("attention_decode", () => {
  for (const c of CASES) {
    const scale = 1 / Math.sqrt(c.hd);
    it(`reference equals the last row of full causal attention: ${label(c)}`, () => {
      const ins = inputs(c);
      const S = c.pos + 1;
      // The full sequence: S queries, the last of which is q; keys/values are the cache rows 0..pos.
      const qs = rand(S * c.Hq * c.hd, 20);
      qs.set(ins[0]!.data as Float32Array, (S - 1) * c.Hq * c.hd);
      const n = S * c.Hkv * c.hd;
      const full = attentionForward(
        {
          q: Float64Array.from(qs),
          k: Float64Array.from((ins[1]!.data as Float32Array).subarray(0, n)),
          v: Float64Array.from((ins[2]!.data as Float32Array).subarray(0, n)),
          ...(c.P ? { prefixK: Float64Array.from(ins[4]!.data as Float32Array), prefixV: Float64Array.from(ins[5]!.data as Float32Array) } : {}),
        },
        { B: 1, T: S, S, Hq: c.Hq, Hkv: c.Hkv, hd: c.hd, P: c.P, causal: true, scale },
      ).out;
      const want = full.subarray((S - 1) * c.Hq * c.hd);
      expectClose("attention_decode reference", reference("attention_decode", ins, { scale }), want, { atol: 1e-6, rtol: 1e-5 });
    });

    it(`WGSL matches the reference: ${label(c)}`, async () => {
      const ins = inputs(c);
      const got = await onDevice("attention_decode", ins, { scale });
      expectClose("attention_decode", got, reference("attention_decode", ins, { scale }), { atol: 1e-5, rtol: 1e-4 });
    });
  }

  it("refuses a query of more than one position and a pos that is not one i32", () => {
    const q = { dtype: "f32" as const, shape: [1, 2, 4, 8] };
    const k = { dtype: "f32" as const, shape: [6, 2, 8] };
    expect(inferOp("attention_decode", [q, k, k, { dtype: "i32", shape: [1, 1] }], { scale: 1 })).toMatch(/one position/);
    expect(inferOp("attention_decode", [{ ...q, shape: [1, 1, 4, 8] }, k, k, { dtype: "i32", shape: [2] }], { scale: 1 })).toMatch(/one element/);
    expect(inferOp("kv_cache_write", [k, { dtype: "f32", shape: [1, 1, 3, 8] }, { dtype: "i32", shape: [1] }], {})).toMatch(/does not fit/);
  });
});
