// Damaged files must fail with a UserError naming the file (and the tensor when one is at
// fault). The files here are assembled by hand, byte by byte, not by the writer under test.

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { UserError, openSafetensorsFile, readSafetensorsHeader, readTensorBytes } from "../../src/runtime/io/index.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "pefc-bad-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** length prefix + header text + data, exactly as given. */
function assemble(header: string, data: number | Uint8Array, declaredLength?: bigint): Buffer {
  const json = Buffer.from(header, "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(declaredLength ?? BigInt(json.length));
  const body = typeof data === "number" ? Buffer.alloc(data) : Buffer.from(data);
  return Buffer.concat([len, json, body]);
}

async function put(name: string, bytes: Uint8Array): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, bytes);
  return file;
}

async function failure(file: string): Promise<UserError> {
  try {
    await readSafetensorsHeader(file);
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    const u = e as UserError;
    expect(u.file).toBe(file);
    expect(u.message).toContain(file);
    return u;
  }
  throw new Error(`${file} was accepted`);
}

const ok = (name: string, dtype: string, shape: number[], a: number, b: number): string =>
  `"${name}":{"dtype":"${dtype}","shape":[${shape.join(",")}],"data_offsets":[${a},${b}]}`;

describe("corrupt safetensors", () => {
  it("accepts the well-formed baseline used below", async () => {
    const file = await put("good.safetensors", assemble(`{${ok("a", "F32", [2], 0, 8)},${ok("b", "I64", [1], 8, 16)}}`, 16));
    const h = await readSafetensorsHeader(file);
    expect(h.tensors.map((t) => t.name)).toEqual(["a", "b"]);
  });

  it("file shorter than the length prefix", async () => {
    const u = await failure(await put("tiny.safetensors", new Uint8Array([1, 2, 3])));
    expect(u.message).toMatch(/3 bytes, fewer than the 8-byte header length/);
  });

  it("header length beyond the end of the file", async () => {
    const u = await failure(await put("long.safetensors", assemble(`{}`, 0, 1000n)));
    expect(u.message).toMatch(/declares a 1000-byte header but the file has 10 bytes/);
  });

  it("absurd header length (a file that is not safetensors at all)", async () => {
    const u = await failure(await put("pickle.safetensors", Buffer.from("PK\x03\x04 this is a zip archive, not safetensors")));
    expect(u.message).toMatch(/corrupt safetensors header/);
  });

  it("header that is not JSON, or not an object", async () => {
    expect((await failure(await put("a.safetensors", assemble(`{"a":`, 0)))).message).toMatch(/not valid JSON/);
    expect((await failure(await put("b.safetensors", assemble(`[1,2]`, 0)))).message).toMatch(/expected a JSON object/);
    expect((await failure(await put("c.safetensors", assemble(`{"__metadata__":{"n":1}}`, 0)))).message).toMatch(/__metadata__/);
  });

  it("unknown dtype and malformed shape name the tensor", async () => {
    const u = await failure(await put("d.safetensors", assemble(`{${ok("w", "Q4", [2], 0, 2)}}`, 2)));
    expect(u.tensor).toBe("w");
    expect(u.message).toMatch(/tensor 'w': unknown dtype "Q4"/);
    const v = await failure(await put("e.safetensors", assemble(`{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 4)));
    expect(v.message).toMatch(/tensor 'w': shape \[-1\]/);
  });

  it("byte range that disagrees with shape × dtype", async () => {
    const u = await failure(await put("f.safetensors", assemble(`{${ok("w", "F16", [3], 0, 8)}}`, 8)));
    expect(u.message).toMatch(/tensor 'w': data_offsets \[0, 8\] hold 8 bytes but shape \[3\] of F16 needs 6/);
  });

  it("overlapping tensors", async () => {
    const u = await failure(await put("g.safetensors", assemble(`{${ok("a", "F32", [2], 0, 8)},${ok("b", "F32", [2], 4, 12)}}`, 12)));
    expect(u.message).toMatch(/tensor 'b' \(data_offsets \[4, 12\]\) overlaps tensor 'a' \(data_offsets \[0, 8\]\)/);
  });

  it("a gap no tensor owns", async () => {
    const u = await failure(await put("h.safetensors", assemble(`{${ok("a", "F32", [1], 0, 4)},${ok("b", "F32", [1], 8, 12)}}`, 12)));
    expect(u.message).toMatch(/bytes 4..8 of the data before tensor 'b' belong to no tensor/);
  });

  it("truncated data names the last tensor", async () => {
    const full = assemble(`{${ok("a", "F32", [2], 0, 8)},${ok("b", "F32", [4], 8, 24)}}`, 24);
    const u = await failure(await put("trunc.safetensors", full.subarray(0, full.length - 5)));
    expect(u.tensor).toBe("b");
    expect(u.message).toMatch(/truncated: tensor 'b' ends at byte \d+ but the file has \d+ bytes/);
  });

  it("trailing bytes after the last tensor", async () => {
    const u = await failure(await put("tail.safetensors", assemble(`{${ok("a", "F32", [1], 0, 4)}}`, 7)));
    expect(u.message).toMatch(/3 bytes after the last tensor belong to no tensor/);
  });

  it("missing file", async () => {
    const file = join(dir, "nope.safetensors");
    const u = await failure(file);
    expect(u.message).toMatch(/cannot open: no such file/);
  });

  it("a file cut short after its header was read fails the tensor read, naming both", async () => {
    const file = await put("later.safetensors", assemble(`{${ok("a", "F32", [4], 0, 16)}}`, 16));
    const ckpt = await openSafetensorsFile(file);
    await writeFile(file, assemble(`{${ok("a", "F32", [4], 0, 16)}}`, 4));
    await expect(readTensorBytes(ckpt.get("a"))).rejects.toThrow(/later.safetensors: truncated: tensor 'a' needs bytes/);
  });
});
