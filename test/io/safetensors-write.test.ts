// The writer is checked against files written by the reference implementation: the byte
// sequences in the safetensors project's own serialization tests, and the real checkpoints in
// shared/models, which must come back byte-identical when their tensors are rewritten.

import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  dtypeSize,
  openSafetensorsFile,
  readSafetensorsHeader,
  serializeSafetensors,
  writeSafetensors,
  type TensorToWrite,
} from "../../src/runtime/io/index.js";

const MODELS = fileURLToPath(new URL("../../../shared/models/", import.meta.url));

function concat(chunks: Uint8Array[]): Buffer {
  return Buffer.concat(chunks);
}

function f32le(values: number[]): number[] {
  return [...Buffer.from(new Float32Array(values).buffer)];
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "pefc-st-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("serializeSafetensors layout", () => {
  it("matches the reference bytes for one tensor with an 8-aligned header", () => {
    const out = concat(serializeSafetensors([{ name: "attn.0", dtype: "F32", shape: [1, 2, 3], data: [0, 1, 2, 3, 4, 5] }]));
    const header = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
    expect(header.length).toBe(64);
    expect([...out]).toEqual([64, 0, 0, 0, 0, 0, 0, 0, ...Buffer.from(header), ...f32le([0, 1, 2, 3, 4, 5])]);
  });

  it("pads the header with spaces to a multiple of 8", () => {
    const out = concat(serializeSafetensors([{ name: "attn0", dtype: "F32", shape: [1, 1, 2, 3], data: [0, 1, 2, 3, 4, 5] }]));
    const header = '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}';
    expect(header.length).toBe(65);
    expect([...out]).toEqual([72, 0, 0, 0, 0, 0, 0, 0, ...Buffer.from(header), ...Array(7).fill(0x20), ...f32le([0, 1, 2, 3, 4, 5])]);
  });

  it("writes empty files with and without metadata as the reference does", () => {
    expect([...concat(serializeSafetensors([]))]).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    const withMeta = concat(serializeSafetensors([], { framework: "pt" }));
    expect([...withMeta]).toEqual([40, 0, 0, 0, 0, 0, 0, 0, ...Buffer.from('{"__metadata__":{"framework":"pt"}}'), 32, 32, 32, 32, 32]);
  });

  it("orders tensors by descending dtype alignment, then by name, and lays data out in that order", async () => {
    const file = join(dir, "mixed.safetensors");
    await writeSafetensors(file, [
      { name: "b", dtype: "U8", shape: [3], data: [1, 2, 3] },
      { name: "z", dtype: "F32", shape: [1], data: [1] },
      { name: "a", dtype: "F16", shape: [1], data: [1] },
      { name: "c", dtype: "I64", shape: [1], data: [7] },
      { name: "a2", dtype: "F32", shape: [2], data: [1, 2] },
      { name: "m", dtype: "BF16", shape: [1], data: [1] },
    ]);
    const h = await readSafetensorsHeader(file);
    expect(h.tensors.map((t) => t.name)).toEqual(["c", "a2", "z", "m", "a", "b"]);
    const rel = h.tensors.map((t) => [t.start - 8 - h.headerSize, t.end - 8 - h.headerSize]);
    expect(rel).toEqual([[0, 8], [8, 16], [16, 20], [20, 22], [22, 24], [24, 27]]);
    // Every tensor starts aligned to its element size within the file.
    for (const t of h.tensors) expect(t.start % dtypeSize(t.dtype), t.name).toBe(0);
    const raw = await readFile(file);
    const json = raw.subarray(8, 8 + h.headerSize).toString("utf8");
    expect(json.indexOf('"c"')).toBeLessThan(json.indexOf('"a2"'));
    expect(json.indexOf('"a2"')).toBeLessThan(json.indexOf('"b"'));
  });

  it("rejects inconsistent input", () => {
    expect(() => serializeSafetensors([{ name: "x", dtype: "F32", shape: [2, 2], data: [1, 2, 3] }])).toThrow(/3 elements but shape \[2, 2\] needs 4/);
    expect(() =>
      serializeSafetensors([
        { name: "x", dtype: "F32", shape: [1], data: [1] },
        { name: "x", dtype: "F32", shape: [1], data: [1] },
      ]),
    ).toThrow(/duplicate/);
    expect(() => serializeSafetensors([{ name: "i", dtype: "I32", shape: [1], data: [2 ** 31] }])).toThrow(/not an I32/);
    expect(() => serializeSafetensors([{ name: "__metadata__", dtype: "F32", shape: [1], data: [1] }])).toThrow(/invalid tensor name/);
  });
});

describe("rewriting real checkpoints", () => {
  for (const model of ["stories260K/hf", "tiny-gpt2"]) {
    it(`reproduces ${model}/model.safetensors byte for byte`, async () => {
      const src = `${MODELS}${model}/model.safetensors`;
      const ckpt = await openSafetensorsFile(src);
      const tensors: TensorToWrite[] = [];
      for (const t of ckpt.tensors.values()) tensors.push({ name: t.name, dtype: "F32", shape: t.shape, data: await ckpt.readF32(t.name) });
      const out = join(dir, "copy.safetensors");
      await writeSafetensors(out, tensors.reverse(), ckpt.metadata);
      const [a, b] = await Promise.all([readFile(src), readFile(out)]);
      expect(b.length).toBe(a.length);
      expect(b.equals(a)).toBe(true);
    });
  }
});

describe("round trips", () => {
  it("every writable dtype comes back as written", async () => {
    const file = join(dir, "all.safetensors");
    const f32 = new Float32Array([1.5, -2.25, 3e-8, 65504, -0]);
    await writeSafetensors(
      file,
      [
        { name: "f32", dtype: "F32", shape: [5], data: f32 },
        { name: "f16", dtype: "F16", shape: [5], data: f32 },
        { name: "bf16", dtype: "BF16", shape: [5], data: f32 },
        { name: "f16bits", dtype: "F16", shape: [2], data: new Uint16Array([0x3c00, 0x7bff]) },
        { name: "i32", dtype: "I32", shape: [2, 2], data: [-1, 2, 2 ** 31 - 1, -(2 ** 31)] },
        { name: "i64", dtype: "I64", shape: [3], data: [-(2n ** 63n), 2n ** 53n + 1n, 5n] },
        { name: "i64n", dtype: "I64", shape: [2], data: [3, -4] },
        { name: "u8", dtype: "U8", shape: [3], data: new Uint8Array([0, 128, 255]) },
        { name: "bool", dtype: "BOOL", shape: [3], data: [true, false, true] },
        { name: "scalar", dtype: "F32", shape: [], data: [42] },
        { name: "empty", dtype: "F32", shape: [0, 3], data: [] },
      ],
      { format: "pt" },
    );
    const c = await openSafetensorsFile(file);
    const r = async (n: string): Promise<unknown[]> => Array.from((await c.read(n)).data as ArrayLike<unknown>);
    expect(await r("f32")).toEqual([1.5, -2.25, Math.fround(3e-8), 65504, -0]);
    expect(await r("f16")).toEqual([0x3e00, 0xc080, 0x0001, 0x7bff, 0x8000]);
    expect(Array.from(await c.readF32("f16"))).toEqual([1.5, -2.25, 2 ** -24, 65504, -0]);
    expect(await r("bf16")).toEqual([0x3fc0, 0xc010, 0x3301, 0x4780, 0x8000]);
    expect(Array.from(await c.readF32("bf16"))[3]).toBe(65536);
    expect(await r("f16bits")).toEqual([0x3c00, 0x7bff]);
    expect(await r("i32")).toEqual([-1, 2, 2 ** 31 - 1, -(2 ** 31)]);
    expect((await c.read("i32")).shape).toEqual([2, 2]);
    expect(await r("i64")).toEqual([-(2n ** 63n), 2n ** 53n + 1n, 5n]);
    expect(await r("i64n")).toEqual([3n, -4n]);
    expect(await r("u8")).toEqual([0, 128, 255]);
    expect(await r("bool")).toEqual([1, 0, 1]);
    expect(await r("scalar")).toEqual([42]);
    expect((await c.read("scalar")).shape).toEqual([]);
    expect(await r("empty")).toEqual([]);
    expect(c.metadata).toEqual({ format: "pt" });
    await expect(c.readF32("i32")).rejects.toThrow(/'i32' has dtype I32, not a floating-point type/);
  });
});
